"""A verdict rendered three ways: JSON (what signing attests), markdown (the job summary), SARIF (violations).

The JSON keys `verdict`, `policy`, `inputs`, `violations`, `counts`, `waivers`, `tools` and
`generated_at` are a contract: the signing stage relies on them.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlsec_actions import __version__
from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.gate.engine import GATE_STAGE, Verdict
from mlsec_actions.gate.input import Hit
from mlsec_actions.gate.rules import Violation, normal_path

DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/gate.md"
_ORDER = sorted(Severity, reverse=True)
_MAX_ROWS = 50  # GitHub caps a job summary at 1 MiB; the verdict JSON has everything


def to_json(v: Verdict, now: dt.datetime | None = None) -> dict[str, Any]:
    """The verdict document."""
    return {
        "verdict": "pass" if v.passed else "fail",
        "generated_at": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "mlsec_version": __version__,
        "policy": {"path": v.policy.path, "sha256": v.policy.sha256},
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
        "run_id": v.expectations.run_id,
        "expected_stages": list(v.expectations.stages),
        "sarif_digests": [{"name": d.name, "expected": d.expected, "actual": d.actual, "status": d.status}
                          for d in v.digests],
    }


def _hit_json(stage: str, h: Hit) -> dict[str, Any]:
    return {"stage": stage, "rule": h.rule, "severity": h.severity.name.lower(), "security_severity": h.score,
            "path": normal_path(h.path), "line": h.line, "fingerprint": h.fingerprint, "message": h.message}


def _cell(text: object) -> str:
    """Table-cell safe: one line, pipes escaped, HTML-ish brackets neutralised."""
    out = " ".join(str(text).split()).replace("\\", "\\\\").replace("|", "\\|")
    return out.replace("<", "&lt;").replace(">", "&gt;")


def _link(path: str, line: int | None) -> str:
    """A link to the file at the commit when running in Actions, else the plain path."""
    shown = f"{path}:{line}" if line else path
    repo, sha = os.environ.get("GITHUB_REPOSITORY"), os.environ.get("GITHUB_SHA")
    if not (repo and sha and path):
        return f"`{_cell(shown)}`"
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    anchor = f"#L{line}" if line else ""
    target = quote(path, safe="/@!$&'*+,;=:-._~")
    return f"[{_cell(shown)}]({server}/{repo}/blob/{sha}/{target}{anchor})"


def _provenance(v: Verdict) -> list[str]:
    """One line: the run id, expected stages and digests the inputs were checked against, when any."""
    e = v.expectations
    parts = []
    if e.run_id is not None:
        parts.append(f"run id `{_cell(e.run_id)}`")
    if e.stages:
        parts.append("expected stages " + ", ".join(f"`{_cell(s)}`" for s in e.stages))
    if v.digests:
        bad = sum(d.status != "ok" for d in v.digests)
        parts.append(f"{len(v.digests)} SARIF digest(s) checked, " + (f"{bad} not matching" if bad else "all matching"))
    return [f"Checked against: {'; '.join(parts)}.", ""] if parts else []


def _more(shown: int, total: int) -> list[str]:
    return [f"_{total - shown} more in the verdict JSON._", ""] if total > shown else []


def markdown(v: Verdict) -> str:
    """The job summary: verdict, stage x severity table, violations, top findings, waivers, tools."""
    head = "✅ **PASS**" if v.passed else f"❌ **FAIL** ({len(v.violations)} violation(s))"
    total = sum(sum(c.values()) for c in v.counts.values())
    out = [f"## mlsec gate: {head}", "",
           f"Policy `{_cell(v.policy.path)}` (sha256 `{v.policy.sha256[:12]}`) over {len(v.inputs)} SARIF file(s): "
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
        out += [f"| {h.severity.name.lower()} ({h.score:.1f}) | {_cell(stage)} | `{_cell(h.rule)}` | "
                f"{_link(normal_path(h.path), h.line)} | {_cell(h.message[:200])} |" for stage, h in v.top]
        out.append("")
    if v.waivers:
        out += ["### Waivers", "", "| waiver | status | matched | owner | expires | reason |",
                "|---|---|---:|---|---|---|"]
        out += [f"| {_cell(u.waiver.id)} | {u.status} | {u.matched} | {_cell(u.waiver.owner)} | "
                f"{u.waiver.expires.isoformat()} | {_cell(u.waiver.reason)} |" for u in v.waivers[:_MAX_ROWS]]
        out += ["", *_more(_MAX_ROWS, len(v.waivers))]
    if v.tools:
        out += ["### Tools", "", "| stage | tool | version | status |", "|---|---|---|---|"]
        out += [f"| {_cell(s)} | {_cell(t.name)} | {_cell(t.version or '')} | {t.status.value} |"
                for s, t in v.tools[:_MAX_ROWS]]
        out += ["", *_more(_MAX_ROWS, len(v.tools))]
    if v.warnings:
        out += ["### Warnings", ""] + [f"- {_cell(w)}" for w in v.warnings[:_MAX_ROWS]] + [""]
    return "\n".join(out)


_TITLES = {
    "threshold": "More findings than the policy allows",
    "required-stage-missing": "A required stage produced no SARIF",
    "tool-failed": "A tool failed, was missing or timed out",
    "metric": "A metric is outside the policy's bounds",
    "metric-missing": "A metric the policy checks is absent",
    "waiver-expired": "A waiver has expired",
    "waiver-too-long": "A waiver lasts longer than the policy allows",
    "sarif-malformed": "A SARIF input is malformed or truncated",
    "no-inputs": "No SARIF input at all",
    "sarif-stale": "A SARIF file is not from this run",
    "stage-missing": "An expected stage has no SARIF from this run",
    "sarif-tampered": "A SARIF file differs from the digest its stage recorded",
}


def violations_result(v: Verdict) -> StageResult:
    """The violations as findings of stage `gate`, rule ids `gate/<kind>`, for `sarif.write_sarif`."""
    findings = []
    for x in v.violations:
        rule = Rule(id=f"gate/{x.kind}", name=x.kind.title().replace("-", ""), short_description=_TITLES[x.kind],
                    help_text=f"See {DOCS}#{x.kind} for what this means and how to fix it.",
                    help_uri=f"{DOCS}#{x.kind}", tags=("mlsec-gate",))
        findings.append(Finding(rule=rule, message=x.message, severity=Severity.HIGH,
                                location=Location(path=_violation_path(x), start_line=x.line)))
    tool = ToolRun(name="gate", status=ToolStatus.OK, version=__version__)
    return StageResult(GATE_STAGE, tuple(findings), (tool,))


def _violation_path(x: Violation) -> str:
    """Repo-relative when the file is inside the working folder; else its name (a builtin policy)."""
    if not x.path:
        return "mlsec-gate"
    path, cwd = Path(x.path).resolve(), Path.cwd()
    return path.relative_to(cwd).as_posix() if path.is_relative_to(cwd) else Path(x.path).as_posix().lstrip("/")
