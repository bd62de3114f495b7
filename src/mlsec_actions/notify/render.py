"""The summary as plain text lines and as the generic JSON document (the webhook body, PagerDuty's details).

Texts in the summary are already `log_line`-safe; these renderings add nothing from outside it.
"""

from __future__ import annotations

from typing import Any

from mlsec_actions.notify.model import Summary

SCHEMA = "mlsec-notify/1"


def stage_line(s: Any) -> str:
    counts = ", ".join(f"{n} {sev}" for sev, n in s.counts.items() if n) or "no findings"
    extra = []
    if not s.readable:
        extra.append("SARIF not readable")
    if s.tool_errors:
        extra.append(f"{s.tool_errors} tool error(s)")
    if s.coverage_gaps:
        extra.append(f"{s.coverage_gaps} coverage gap(s)")
    if s.seconds is not None:
        extra.append(f"{s.seconds:.1f}s")
    return f"{s.stage}: {counts}" + (f" ({'; '.join(extra)})" if extra else "")


def title_line(t: Any) -> str:
    line = f"[{t.severity}] {t.stage} {t.rule}: {t.title}"
    if t.location:
        line += f" at {t.location}"
    if t.message:
        line += f" - {t.message}"
    return line


def lines(summary: Summary) -> list[str]:
    """A plain-text message: headline, one line per stage, top findings, warnings, the run's link."""
    out = [summary.headline()]
    out += [f"- {stage_line(s)}" for s in summary.stages]
    if summary.coverage_total:
        out.append(f"Coverage gaps: {summary.coverage_total}")
    if summary.titles:
        out.append("Top findings:")
        out += [f"- {title_line(t)}" for t in summary.titles]
    out += [f"Warning: {w}" for w in summary.warnings]
    if summary.run_url:
        out.append(summary.run_url)
    return out


def document(summary: Summary) -> dict[str, Any]:
    """The generic JSON document (docs/notify.md#webhook describes every key)."""
    return {
        "schema": SCHEMA,
        "verdict": summary.verdict,
        "violations": summary.violations,
        "run_id": summary.run_id,
        "pipeline": summary.pipeline,
        "repository": summary.repository,
        "ref": summary.ref,
        "sha": summary.sha,
        "run_url": summary.run_url,
        "totals": summary.totals(),
        "coverage_gaps": summary.coverage_total,
        "stages": [{"stage": s.stage, "findings": dict(s.counts), "tool_errors": s.tool_errors,
                    "coverage_gaps": s.coverage_gaps, "seconds": s.seconds, "readable": s.readable}
                   for s in summary.stages],
        "top_findings": [{"stage": t.stage, "rule": t.rule, "severity": t.severity, "title": t.title,
                          **({"message": t.message} if t.message is not None else {}),
                          **({"location": t.location} if t.location is not None else {})} for t in summary.titles],
        "warnings": list(summary.warnings),
    }
