"""What report.html shows, gathered from a run's files into one JSON-able document (page.py renders it).

Every value here came from a SARIF file, a verdict, an SBOM or a run record, all of which may be hostile
(a pull request's SARIF between jobs, a finding quoting attacker text): nothing is interpreted, texts are
bounded, and only page.py decides how they are escaped. Unreadable inputs are listed as problems on the page
(and never make it look cleaner): a SARIF that cannot be read shows as such, not as zero findings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from mlsec_actions import compliance
from mlsec_actions.errors import MlsecError
from mlsec_actions.findings import Severity
from mlsec_actions.sanitize import log_line

MAX_MESSAGE = 1000
MAX_PATH = 400
def bounded(text: str, limit: int) -> str:
    """One bounded line (`sanitize.log_line`): control, bidi and invisible characters and the bytes of a file
    name that is not UTF-8 shown as escapes, so the page cannot be spoofed (Trojan Source), always encodes,
    and no line of the file can start a workflow command if it is ever printed."""
    return log_line(text, limit)


SEVERITIES = tuple(s.name.lower() for s in sorted(Severity, reverse=True))  # critical first


@dataclass(frozen=True)
class Sources:
    """The files a report is made from; any may be missing."""

    sarif_dir: Path
    """Folder of stage SARIF files (the gate's own SARIF is not in it)."""
    verdict: Path | None = None
    """The gate's verdict JSON."""
    run_record: Path | None = None
    """`mlsec run`'s run.json (the stage timeline); None for a report made in CI."""
    sbom: Path | None = None
    """The CycloneDX SBOM."""
    extra_notes: tuple[str, ...] = field(default_factory=tuple)
    """Lines shown under "notes" (e.g. why a file is missing)."""


class _Rule(msgspec.Struct, gc=False):
    id: str = ""
    helpUri: str | None = None


class _Driver(msgspec.Struct, gc=False):
    rules: list[_Rule] | None = None


class _Tool(msgspec.Struct, gc=False):
    driver: _Driver


class _Run(msgspec.Struct, gc=False):
    tool: _Tool


class _Log(msgspec.Struct, gc=False):
    runs: list[_Run] = []


_RULES = msgspec.json.Decoder(_Log)


def _help_links(path: Path) -> dict[str, str]:
    """Rule id -> https help link (anything else is dropped: the page links only to https pages)."""
    from mlsec_actions import inputs

    try:
        log = _RULES.decode(inputs.read_regular(path, "SARIF", inputs.MAX_SARIF_BYTES))
    except (MlsecError, msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return {}
    return {r.id: r.helpUri for run in log.runs for r in run.tool.driver.rules or ()
            if r.helpUri and r.helpUri.startswith("https://")}


class _Table:
    """Index of distinct values (stages, tools, rules) so 25,000 rows carry small numbers, not repeated text."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, value: str) -> int:
        found = self._index.get(value)
        if found is None:
            found = self._index[value] = len(self.values)
            self.values.append(value)
        return found


def findings(sarif_dir: Path) -> dict[str, Any]:
    """Every finding of every SARIF under `sarif_dir` as compact rows, with counts, gaps and unreadable files."""
    from mlsec_actions.gate.input import iter_dir

    stages, tools, rules = _Table(), _Table(), _Table()
    rows: list[list[Any]] = []
    help_of: dict[str, str] = {}
    chart: dict[str, dict[str, int]] = {}
    gaps: list[dict[str, str]] = []
    gap_total = 0
    problems: list[str] = []
    dropped = 0
    for file, runs, error in iter_dir(sarif_dir):
        if error is not None:
            problems.append(bounded(str(error), MAX_MESSAGE))
            continue
        help_of.update((bounded(k, 200), v) for k, v in _help_links(Path(file.path)).items())
        for run in runs:
            stage = bounded(run.stage, 80)
            st = stages(stage)
            counts = chart.setdefault(stage, dict.fromkeys(SEVERITIES, 0))
            for h in run.hits:
                sev = h.severity.name.lower()
                counts[sev] += 1
                rows.append([st, SEVERITIES.index(sev), tools(bounded(h.tool, 120)), rules(bounded(h.rule, 200)),
                             bounded(h.path, MAX_PATH),
                             h.line, bounded(h.message, MAX_MESSAGE), h.fingerprint or ""])
            for sev_enum, n in run.dropped.items():
                counts[sev_enum.name.lower()] += n
                dropped += n
            gap_total += run.gap_total
            gaps.extend({"stage": stage, "tool": bounded(g.tool, 120), "kind": bounded(g.kind, 80),
                         "detail": bounded(g.detail, MAX_MESSAGE),
                         "path": bounded(g.path, MAX_PATH)} for g in run.gaps[:200])
    rows.sort(key=lambda r: (r[1], r[0], r[4], r[5] or 0))
    return {"stages": stages.values, "tools": tools.values, "rules": rules.values,
            "help": [help_of.get(r, "") for r in rules.values], "rows": rows, "chart": chart,
            "gaps": gaps, "gap_total": gap_total, "problems": problems, "dropped": dropped,
            "controls": controls(Counter(rules.values[r[3]] for r in rows))}


def controls(per_rule: Counter[str]) -> list[dict[str, Any]]:
    """Findings by framework control (docs/compliance.md), in the catalogue's order; only controls with findings."""
    cat = compliance.catalog()
    by_control: Counter[str] = Counter()
    for rule, n in per_rule.items():
        for control in compliance.controls_for(rule):
            by_control[control] += n
    return [{"framework": cat.frameworks[c.partition(compliance.SEPARATOR)[0]].title, "control": c,
             "title": cat.title(c), "findings": by_control[c]} for c in cat.controls() if by_control[c]]


def _load(path: Path | None, what: str, problems: list[str]) -> Any:
    from mlsec_actions import inputs

    if path is None:
        return None
    try:
        return inputs.load_json(path, what, inputs.MAX_SARIF_BYTES if what == "SBOM" else inputs.MAX_DOCUMENT_BYTES)
    except MlsecError as e:
        problems.append(bounded(e.diagnostics(), MAX_MESSAGE))
        return None


def _list(doc: Any, key: str) -> list[Any]:
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, list) else []


def _text(value: Any, limit: int = MAX_MESSAGE) -> str:
    return bounded("" if value is None else str(value), limit)


def sbom_parts(doc: Any) -> list[dict[str, Any]]:
    """The SBOM's models and datasets (and their files), each with its digests."""
    out: list[dict[str, Any]] = []
    todo = [(c, "") for c in _list(doc, "components")]
    while todo and len(out) < 2000:
        c, parent = todo.pop(0)
        if not isinstance(c, dict):
            continue
        kind = c.get("type")
        if kind in ("machine-learning-model", "data") or parent:
            out.append({"type": _text(kind, 40), "name": _text(c.get("name"), MAX_PATH), "parent": parent,
                        "version": _text(c.get("version"), 80),
                        "hashes": [f"{_text(h.get('alg'), 20)}:{_text(h.get('content'), 200)}"
                                   for h in _list(c, "hashes") if isinstance(h, dict)]})
            todo.extend((sub, _text(c.get("name"), MAX_PATH)) for sub in _list(c, "components"))
    return out


def collect(src: Sources) -> dict[str, Any]:
    """The page's document."""
    problems: list[str] = list(src.extra_notes)
    found = findings(src.sarif_dir) if src.sarif_dir.is_dir() else None
    if found is None:
        problems.append(f"{src.sarif_dir}: no SARIF folder")
    verdict = _load(src.verdict, "verdict", problems)
    record = _load(src.run_record, "run record", problems)
    sbom = _load(src.sbom, "SBOM", problems)
    v = verdict if isinstance(verdict, dict) else {}
    rec = record if isinstance(record, dict) else {}
    waivers, policy = (x if isinstance(x, dict) else {} for x in (v.get("waivers"), v.get("policy")))
    config = rec.get("config") or v.get("run_config")
    return {
        "verdict": _text(v.get("verdict", "missing"), 20),
        "run_id": _text(v.get("run_id") or rec.get("run-id") or "", 80),
        "generated_at": _text(v.get("generated_at", ""), 40),
        "policy": _text(policy.get("path", "")),
        "config": {str(k): _text(x, MAX_PATH) for k, x in config.items()} if isinstance(config, dict) else {},
        "violations": [{k: _text(x.get(k)) for k in ("kind", "rule", "stage", "message")}
                       for x in _list(v, "violations") if isinstance(x, dict)][:500],
        "warnings": [_text(w) for w in _list(v, "warnings")][:200],
        "expected": [_text(s, 80) for s in _list(v, "expected_stages")],
        "waivers": {status: [{k: _text(w.get(k)) for k in ("id", "owner", "reason", "expires", "matched")}
                             for w in _list(waivers, status) if isinstance(w, dict)][:500]
                    for status in ("used", "expired", "unused")},
        "stages": [{"stage": _text(s.get("stage"), 80), "exit": s.get("exit-code"), "seconds": _num(s.get("seconds")),
                    "started": _num(s.get("started")), "findings": s.get("findings"), "cause": _text(s.get("cause"))}
                   for s in _list(rec, "stages") if isinstance(s, dict)][:100],
        "not_run": {k: [_text(s, 80) for s in _list(rec, k)] for k in ("left-out", "not-started", "unavailable")},
        "signed": [{k: _text(x.get(k), MAX_PATH) for k in ("artifact", "bundle", "status")}
                   for x in _list(rec, "signed") if isinstance(x, dict)][:500],
        "sbom": sbom_parts(sbom),
        "findings": found or {"stages": [], "tools": [], "rules": [], "help": [], "rows": [], "chart": {},
                              "gaps": [], "gap_total": 0, "problems": [], "dropped": 0, "controls": []},
        "problems": problems + ((found or {}).get("problems") or []),
    }


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
