"""Issue 9 item 12, "weak input checks": inputs that are well-formed enough to pass a careless reader and
would each turn a red gate green. Built beside the hostile repository (`build`), used by
`test_weak_inputs.py`:

- a scanner that prints `{}` (a JSON object, but no report): must be a failed tool, not a clean result;
- a SARIF run with no `invocations`: nothing shows that a tool ran, so it is not a successful run;
- a policy threshold with `stage: '['` (a glob that matches nothing): refused, not silently inert;
- a run truncated by our own writer (30,000 findings, 25,000 kept in the file, as GitHub's limit asks):
  the gate counts 30,000, so `max: 25000` fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

TRUE_COUNT = 30_000
"""Findings in the truncated run; the file keeps `sarif.MAX_RESULTS_PER_RUN` (25,000) of them."""


@dataclass(frozen=True)
class WeakInputs:
    """Where each payload is."""

    empty_report_trivy: Path
    """An executable standing in for trivy: `--version` answers, every scan prints `{}` and exits 0."""
    no_invocations: Path
    """A folder with one code-scan SARIF whose run has no `invocations` and no results."""
    bad_stage_policy: Path
    """A policy whose only threshold has `stage: '['`."""
    truncated: Path
    """A folder for one code-scan SARIF of `TRUE_COUNT` high findings, truncated by our writer
    (`write_truncated` fills it)."""
    max_kept_policy: Path
    """`max: 25000` high findings: passes on what the truncated file holds, fails on the true count."""


def build(root: Path, beside: Path) -> WeakInputs:
    """The small SARIF and the policies under `root/weak/` (the attacker's tree; a PR's policy comes from
    it); under `beside`, outside the tree, the fake trivy (nothing in the tree is ever executed) and the
    13 MB truncated SARIF (as a stage job hands it to the gate; outside the tree so the stages' own
    adversarial scans of the tree do not pay for reading it)."""
    weak = root / "weak"
    beside.mkdir(parents=True, exist_ok=True)
    trivy = beside / "trivy"
    trivy.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo "Version: 0.76.0"; exit 0; fi\necho "{}"\n')
    trivy.chmod(0o755)
    bare = weak / "no-invocations"
    bare.mkdir(parents=True)
    (bare / "code-scan.sarif").write_text(json.dumps({
        "version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{"tool": {"driver": {"name": "trivy", "rules": []}}, "results": [],
                  "properties": {"mlsec-stage": "code-scan"}}]}))
    bad_stage = weak / "bad-stage.yml"
    bad_stage.write_text("version: 1\nthresholds:\n  - id: nothing-ever\n    stage: '['\n    severity: low\n"
                         "    max: 0\n")
    max_kept = weak / "max-kept.yml"
    max_kept.write_text("version: 1\nthresholds:\n  - id: at-most-what-the-file-holds\n    severity: high\n"
                        "    max: 25000\n")
    return WeakInputs(trivy, bare, bad_stage, beside / "truncated", max_kept)


def write_truncated(weak: WeakInputs) -> None:
    """The truncated run (`weak.truncated`), written by our own SARIF writer; 1-2 s and 13 MB, so only the
    test that reads it makes it, once."""
    from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus
    from mlsec_actions.sarif import write_sarif

    if (weak.truncated / "code-scan.sarif").is_file():
        return
    rule = Rule(id="trivy/secret/generic", name="Generic", short_description="a secret")
    findings = tuple(Finding(rule=rule, message="m", severity=Severity.HIGH,
                             location=Location(path=f"src/f{i}.py", start_line=1)) for i in range(TRUE_COUNT))
    write_sarif(StageResult("code-scan", findings, (ToolRun("trivy", ToolStatus.OK),)),
                weak.truncated / "code-scan.sarif")
