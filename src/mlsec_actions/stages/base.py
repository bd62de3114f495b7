"""What a stage is, and the shared path of every scan stage: validate inputs, scan, write SARIF, report.

A scan stage only implements `scan(ctx) -> StageResult` on one root; `run_scan` does the rest the
same way for all of them (exit codes, SARIF location, outputs, summary). It fails closed by construction:
an uncaught exception in `scan` (or in writing the SARIF) still leaves a SARIF whose `mlsec` invocation has
`executionSuccessful: false` and the error, and becomes exit 1 with one line naming the stage and the file
being processed (`processing`), never a traceback.
"""

from __future__ import annotations

import argparse
import contextvars
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mlsec_actions import gha, outputs
from mlsec_actions.errors import ExitCode, MlsecError, UsageError
from mlsec_actions.findings import Finding, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.sanitize import log_line, md_text
from mlsec_actions.sarif import category, write_sarif

# The ToolRun that stands for our own code in a stage's SARIF when the stage itself crashed.
SELF_TOOL = "mlsec"
_processing: contextvars.ContextVar[str | None] = contextvars.ContextVar("mlsec_processing", default=None)


def processing(path: str | os.PathLike[str] | None) -> None:
    """Say which file the stage is working on, so a crash names it (cheap: call it per file)."""
    _processing.set(None if path is None else os.fspath(path))


def current_file() -> str | None:
    """The file last named with `processing`, if any."""
    return _processing.get()


class StageCrash(MlsecError):
    """An uncaught exception inside a stage: exit 1, one line naming the stage and the file."""

    exit_code = ExitCode.ERROR


def crash_message(stage_id: str, exc: BaseException, file: str | None = None) -> str:
    """`code-scan: internal error while processing FILE: ValueError: why`, safe as one log line."""
    where = f" while processing {file}" if file else ""
    return log_line(f"{stage_id}: internal error{where}: {type(exc).__name__}: {exc}")


def _no_locks(args: argparse.Namespace) -> Sequence[Path]:
    return ()


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
    locks: Callable[[argparse.Namespace], Sequence[Path]] = _no_locks
    """Output folders held with `outputs.lock` while it runs (gate, sign, run): one writer per folder."""


def positive_int(value: str) -> int:
    """argparse type: a whole number above zero."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: must be at least 1")
    return number


def non_negative_int(value: str) -> int:
    """argparse type: a whole number, zero or more."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r}: must not be negative")
    return number


