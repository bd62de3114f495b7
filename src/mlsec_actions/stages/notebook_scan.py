"""notebook-scan (ML stage 3): Jupyter notebooks read as JSON, never run: secrets and personal data in
cells and outputs, risky shell lines, magics and Python, and notebook hygiene (`analyzers/notebook.py`).

Every `.ipynb` under the root is read (regular files only, never through a symlink, up to
`--max-notebook-mb`); one that is too large or not a notebook is a finding and a coverage gap. Past
`--timeout` seconds the walk stops and the analyzer's run is a timeout (fail closed).
"""

from __future__ import annotations

import argparse
import os
import stat
import time
from pathlib import Path

from mlsec_actions.analyzers import notebook, tree
from mlsec_actions.analyzers import notebook_rules as R
from mlsec_actions.findings import (
    CoverageGap,
    Finding,
    GapKind,
    Location,
    StageResult,
    ToolRun,
    ToolStatus,
    sort_findings,
)
from mlsec_actions.stages.base import ScanContext, Stage, add_scan_arguments, positive_int, processing, run_scan

STAGE_ID = "notebook-scan"
TOOL = "mlsec-notebook-scan"
VERSION = "1"
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "node_modules", "mlsec-results", "__pycache__",
                       ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tox", ".ipynb_checkpoints"})
_MIB = 1024 * 1024


def configure(parser: argparse.ArgumentParser) -> None:
    add_scan_arguments(parser, STAGE_ID)
    parser.add_argument("--max-notebook-mb", type=positive_int, default=64,
                        help="largest notebook read, in MiB; a larger one is a finding (default: %(default)s)")
    parser.add_argument("--max-output-kb", type=positive_int, default=1024,
                        help="characters of one output's text scanned, in KiB (default: %(default)s)")


def _read(path: Path, limit: int) -> bytes | int:
    """The file's bytes, or its size when over `limit` (a regular file only, never through a link)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError("not a regular file")
        if info.st_size > limit:
            return info.st_size
        data = fh.read(limit + 1)
    return len(data) if len(data) > limit else data


def scan_file(rel: str, path: Path, args: argparse.Namespace) -> notebook.Report:
    """One notebook's findings and gaps (an unreadable or oversized file is one finding, never a crash)."""
    limit = int(getattr(args, "max_notebook_mb", 64)) * _MIB
    report = notebook.Report()
    try:
        data = _read(path, limit)
    except OSError as e:
        report.gaps.append(CoverageGap(GapKind.FILE_UNREADABLE, f"could not be read: {e.strerror or e}", path=rel))
        report.findings.append(Finding(R.MALFORMED.rule, f"{rel} could not be read; its cells were not checked",
                                       R.MALFORMED.severity, Location(rel)))
        return report
    if isinstance(data, int):
        report.gaps.append(CoverageGap(GapKind.FILE_SKIPPED, f"{data} bytes, over the {limit}-byte limit: not read",
                                       path=rel))
        report.findings.append(Finding(R.TOO_LARGE.rule, f"{rel} is {data} bytes, over the --max-notebook-mb limit; "
                                       "it was not checked", R.TOO_LARGE.severity, Location(rel)))
        return report
    limits = notebook.Limits(max_output_bytes=int(getattr(args, "max_output_kb", 1024)) * 1024)
    return notebook.scan(rel, data, limits)


def scan(ctx: ScanContext) -> StageResult:
    deadline = time.monotonic() + float(ctx.args.timeout)
    findings: list[Finding] = []
    gaps: list[CoverageGap] = []
    status, message = ToolStatus.OK, ""
    count = 0
    for entry in tree.walk(ctx.root, ctx.target, SKIP_DIRS):
        if entry.path is None:
            if entry.skip is tree.Skip.TOO_DEEP:
                gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"not walked: {entry.problem}", path=entry.rel))
            elif entry.rel.endswith(".ipynb"):
                gaps.append(CoverageGap(GapKind.FILE_SKIPPED, f"not scanned: {entry.problem}", path=entry.rel))
            continue
        if not entry.rel.endswith(".ipynb"):
            continue
        if time.monotonic() > deadline:
            status, message = ToolStatus.TIMEOUT, f"timed out after {ctx.args.timeout:g}s; the rest was not scanned"
            break
        processing(entry.rel)  # a crash below names this notebook
        report = scan_file(entry.rel, entry.path, ctx.args)
        findings.extend(report.findings)
        gaps.extend(report.gaps)
        count += 1
    run = ToolRun(TOOL, status, version=VERSION, message=message, gaps=tuple(gaps))
    return StageResult(STAGE_ID, sort_findings(findings), (run,), extra={"notebooks": count})


def execute(args: argparse.Namespace) -> int:
    return run_scan(args, STAGE_ID, scan)


STAGE = Stage(id=STAGE_ID, summary="Jupyter notebooks read, never run: secrets and personal data in cells and "
                                   "outputs, risky shell lines and magics, hygiene",
              configure=configure, execute=execute)
