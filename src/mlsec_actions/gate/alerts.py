"""The verdict's violations as SARIF alerts (category `mlsec/gate`), one rule `gate/<kind>` per kind.

GitHub needs a location on every result (the Multitool's GHAS rule GH1015 wants a non-empty `locations`
array, GH1016 a physical location). A violation points at the caller's policy line or the SARIF file
concerned; when there is no file of the caller's to point at (a builtin policy, a stage that left no
file), it points at the calling workflow file in Actions (`$GITHUB_WORKFLOW_REF`, a file in the caller's
repository) and elsewhere at the pseudo-location `mlsec-gate` (docs/gate.md#outputs).
"""

from __future__ import annotations

import os
from pathlib import Path

from mlsec_actions import __version__, sanitize
from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.gate.engine import GATE_STAGE, Verdict
from mlsec_actions.gate.model import Policy
from mlsec_actions.gate.report import DOCS
from mlsec_actions.gate.rules import Violation

PSEUDO_LOCATION = "mlsec-gate"

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
    "coverage-gap": "A stage could not check everything (coverage gap)",
    "coverage-required": "Something the policy requires was not checked",
    "license": "A dependency's licence is denied or not allowed",
    "license-unknown": "A dependency declares no licence",
    "license-unchecked": "Dependency licences could not be checked",
}


def violations_result(v: Verdict) -> StageResult:
    """The violations as findings of stage `gate`, rule ids `gate/<kind>`, for `sarif.write_sarif`."""
    findings = []
    for x in v.violations:
        rule = Rule(id=f"gate/{x.kind}", name=x.kind.title().replace("-", ""), short_description=_TITLES[x.kind],
                    help_text=f"See {DOCS}#{x.kind} for what this means and how to fix it.",
                    help_uri=f"{DOCS}#{x.kind}", tags=("mlsec-gate",))
        findings.append(Finding(rule=rule, message=sanitize.log_line(_text(x.message)), severity=Severity.HIGH,
                                location=_location(x, v.policy)))
    tool = ToolRun(name="gate", status=ToolStatus.OK, version=__version__)
    return StageResult(GATE_STAGE, tuple(findings), (tool,))


def _location(x: Violation, policy: Policy) -> Location:
    if not x.path or (policy.builtin is not None and x.path == policy.path):
        return Location(path=caller_workflow() or PSEUDO_LOCATION, start_line=1)
    return Location(path=_text(_relative(x.path)), start_line=x.line)


def _text(text: str) -> str:
    """Text that encodes as UTF-8: a file name that is not UTF-8 reaches us with surrogates."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def caller_workflow() -> str | None:
    """The calling workflow's file, repository-relative, when running in Actions (`owner/repo/<path>@<ref>`)."""
    ref, repo = os.environ.get("GITHUB_WORKFLOW_REF", ""), os.environ.get("GITHUB_REPOSITORY", "")
    if not (ref and repo and ref.startswith(repo + "/")):
        return None
    path = ref[len(repo) + 1:].partition("@")[0]
    return path if path.startswith(".github/workflows/") and ".." not in path.split("/") else None


def _relative(file: str) -> str:
    """Repo-relative when the file is inside the working folder; else as given, without a leading '/'."""
    path, cwd = Path(file).resolve(), Path.cwd()
    return path.relative_to(cwd).as_posix() if path.is_relative_to(cwd) else Path(file).as_posix().lstrip("/")
