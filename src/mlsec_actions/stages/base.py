"""What a stage is, and the shared path of every scan stage: validate inputs, scan, write SARIF, report.

A scan stage only implements `scan(ctx) -> StageResult` on one root; `run_scan` does the rest the
same way for all of them (exit codes, SARIF location, outputs, summary).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mlsec_actions import gha
from mlsec_actions.errors import ExitCode, UsageError
from mlsec_actions.findings import Finding, Severity, StageResult, ToolRun
from mlsec_actions.sarif import category, write_sarif


@dataclass(frozen=True)
class Stage:
    """One `mlsec <id>` sub-command."""

    id: str
    """Stage id: CLI name, action folder, SARIF category suffix."""
    summary: str
    """One line for `mlsec stages` and `--help`."""
    configure: Callable[[argparse.ArgumentParser], None]
    """Adds the stage's own options."""
    execute: Callable[[argparse.Namespace], int]
    """Runs it; returns the exit code."""
    listed: bool = True
    """False for helper commands that are not pipeline stages (`policy`): hidden from `mlsec stages`."""


@dataclass(frozen=True)
class ScanContext:
    """What a scan stage gets for one scanned root."""

    root: Path
    """The folder (or single file's folder) being scanned, resolved."""
    target: Path
    """What the user named: the folder itself or a single file in it."""
    args: argparse.Namespace
    """All parsed options (stage-specific ones included)."""


def add_scan_arguments(parser: argparse.ArgumentParser, stage_id: str) -> None:
    """The options every scan stage shares (DESIGN.md's CLI contract)."""
    parser.add_argument("paths", nargs="*", metavar="PATH", default=["."],
                        help="files or folders to scan (default: current folder)")
    parser.add_argument("--sarif", type=Path, default=Path("mlsec-results") / f"{stage_id}.sarif",
                        help="where to write SARIF (default: %(default)s)")
    parser.add_argument("--source-root", type=Path, default=None,
                        help="repository root that SARIF paths are relative to "
                             "(default: $GITHUB_WORKSPACE, else the enclosing git work tree, else PATH)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per tool before it is stopped")


def _git_top(path: Path) -> Path | None:
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _source_root(explicit: Path | None, first: Path) -> Path:
    if explicit is not None:
        if not explicit.is_dir():
            raise UsageError(f"{explicit}: source root is not a folder")
        return explicit.resolve()
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace and first.is_relative_to(Path(workspace).resolve()):
        return Path(workspace).resolve()
    return _git_top(first) or (first if first.is_dir() else first.parent)


def _relocate(finding: Finding, prefix: str) -> Finding:
    if not prefix:
        return finding
    path = f"{prefix}/{finding.location.path}" if finding.location.path else prefix
    return replace(finding, location=replace(finding.location, path=path))


def run_scan(args: argparse.Namespace, stage_id: str, scan: Callable[[ScanContext], StageResult]) -> int:
    """Validate paths, scan each, merge, write SARIF, print and export a summary; return the exit code."""
    targets = [Path(p) for p in args.paths]
    for t in targets:
        if not t.exists():
            raise UsageError(f"{t}: no such file or folder")
    resolved = [t.resolve() for t in targets]
    source_root = _source_root(args.source_root, resolved[0])
    findings: list[Finding] = []
    tools: list[ToolRun] = []
    for target in resolved:
        root = target if target.is_dir() else target.parent
        result = scan(ScanContext(root=root, target=target, args=args))
        prefix = os.path.relpath(root, source_root).replace(os.sep, "/") if root.is_relative_to(source_root) else ""
        findings.extend(_relocate(f, "" if prefix == "." else prefix) for f in result.findings)
        tools.extend(result.tools)
    merged = StageResult(stage_id, tuple(findings), tuple(tools))
    out = write_sarif(merged, args.sarif, root=source_root)
    report(merged, out)
    return ExitCode.OK if merged.succeeded else ExitCode.ERROR


def report(result: StageResult, sarif_file: Path) -> None:
    """Tell the user what happened: stderr line, tool failures, step outputs, job summary."""
    counts = result.counts()
    parts = ", ".join(f"{counts[s]} {s.name.lower()}" for s in sorted(Severity, reverse=True) if counts[s])
    print(f"{result.stage}: {len(result.findings)} findings ({parts or 'none'}); SARIF: {sarif_file}",
          file=sys.stderr)
    failed = [t for t in result.tools if not t.status.succeeded]
    for t in result.tools:
        for note in t.notes:
            print(f"{result.stage}: note: {t.name}: {note}", file=sys.stderr)
            gha.annotation("warning", f"{t.name}: {note}", title=f"mlsec {result.stage}")
    for t in failed:
        print(f"{result.stage}: error: {t.name} {t.status.value}: {t.message}", file=sys.stderr)
        gha.annotation("error", f"{t.name} {t.status.value}: {t.message}", title=f"mlsec {result.stage}")
    gha.set_output("sarif-file", str(sarif_file))
    gha.set_output("category", category(result.stage))
    gha.set_output("findings", str(len(result.findings)))
    for sev in Severity:
        gha.set_output(sev.name.lower(), str(counts[sev]))
    gha.set_output("tool-errors", str(len(failed)))
    rows = "".join(f"| {s.name.lower()} | {counts[s]} |\n" for s in sorted(Severity, reverse=True))
    status = "all tools ran" if not failed else "FAILED: " + ", ".join(f"{t.name} ({t.status.value})" for t in failed)
    gha.append_summary(f"### mlsec {result.stage}\n\n{len(result.findings)} findings; {status}.\n\n"
                       f"| severity | findings |\n|---|---|\n{rows}")
