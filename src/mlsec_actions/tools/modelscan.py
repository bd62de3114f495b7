"""modelscan (Protect AI) as a second opinion: its findings are merged, deduplicated against ours.

It runs from an empty temporary folder so a `modelscan-settings.toml` planted in the scanned repository
cannot switch its scanners off. Exit codes: 0 clean, 1 issues, 2 per-file scan errors (reported as
notes: our own analyzers report malformed files), 3 no supported files; anything else is a failure.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlsec_actions.findings import Finding, Location, Rule, Severity, ToolRun, ToolStatus
from mlsec_actions.tools.base import ToolSpec, execute, version

SPEC = ToolSpec(
    name="modelscan",
    executable="modelscan",
    version_args=("--version",),
    version_pattern=r"version\s+(\S+)",
    ok_exit_codes=frozenset({0, 1, 2, 3}),
    version_in_output=True,  # the report's summary has it; `modelscan --version` costs 0.7 s of imports
    install_hint="install mlsec-actions[models] (the pinned modelscan)",
)
DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/model-scan.md"
_MAX_NOTES = 5

UNSAFE_OPERATOR = Rule(
    id="modelscan/unsafe-operator", name="ModelscanUnsafeOperator",
    short_description="modelscan: model imports an unsafe operator",
    full_description="modelscan found an operator in a serialized model that can run code when the model is "
                     "loaded, and the in-house analyzers did not report the same import.",
    help_text="Do not load the model; get it from a trusted source or convert it to safetensors.",
    help_uri=f"{DOCS}#modelscanunsafe-operator", tags=("model", "supply-chain"), precision="high")


def scan(target: Path, root: Path, timeout: float) -> tuple[list[Finding], ToolRun]:
    """Run modelscan on `target` (a folder, or one file in `root`); paths come back relative to `root`."""
    with tempfile.TemporaryDirectory(prefix="mlsec-modelscan-") as tmp:
        out = Path(tmp) / "report.json"
        got = execute(SPEC, ["scan", "-p", str(target), "-r", "json", "-o", str(out), "-l", "ERROR"],
                      cwd=Path(tmp), timeout=timeout)
        run = got.run
        if run.status is not ToolStatus.OK:
            return [], run
        try:
            report = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return [], replace(run, status=ToolStatus.FAILED, message=f"no JSON report: {e}")
    if not isinstance(report, dict):
        return [], replace(run, status=ToolStatus.FAILED, message="report is not a JSON object")
    prefix = "" if target == root else target.parent.relative_to(root).as_posix()
    findings = [_issue(i, prefix) for i in report.get("issues") or [] if isinstance(i, dict)]
    errors = [e for e in report.get("errors") or [] if isinstance(e, dict)]
    notes = tuple(f"{e.get('source', '?')}: {e.get('description', e.get('category', 'error'))}"
                  for e in errors[:_MAX_NOTES])
    if len(errors) > _MAX_NOTES:
        notes += (f"... and {len(errors) - _MAX_NOTES} more modelscan errors",)
    found = (report.get("summary") or {}).get("modelscan_version")
    return findings, replace(run, notes=run.notes + notes, version=str(found) if found else version(SPEC))


def _issue(issue: dict[str, Any], prefix: str) -> Finding:
    source = str(issue.get("source", ""))
    path, _, member = source.partition(":")
    if prefix and prefix != ".":
        path = f"{prefix}/{path}"
    module, operator = str(issue.get("module", "")), str(issue.get("operator", ""))
    qualname = f"{module}.{operator}" if module else operator
    try:
        severity = Severity.parse(str(issue.get("severity", "HIGH")))
    except ValueError:
        severity = Severity.HIGH
    return Finding(rule=UNSAFE_OPERATOR, severity=severity,
                   message=str(issue.get("description") or f"Unsafe operator {qualname}"),
                   location=Location(path, logical="::".join(p for p in (member, qualname) if p) or None,
                                     logical_kind="function"),
                   properties=(("global", qualname), ("scanner", str(issue.get("scanner", "")))))


def merge(ours: Iterable[Finding], theirs: Iterable[Finding]) -> list[Finding]:
    """Ours, plus modelscan's findings for a (file, global) we did not already report."""
    mine = list(ours)
    known = {(f.location.path, props.get("global", "")) for f in mine for props in [dict(f.properties)]}
    return mine + [f for f in theirs if (f.location.path, dict(f.properties).get("global", "")) not in known]
