"""One result per issue across code-scan's tools: same file, same line, same issue -> one finding.

Three secret scanners (trivy, gitleaks, the in-house rules), three Python checkers (bandit, semgrep's taint
rules, the in-house ML rules) and two IaC checkers (trivy, checkov) see many of the same things. Findings are
grouped by file, issue and overlapping lines, where the issue is `secret` for every secret rule, for SAST a
shared name from `EQUIVALENT` (bandit's `B301` and ours `ml/pickle-load` are both `pickle-load`), and for IaC
one from `IAC_EQUIVALENT`. The kept finding is the one of the first tool in `TOOL_ORDER`, at the highest severity of
the group (at the first line any of them names); its properties list every tool that saw it
(`mlsec-tools`) and every rule id (`mlsec-rule-ids`), so no tool's id is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from mlsec_actions.findings import Finding

TOOL_ORDER = ("trivy", "mlsec-secrets", "gitleaks", "mlsec-ml-sast", "bandit", "semgrep", "checkov")
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
    "semgrep/pickle-untrusted": "pickle-load", "semgrep/torch-load-untrusted": "torch-load",
    "semgrep/yaml-load-untrusted": "yaml-load", "semgrep/eval-untrusted": "eval", "semgrep/shell-injection": "shell",
    "semgrep/tar-extract-untrusted": "tar-extract", "semgrep/requests-no-verify": "tls-verify",
    "bandit/B105": "secret", "bandit/B106": "secret", "bandit/B107": "secret",  # hard-coded passwords
}
"""Rule ids of different tools that name one issue."""

IAC_EQUIVALENT = {
    # Dockerfile
    "checkov/CKV_DOCKER_3": "dockerfile-root-user", "trivy/misconfig/DS-0002": "dockerfile-root-user",
    "checkov/CKV_DOCKER_8": "dockerfile-root-user",
    "checkov/CKV_DOCKER_2": "dockerfile-no-healthcheck", "trivy/misconfig/DS-0026": "dockerfile-no-healthcheck",
    "checkov/CKV_DOCKER_4": "dockerfile-add", "trivy/misconfig/DS-0005": "dockerfile-add",
    "checkov/CKV_DOCKER_7": "dockerfile-latest-tag", "trivy/misconfig/DS-0001": "dockerfile-latest-tag",
    "checkov/CKV_DOCKER_1": "dockerfile-port-22", "trivy/misconfig/DS-0004": "dockerfile-port-22",
    # Kubernetes
    "checkov/CKV_K8S_20": "k8s-privilege-escalation", "trivy/misconfig/KSV-0001": "k8s-privilege-escalation",
    "checkov/CKV_K8S_16": "k8s-privileged", "trivy/misconfig/KSV-0017": "k8s-privileged",
    "checkov/CKV_K8S_11": "k8s-cpu-limit", "trivy/misconfig/KSV-0011": "k8s-cpu-limit",
    "checkov/CKV_K8S_10": "k8s-cpu-request", "trivy/misconfig/KSV-0015": "k8s-cpu-request",
    "checkov/CKV_K8S_12": "k8s-memory-request", "trivy/misconfig/KSV-0016": "k8s-memory-request",
    "checkov/CKV_K8S_13": "k8s-memory-limit", "trivy/misconfig/KSV-0018": "k8s-memory-limit",
    "checkov/CKV_K8S_14": "k8s-latest-tag", "trivy/misconfig/KSV-0013": "k8s-latest-tag",
    "checkov/CKV_K8S_22": "k8s-writable-root-fs", "trivy/misconfig/KSV-0014": "k8s-writable-root-fs",
    "checkov/CKV_K8S_23": "k8s-runs-as-root", "trivy/misconfig/KSV-0012": "k8s-runs-as-root",
    "checkov/CKV_K8S_40": "k8s-low-uid", "trivy/misconfig/KSV-0020": "k8s-low-uid",
    "checkov/CKV_K8S_21": "k8s-default-namespace", "trivy/misconfig/KSV-0110": "k8s-default-namespace",
    "checkov/CKV_K8S_31": "k8s-seccomp", "trivy/misconfig/KSV-0030": "k8s-seccomp",
    "checkov/CKV_K8S_17": "k8s-host-pid", "trivy/misconfig/KSV-0010": "k8s-host-pid",
    "checkov/CKV_K8S_18": "k8s-host-ipc", "trivy/misconfig/KSV-0008": "k8s-host-ipc",
    "checkov/CKV_K8S_19": "k8s-host-network", "trivy/misconfig/KSV-0009": "k8s-host-network",
    # Terraform (AWS)
    "checkov/CKV_AWS_20": "s3-public-acl", "trivy/misconfig/AWS-0092": "s3-public-acl",
    "checkov/CKV_AWS_24": "sg-open-admin-port", "checkov/CKV_AWS_25": "sg-open-admin-port",
    "trivy/misconfig/AWS-0107": "sg-open-admin-port",
    "checkov/CKV_AWS_23": "sg-description", "trivy/misconfig/AWS-0099": "sg-description",
    "trivy/misconfig/AWS-0124": "sg-description",
    "checkov/CKV_AWS_18": "s3-access-logging", "trivy/misconfig/AWS-0089": "s3-access-logging",
    "checkov/CKV_AWS_21": "s3-versioning", "trivy/misconfig/AWS-0090": "s3-versioning",
    "checkov/CKV_AWS_145": "s3-kms-encryption", "trivy/misconfig/AWS-0132": "s3-kms-encryption",
    "checkov/CKV2_AWS_6": "s3-public-access-block", "trivy/misconfig/AWS-0094": "s3-public-access-block",
}
"""checkov and trivy checks that test the same thing (same file and overlapping lines -> one result). trivy may
report a Dockerfile check without a line; such a result joins the other tool's result of the same file and issue."""


