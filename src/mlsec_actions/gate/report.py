"""A verdict rendered as JSON (what signing attests) and markdown (the job summary); SARIF is `alerts.py`.

The JSON keys `verdict`, `policy`, `inputs`, `violations`, `counts`, `waivers`, `tools`, `coverage` and
`generated_at` are a contract: the signing stage relies on them. Every text in the summary came from a
SARIF file or a policy, so it goes through `sanitize.md_text` (or `_code`, inside backticks).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any
from urllib.parse import quote

from mlsec_actions import __version__, compliance, sanitize
from mlsec_actions.findings import Severity
from mlsec_actions.gate import coverage as cov
from mlsec_actions.gate.engine import Verdict
from mlsec_actions.gate.input import Hit
from mlsec_actions.gate.rules import normal_path

DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/gate.md"
COMPLIANCE_DOCS = DOCS.replace("gate.md", "compliance.md")
_ORDER = sorted(Severity, reverse=True)
_MAX_ROWS = 50  # GitHub caps a job summary at 1 MiB; the verdict JSON has everything
_SERVICE = re.compile(r"[^/]*:[0-9]{1,5}(?:/|\Z)")


def to_json(v: Verdict, now: dt.datetime | None = None) -> dict[str, Any]:
    """The verdict document."""
    return {
        "verdict": "pass" if v.passed else "fail",
        "generated_at": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "mlsec_version": __version__,
        "policy": {"path": v.policy.path, "sha256": v.policy.sha256,
                   **({"checkpoint": v.policy.checkpoint} if v.policy.checkpoint is not None else {}),
                   **({"pipeline": v.policy.pipeline, "required_stages": list(v.policy.required_stages)}
                      if v.policy.pipeline is not None else {})},
        "inputs": [{"path": f.path, "sha256": f.sha256} for f in v.inputs],
        "baseline": [{"path": f.path, "sha256": f.sha256} for f in v.baseline_inputs],
        "violations": [{"kind": x.kind, "rule": x.rule, "stage": x.stage, "message": x.message,
                        "path": x.path, "line": x.line} for x in v.violations],
        "counts": {s: {sev.name.lower(): n for sev, n in c.items()} for s, c in v.counts.items()},
        "counted": {s: {sev.name.lower(): n for sev, n in c.items()} for s, c in v.counted.items()},
        "waived": v.waived,
        "in_baseline": v.in_baseline,
        "waivers": {status: [{"id": u.waiver.id, "owner": u.waiver.owner, "reason": u.waiver.reason,
                              "expires": u.waiver.expires.isoformat(), "matched": u.matched}
                             for u in v.waivers if u.status == status] for status in ("used", "expired", "unused")},
        "tools": [{"stage": s, "name": t.name, "version": t.version, "status": t.status.value, "message": t.message}
                  for s, t in v.tools],
        "top_findings": [_hit_json(s, h) for s, h in v.top],
        "warnings": list(v.warnings),
        "coverage": cov.to_json(v.coverage),
        "run_id": v.expectations.run_id,
        "expected_stages": list(v.expectations.stages),
        "sarif_digests": [{"name": d.name, "expected": d.expected, "actual": d.actual, "status": d.status}
                          for d in v.digests],
        "compliance": _compliance_json(v.controls),
    }


def _compliance_json(controls: dict[str, int]) -> dict[str, Any]:
    """Counted findings by framework and control: `{framework: {title, version, controls: {id: {title, open}}}}`."""
    cat = compliance.catalog()
    out: dict[str, Any] = {}
    for control, n in controls.items():
        fid, _, cid = control.partition(compliance.SEPARATOR)
        f = cat.frameworks[fid]
        entry = out.setdefault(fid, {"title": f.title, "version": f.version, "controls": {}})
        entry["controls"][cid] = {"title": f.controls[cid], "open": n}
    return out


def _compliance(controls: dict[str, int]) -> list[str]:
    """The counted findings by framework control (only controls with findings)."""
    if not controls:
        return []
    cat = compliance.catalog()
    out = ["### Findings by framework control", "",
           f"Counted findings whose rules map to each control ([mappings]({COMPLIANCE_DOCS})).",
           "", "| framework | control | open |", "|---|---|---:|"]
    rows = [(control.partition(compliance.SEPARATOR)[0], control, n) for control, n in controls.items()]
    out += [f"| {_cell(cat.frameworks[fid].title)} | `{control}` {_cell(cat.title(control))} | {n} |"
            for fid, control, n in rows[:_MAX_ROWS]]
    return [*out, "", *_more(_MAX_ROWS, len(rows))]


def _hit_json(stage: str, h: Hit) -> dict[str, Any]:
    return {"stage": stage, "rule": h.rule, "severity": h.severity.name.lower(), "security_severity": h.score,
            "path": normal_path(h.path), "line": h.line, "fingerprint": h.fingerprint, "message": h.message}


def _cell(text: object, limit: int = sanitize.MAX_LINE) -> str:
    """Safe as Markdown text in a table cell or a sentence: no HTML, links, images, line breaks; pipes escaped."""
    return sanitize.md_text(str(text), limit)


def _code(text: object) -> str:
    """Safe inside a code span in a table: Markdown escapes do not work there, so backticks become quotes
    (a backtick would end the span) and pipes are escaped (GFM splits cells before reading spans)."""
    return "`" + sanitize.log_line(str(text), 300).replace("`", "'").replace("|", "\\|") + "`"


def _link(path: str, line: int | None) -> str:
    """A link to the file at the commit when running in Actions, else the plain path."""
    shown = f"{path}:{line}" if line else path
    repo, sha = os.environ.get("GITHUB_REPOSITORY"), os.environ.get("GITHUB_SHA")
    # dast, runtime-probe and infra-scan locate findings at `host:port/path` of a service: not a repository file.
    if not (repo and sha and path) or _SERVICE.match(path):
        return _code(shown)
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    anchor = f"#L{line}" if line else ""
    target = quote(path, safe="/@!$&'*+,;=:-._~")
    return f"[{_cell(shown)}]({server}/{repo}/blob/{sha}/{target}{anchor})"


def _provenance(v: Verdict) -> list[str]:
    """One line: the run id, expected stages and digests the inputs were checked against, when any."""
    e = v.expectations
    parts = []
    if e.run_id is not None:
        parts.append(f"run id {_code(e.run_id)}")
    if e.stages:
        parts.append("expected stages " + ", ".join(_code(s) for s in e.stages))
    if v.digests:
        bad = sum(d.status != "ok" for d in v.digests)
        parts.append(f"{len(v.digests)} SARIF digest(s) checked, " + (f"{bad} not matching" if bad else "all matching"))
    return [f"Checked against: {'; '.join(parts)}.", ""] if parts else []


def _coverage(coverage: tuple[cov.StageCoverage, ...], fail: bool) -> list[str]:
    """What the stages could not check: every listed gap (up to the row limit), and the totals."""
    if not coverage:
        return []
    total = sum(c.total for c in coverage)
    effect = "each fails the gate (coverage.gaps: fail)" if fail else "listed as warnings (coverage.gaps: warn)"
    out = [f"### Coverage gaps ({total})", "", f"What the stages could not check; {effect}.", "",
           "| stage | tool | kind | detail | path |", "|---|---|---|---|---|"]
    rows = [(c.stage, g) for c in coverage for g in c.gaps]
    out += [f"| {_cell(stage)} | {_cell(g.tool)} | [{_cell(g.kind)}]({DOCS}#coverage) | {_cell(g.detail, 300)} | "
            f"{_code(g.path) if g.path else ''} |" for stage, g in rows[:_MAX_ROWS]]
    unlisted = sum(c.unlisted for c in coverage)
    out += ["", *_more(_MAX_ROWS, len(rows))]
    if unlisted:
        out += [f"_{unlisted} more gap(s) counted by the stages but not listed in their SARIF._", ""]
    return out


def _more(shown: int, total: int) -> list[str]:
    return [f"_{total - shown} more in the verdict JSON._", ""] if total > shown else []


def markdown(v: Verdict) -> str:
    """The job summary: verdict, stage x severity table, violations, top findings, waivers, tools."""
    head = "✅ **PASS**" if v.passed else f"❌ **FAIL** ({len(v.violations)} violation(s))"
    total = sum(sum(c.values()) for c in v.counts.values())
    out = [f"## mlsec gate: {head}", "",
           f"Policy {_code(v.policy.path)} (sha256 `{v.policy.sha256[:12]}`) over {len(v.inputs)} SARIF file(s): "
           f"{total} finding(s), {v.waived} waived, {v.in_baseline} already in the baseline.", ""]
    out += _provenance(v)
    out += ["### Findings by stage and severity", "",
            "| stage | " + " | ".join(s.name.lower() for s in _ORDER) + " | counted |",
            "|---|" + "---:|" * (len(_ORDER) + 1)]
    for stage, c in v.counts.items():
        counted = sum(v.counted.get(stage, {}).values())
        out.append(f"| {_cell(stage)} | " + " | ".join(str(c[s]) for s in _ORDER) + f" | {counted} |")
    if not v.counts:
        out.append("| (no stages) |" + " |" * (len(_ORDER) + 1))
    out.append("")
    if v.violations:
        out += [f"### Violations ({len(v.violations)})", "", "| kind | rule | stage | what |", "|---|---|---|---|"]
        out += [f"| [{x.kind}]({DOCS}#{x.kind}) | {_cell(x.rule)} | {_cell(x.stage or '')} | {_cell(x.message)} |"
                for x in v.violations[:_MAX_ROWS]]
        out += ["", *_more(_MAX_ROWS, len(v.violations))]
    if v.top:
        out += ["### Top findings", "", "| severity | stage | rule | location | message |", "|---|---|---|---|---|"]
        out += [f"| {h.severity.name.lower()} ({h.score:.1f}) | {_cell(stage)} | {_code(h.rule)} | "
                f"{_link(normal_path(h.path), h.line)} | {_cell(h.message, 200)} |" for stage, h in v.top]
        out.append("")
    if v.waivers:
        out += ["### Waivers", "", "| waiver | status | matched | owner | expires | reason |",
                "|---|---|---:|---|---|---|"]
        out += [f"| {_cell(u.waiver.id)} | {u.status} | {u.matched} | {_cell(u.waiver.owner)} | "
                f"{u.waiver.expires.isoformat()} | {_cell(u.waiver.reason)} |" for u in v.waivers[:_MAX_ROWS]]
        out += ["", *_more(_MAX_ROWS, len(v.waivers))]
    out += _compliance(v.controls)
    out += _coverage(v.coverage, v.policy.coverage_gaps_fail)
    if v.tools:
        out += ["### Tools", "", "| stage | tool | version | status |", "|---|---|---|---|"]
        out += [f"| {_cell(s)} | {_cell(t.name)} | {_cell(t.version or '')} | {t.status.value} |"
                for s, t in v.tools[:_MAX_ROWS]]
        out += ["", *_more(_MAX_ROWS, len(v.tools))]
    if v.warnings:
        out += ["### Warnings", ""] + [f"- {_cell(w)}" for w in v.warnings[:_MAX_ROWS]] + [""]
    return "\n".join(out)
