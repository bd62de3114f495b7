"""One result per issue across code-scan's tools: same file, same line, same issue -> one finding.

Three secret scanners (trivy, gitleaks, the in-house rules) and two Python checkers (bandit, the in-house
ML rules) see many of the same things. Findings are grouped by file, issue and overlapping lines, where the issue is
`secret` for every secret rule and, for SAST, a shared name from `EQUIVALENT` (bandit's `B301` and ours
`ml/pickle-load` are both `pickle-load`). The kept finding is the one of the first tool in
`TOOL_ORDER`, at the highest severity of the group; its properties list every tool that saw it
(`mlsec-tools`) and every rule id (`mlsec-rule-ids`), so no tool's id is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from mlsec_actions.findings import Finding

TOOL_ORDER = ("trivy", "mlsec-secrets", "gitleaks", "mlsec-ml-sast", "bandit")
"""Whose finding is kept when several saw the same issue: trivy first, so the rule ids (and so the GitHub
alerts) of earlier releases stay; then ours, whose names are the most specific for ML code."""

EQUIVALENT = {
    "bandit/B301": "pickle-load", "ml/pickle-load": "pickle-load",
    "bandit/B506": "yaml-load", "ml/yaml-unsafe-load": "yaml-load",
    "bandit/B307": "eval", "bandit/B102": "eval", "ml/eval-untrusted": "eval",
    "bandit/B602": "shell", "bandit/B604": "shell", "ml/subprocess-shell": "shell",
    "bandit/B501": "tls-verify", "ml/requests-no-verify": "tls-verify",
    "bandit/B202": "tar-extract", "ml/tarfile-extractall": "tar-extract",
    "bandit/B614": "torch-load", "ml/torch-load": "torch-load",
    "bandit/B615": "hf-revision", "ml/hf-unpinned-revision": "hf-revision",
    "bandit/B104": "bind-all", "ml/app-public-no-auth": "bind-all",
    "bandit/B105": "secret", "bandit/B106": "secret", "bandit/B107": "secret",  # hard-coded passwords
}
"""Rule ids of different tools that name one issue."""


def tool_of(finding: Finding) -> str:
    """The tool that produced a finding, from its rule id (`trivy/secret/x` -> trivy, `secret/x` -> ours)."""
    prefix = finding.rule.id.split("/", 1)[0]
    return {"secret": "mlsec-secrets", "ml": "mlsec-ml-sast"}.get(prefix, prefix)


def issue_of(finding: Finding) -> str:
    """What the finding is about, the same for every tool that reports it."""
    if "secret" in finding.rule.tags or finding.rule.id.startswith(("secret/", "trivy/secret/", "gitleaks/")):
        return "secret"
    return EQUIVALENT.get(finding.rule.id, finding.rule.id)


def _rank(finding: Finding) -> int:
    tool = tool_of(finding)
    return TOOL_ORDER.index(tool) if tool in TOOL_ORDER else len(TOOL_ORDER)


def _overlapping(findings: list[Finding]) -> list[list[Finding]]:
    """Findings of one file and issue grouped where their line ranges overlap (a key block at 1-8 and 2-7)."""
    groups: list[list[Finding]] = []
    last_end = -1
    for f in sorted(findings, key=lambda f: (f.location.start_line or 0, f.location.end_line or 0)):
        start = f.location.start_line or 0
        end = max(start, f.location.end_line or start)
        if groups and start <= last_end:
            groups[-1].append(f)
            last_end = max(last_end, end)
        else:
            groups.append([f])
            last_end = end
    return groups


def _combine(group: list[Finding]) -> Finding:
    group = sorted(group, key=_rank)
    kept = group[0]
    tools = sorted({tool_of(f) for f in group}, key=lambda t: TOOL_ORDER.index(t) if t in TOOL_ORDER else 99)
    ids = list(dict.fromkeys(f.rule.id for f in group))
    props = (*kept.properties, ("mlsec-tools", ", ".join(tools)), ("mlsec-rule-ids", ", ".join(ids)))
    worst = max(f.severity for f in group)
    score = kept.score if worst == kept.severity else None  # a raised severity takes its default score
    return replace(kept, severity=worst, score=score, properties=props)


def merge(findings: Iterable[Finding]) -> list[Finding]:
    """Deduplicated findings; a finding without a line is never merged (nothing says it is the same)."""
    by_issue: dict[tuple[str, str], list[Finding]] = {}
    out: list[Finding] = []
    for f in findings:
        if f.location.start_line is None:
            out.append(_combine([f]))  # alone, but named like every other result
        else:
            by_issue.setdefault((f.location.path, issue_of(f)), []).append(f)
    for same in by_issue.values():
        out.extend(_combine(group) for group in _overlapping(same))
    return out