_IAC_ISSUES = frozenset(IAC_EQUIVALENT.values())


def tool_of(finding: Finding) -> str:
    """The tool that produced a finding, from its rule id (`trivy/secret/x` -> trivy, `secret/x` -> ours)."""
    prefix = finding.rule.id.split("/", 1)[0]
    return {"secret": "mlsec-secrets", "ml": "mlsec-ml-sast"}.get(prefix, prefix)


def issue_of(finding: Finding) -> str:
    """What the finding is about, the same for every tool that reports it."""
    if finding.rule.id.startswith("gitleaks/history/"):
        return "secret-in-history"  # a commit's secret is not the tree's, even at the same file and line
    if "secret" in finding.rule.tags or finding.rule.id.startswith(("secret/", "trivy/secret/", "gitleaks/")):
        return "secret"
    rid = finding.rule.id
    if rid.startswith("trivy/misconfig/"):
        rid = rid.replace("/AVD-", "/", 1)  # older trivy releases name checks AVD-DS-0002
    return EQUIVALENT.get(rid) or IAC_EQUIVALENT.get(rid, rid)


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
    own = dict(p for f in reversed(group) for p in f.properties)  # every tool's properties; the kept one's win
    own.update(kept.properties)
    props = (*own.items(), ("mlsec-tools", ", ".join(tools)), ("mlsec-rule-ids", ", ".join(ids)))
    located = next((f.location for f in group if f.location.start_line is not None), kept.location)
    worst = max(f.severity for f in group)
    score = kept.score if worst == kept.severity else None  # a raised severity takes its default score
    return replace(kept, severity=worst, score=score, properties=props, location=located)


def merge(findings: Iterable[Finding]) -> list[Finding]:
    """Deduplicated findings; a finding without a line is never merged (nothing says it is the same)."""
    by_issue: dict[tuple[str, str], list[Finding]] = {}
    lineless: list[Finding] = []
    out: list[Finding] = []
    for f in findings:
        if f.location.start_line is None:
            lineless.append(f)
        else:
            by_issue.setdefault((f.location.path, issue_of(f)), []).append(f)
    groups = {key: _overlapping(same) for key, same in by_issue.items()}
    for f in lineless:
        key = (f.location.path, issue_of(f))
        if key[1] in _IAC_ISSUES and key in groups:
            groups[key][0].append(f)  # a file-level IaC result is the same issue as the other tool's
        else:
            out.append(_combine([f]))  # alone, but named like every other result
    for same_issue in groups.values():
        out.extend(_combine(group) for group in same_issue)
    return out