def positive_float(value: str) -> float:
    """argparse type: a finite number above zero (seconds, sizes)."""
    try:
        number = float(str(value).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: not a number") from None
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: must be a finite number above 0")
    return number


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
    parser.add_argument("--sarif", type=outputs.output_file, default=f"mlsec-results/{stage_id}.sarif",
                        help="where to write SARIF (default: %(default)s)")
    parser.add_argument("--source-root", type=Path, default=None,
                        help="repository root that SARIF paths are relative to "
                             "(default: $GITHUB_WORKSPACE, else the enclosing git work tree, else PATH)")
    parser.add_argument("--timeout", type=positive_float, default=600.0, help="seconds per tool before it is stopped")


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


def _merge_extra(extra: dict[str, object], new: dict[str, object], prefix: str) -> None:
    """Add one path's run properties (evaluate's metrics, model-scan's formats); code-scan's licence
    inventories of several paths are joined, their manifests' paths made repository-relative."""
    from mlsec_actions import licenses

    for key, value in new.items():
        if key == licenses.PROPERTY and isinstance(value, dict):
            extra[key] = licenses.combine(extra.get(key), licenses.relocate(value, prefix))
        else:
            extra[key] = value


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
    extra: dict[str, object] = {}
    try:
        for target in resolved:
            root = target if target.is_dir() else target.parent
            processing(target)
            result = scan(ScanContext(root=root, target=target, args=args))
            prefix = os.path.relpath(root, source_root).replace(os.sep, "/") if root.is_relative_to(source_root) else ""
            prefix = "" if prefix == "." else prefix
            findings.extend(_relocate(f, prefix) for f in result.findings)
            tools.extend(result.tools)
            _merge_extra(extra, result.extra, prefix)
        processing(None)
        merged = StageResult(stage_id, tuple(findings), tuple(tools), extra=extra)
        out = write_sarif(merged, args.sarif, root=source_root)
    except MlsecError:
        raise  # our own errors carry their exit code and one-line message
    except Exception as e:  # a crash: still a SARIF that says so, and exit 1 with one line
        message = crash_message(stage_id, e, current_file())
        write_crash_sarif(stage_id, args.sarif, message, findings, tools, source_root)
        raise StageCrash(message) from None
    report(merged, out)
    return ExitCode.OK if merged.succeeded else ExitCode.ERROR


def crash_result(stage_id: str, message: str, findings: Sequence[Finding] = (),
                 tools: Sequence[ToolRun] = ()) -> StageResult:
    """A stage result whose `mlsec` invocation failed with `message` (what `mlsec run` also writes on a
    stage's behalf when its process died)."""
    return StageResult(stage_id, tuple(findings), (*tools, ToolRun(SELF_TOOL, ToolStatus.FAILED, message=message)))


def write_crash_sarif(stage_id: str, sarif_file: Path, message: str, findings: Sequence[Finding] = (),
                      tools: Sequence[ToolRun] = (), root: Path | None = None, run_id: str | None = None) -> bool:
    """Write the failed-stage SARIF: with the findings so far, else (they may be what crashed) without any.
    Returns False when not even that could be written (the one-line error still says why)."""
    for kept in (findings, ()):
        try:
            write_sarif(crash_result(stage_id, message, kept, tools), sarif_file, root=root, run_id=run_id)
            return True
        except Exception:  # noqa: S112 -- the next attempt carries less; the caller reports the first error
            continue
    return False


def report(result: StageResult, sarif_file: Path) -> None:
    """Tell the user what happened: stderr line, tool failures, coverage gaps, step outputs, job summary.
    Every tool text is hostile (file names, a scanner's notes) and goes through `log_line` / `md_text`."""
    counts = result.counts()
    parts = ", ".join(f"{counts[s]} {s.name.lower()}" for s in sorted(Severity, reverse=True) if counts[s])
    print(log_line(f"{result.stage}: {len(result.findings)} findings ({parts or 'none'}); SARIF: {sarif_file}"),
          file=sys.stderr)
    failed = [t for t in result.tools if not t.status.succeeded]
    for t in result.tools:
        for note in t.notes:
            print(log_line(f"{result.stage}: note: {t.name}: {note}"), file=sys.stderr)
            gha.annotation("warning", f"{t.name}: {note}", title=f"mlsec {result.stage}")
    for t in failed:
        print(log_line(f"{result.stage}: error: {t.name} {t.status.value}: {t.message}"), file=sys.stderr)
        gha.annotation("error", f"{t.name} {t.status.value}: {t.message}", title=f"mlsec {result.stage}")
    gaps = result.gaps
    if gaps:
        print(log_line(f"{result.stage}: not covered: {len(gaps)} gap(s), e.g. {gaps[0][0]}: {gaps[0][1].detail}"),
              file=sys.stderr)
    gha.set_output("sarif-file", str(sarif_file))
    gha.set_output("category", category(result.stage))
    gha.set_output("findings", str(len(result.findings)))
    for sev in Severity:
        gha.set_output(sev.name.lower(), str(counts[sev]))
    gha.set_output("tool-errors", str(len(failed)))
    gha.set_output("coverage-gaps", str(len(gaps)))
    rows = "".join(f"| {s.name.lower()} | {counts[s]} |\n" for s in sorted(Severity, reverse=True))
    status = "all tools ran" if not failed else "FAILED: " + ", ".join(f"{t.name} ({t.status.value})" for t in failed)
    if gaps:  # "all tools ran" alone would read as "everything was checked"
        status = ("the tools ran" if not failed else status) + f", but {len(gaps)} coverage gap(s): not everything " \
                 "was checked"
    listed = "".join(f"- {md_text(tool)}: {md_text(g.detail)}\n" for tool, g in gaps[:20])
    more = f"- and {len(gaps) - 20} more (see the SARIF)\n" if len(gaps) > 20 else ""
    gha.append_summary(f"### mlsec {result.stage}\n\n{len(result.findings)} findings; {md_text(status)}.\n\n"
                       f"| severity | findings |\n|---|---|\n{rows}"
                       + (f"\nNot covered:\n\n{listed}{more}" if gaps else ""))
