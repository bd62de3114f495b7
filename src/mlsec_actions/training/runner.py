"""One training run, watched: digests before, the bounded child process, the tree and digests after.

Fails closed: a command that cannot start, exits non-zero, is killed or passes its time limit is a failed
`training-command` tool run (the gate fails on it), and whatever it left behind is still recorded. The child
runs in its own process group, killed as a whole when the command exits, so nothing it started keeps writing
after the outputs were hashed and the provenance written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlsec_actions.digests import hash_files, scan_tree
from mlsec_actions.errors import InputError
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Severity, ToolRun, ToolStatus
from mlsec_actions.sanitize import log_line
from mlsec_actions.tools import process
from mlsec_actions.training import observe, opened, rules, snapshot, trace

COMMAND_TOOL = "training-command"
"""The ToolRun that stands for the caller's command."""
MAX_LOG_BYTES = 64 * 1024 * 1024
"""Standard output kept; more stops the run (a log of gigabytes is a fault, not a model)."""
MAX_LISTED = 50
"""Findings listed per kind of change; more are summarised in one."""


@dataclass(frozen=True)
class Plan:
    """What to run and watch."""

    command: tuple[str, ...]
    """The caller's command."""
    workdir: Path
    """Its current folder, the watched tree and the subject base (resolved)."""
    output: Path
    """The declared output folder (resolved, inside `workdir`)."""
    inputs: tuple[Path, ...]
    """Declared input files (folders expanded), resolved."""
    ours: tuple[str, ...]
    """Our own result files inside `workdir` (relative): written after the run, never judged as its writes."""
    env: Mapping[str, str]
    """The command's environment."""
    timeout: float
    """Seconds before the process group is killed."""
    tracer: str | None = None
    """The strace binary that watches reads and network (checked usable), or None: not observed."""
    pins: Mapping[str, str] = field(default_factory=dict)
    """Files pinned in mlsec.lock (relative to `workdir`) -> SHA-256."""
    forbid_network: bool = False
    """`--network forbid`: reaching a non-loopback host is a high finding."""


@dataclass(frozen=True)
class Attempt:
    """One execution of the command."""

    tool: ToolRun
    """How the command ended."""
    outputs: dict[str, str]
    """Output file (relative to `workdir`) -> SHA-256."""
    findings: tuple[Finding, ...]
    """What the run did that it should not have."""
    log: bytes
    """Standard output then the tail of standard error."""
    started: dt.datetime
    """Start, UTC."""
    finished: dt.datetime
    """End, UTC."""
    gaps: tuple[CoverageGap, ...] = ()
    """What was not watched."""
    observed: observe.Judged | None = None
    """What the run read and reached (None: not traced)."""


def rel(path: Path, plan: Plan) -> str:
    got = snapshot.relative_inside(path, plan.workdir)
    return got if got is not None else str(path)


def input_digests(plan: Plan) -> dict[str, str]:
    """Declared inputs by digest, read now (InputError naming a missing or special file: exit 2)."""
    got = hash_files(plan.inputs)
    return {rel(p, plan): d for p, d in got.items()}


def expand_inputs(paths: list[Path]) -> tuple[Path, ...]:
    """Declared inputs, a folder as its regular files; a link or special file in one is refused (exit 2)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            tree = scan_tree(p, ignore=())
            if tree.others:
                name, what = tree.others[0]
                raise InputError(p / name, f"{what} in a declared input folder; declare regular files only")
            out.extend(tree.files)
        elif p.is_file() and not p.is_symlink():
            out.append(p)
        else:
            raise InputError(p, "declared input is missing, a link or not a regular file or folder")
    return tuple(sorted({q.resolve() for q in out}))


def _status(done: process.Completed) -> ToolRun:
    seconds = f"{done.seconds:.1f}s"
    if done.timed_out:
        return ToolRun(COMMAND_TOOL, ToolStatus.TIMEOUT, message=f"timed out after {seconds}; its process group "
                       "was killed and its outputs are not trusted")
    if done.overflowed:
        return ToolRun(COMMAND_TOOL, ToolStatus.FAILED, message=f"printed more than {MAX_LOG_BYTES} bytes; stopped")
    code = done.returncode
    if code != 0:
        lines = done.stderr[-300:].decode("utf-8", "replace").strip().splitlines()
        tail = log_line(lines[-1]) if lines else ""
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited {code}"
        return ToolRun(COMMAND_TOOL, ToolStatus.FAILED, exit_code=code,
                       message=f"{how} after {seconds}" + (f": {tail}" if tail else ""))
    return ToolRun(COMMAND_TOOL, ToolStatus.OK, message=f"exited 0 after {seconds}", exit_code=0)


def _change_findings(changes: snapshot.Changes, plan: Plan) -> list[Finding]:
    out: list[Finding] = []
    for what, names in (("created", changes.created), ("changed", changes.modified), ("removed", changes.removed)):
        for name in names[:MAX_LISTED]:
            out.append(Finding(rules.WRITE_OUTSIDE_OUTPUT, f"The training run {what} {name} outside its output "
                               f"folder {rel(plan.output, plan) or '.'}.", Severity.HIGH, Location(name)))
        if len(names) > MAX_LISTED:
            out.append(Finding(rules.WRITE_OUTSIDE_OUTPUT, f"The training run {what} {len(names) - MAX_LISTED} "
                               f"more files outside its output folder (the first {MAX_LISTED} are listed).",
                               Severity.HIGH, Location(rel(plan.output, plan))))
    return out


def execute(plan: Plan) -> Attempt:
    """Run the command once and judge what it left."""
    out_rel = rel(plan.output, plan)
    before = snapshot.take(plan.workdir, (out_rel, *plan.ours))
    started = dt.datetime.now(dt.UTC)
    seen: trace.Observation | None = None
    try:
        if plan.tracer is None:
            done = process.run(plan.command, cwd=plan.workdir, env=plan.env, timeout=plan.timeout,
                               max_stdout=MAX_LOG_BYTES)
        else:
            done, seen = _traced(plan, plan.tracer, before)
    except OSError as e:
        now = dt.datetime.now(dt.UTC)
        tool = ToolRun(COMMAND_TOOL, ToolStatus.MISSING, message=f"cannot start {plan.command[0]}: {e.strerror or e}")
        return Attempt(tool, {}, (), b"", started, now)
    finished = dt.datetime.now(dt.UTC)
    after = snapshot.take(plan.workdir, (out_rel, *plan.ours))
    findings = _change_findings(snapshot.diff(before, after), plan)
    gaps = [CoverageGap(GapKind.LIMIT_REACHED, f"the work tree has more than {snapshot.MAX_ENTRIES} entries or "
                        f"deeper than {snapshot.MAX_DEPTH} folders: writes beyond the limit are not seen")
            ] if before.truncated or after.truncated else []
    judged = None
    if seen is not None:
        judged = observe.judge(seen, workdir=plan.workdir, excluded=(out_rel, *plan.ours),
                               inputs=frozenset(plan.inputs), pins=plan.pins, forbid_network=plan.forbid_network,
                               anchor=_anchor(plan))
        findings += judged.findings
        gaps += judged.gaps
    outputs: dict[str, str] = {}
    if plan.output.is_dir():
        tree = scan_tree(plan.output, ignore=())
        for name, what in tree.others:
            findings.append(Finding(rules.OUTPUT_NOT_REGULAR, f"{out_rel}/{name} is a {what}; not recorded as an "
                                    "output.", Severity.HIGH, Location(f"{out_rel}/{name}")))
        outputs = {rel(p, plan): d for p, d in hash_files(tree.files).items()}
    tool = _status(done)
    if tool.status is ToolStatus.OK and not outputs:
        findings.append(Finding(rules.NO_OUTPUTS, f"The command exited 0 but wrote no file under {out_rel}.",
                                Severity.HIGH, Location(out_rel)))
    log = done.stdout + (b"\n--- stderr (tail) ---\n" + done.stderr if done.stderr else b"")
    return Attempt(tool, outputs, tuple(findings), log, started, finished, tuple(gaps), judged)


def _startable(plan: Plan) -> None:
    """strace would start and then fail on a missing program: say so the way a failed start does (OSError)."""
    program = plan.command[0]
    if "/" in program:
        full = plan.workdir / program
        found = full.is_file() and os.access(full, os.X_OK)
    else:
        found = shutil.which(program, path=plan.env.get("PATH", os.defpath)) is not None
    if not found:
        raise FileNotFoundError(2, "No such file or directory (or not executable)", program)


def _traced(plan: Plan, binary: str, before: snapshot.Snapshot) -> tuple[process.Completed, trace.Observation]:
    """The command under strace; the run ends when the command itself exits (its descendants are killed with
    the group, as without a tracer), and the exit code is the command's own from the trace. The folders of
    the tree as `before` saw them are watched for opens (training/opened.py); a tree cut short by the
    snapshot's limits is traced whole with strace instead, so no folder goes unwatched."""
    _startable(plan)
    watched = None if before.truncated else opened.folders(plan.workdir, snapshot.folders(before))
    with trace.session(binary, plan.workdir, watched) as watch:
        try:
            done = process.run((*watch.prefix, *plan.command), cwd=plan.workdir, env=plan.env,
                               timeout=plan.timeout, max_stdout=MAX_LOG_BYTES, ended=watch.leader_done)
        finally:
            seen = watch.finish()
    if seen.exit_code is not None and not (done.timed_out or done.overflowed):
        done = dataclasses.replace(done, returncode=seen.exit_code)
    return done, seen


def _anchor(plan: Plan) -> str:
    """Where a finding that belongs to no file points: the command's first argument naming a file of the tree
    (its script), else the output folder."""
    for arg in plan.command[1:]:
        try:
            path = plan.workdir / arg
            name = snapshot.relative_inside(path, plan.workdir) if path.is_file() else None
        except (OSError, ValueError):
            continue
        if name:
            return name
    return rel(plan.output, plan)


def changed_inputs(before: dict[str, str], plan: Plan) -> list[Finding]:
    out = []
    for p in plan.inputs:
        name = rel(p, plan)
        try:
            now = hash_files([p])[p]
        except InputError as e:
            now = f"unreadable ({e.problem})"
        if now != before.get(name):
            out.append(Finding(rules.INPUT_CHANGED, f"Input {name} changed during training (sha256 "
                               f"{before.get(name, '?')[:16]}... before, {now[:16]}... after).", Severity.HIGH,
                               Location(name)))
    return out


def rerun_differs(first: Attempt, plan: Plan) -> tuple[Attempt, list[Finding]]:
    """`--check-reproducible`: empty the output folder, run again, compare the output digests."""
    for child in plan.output.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    second = execute(plan)
    if second.tool.status is not ToolStatus.OK:
        return second, []
    names = sorted(set(first.outputs) | set(second.outputs))
    differ = [n for n in names if first.outputs.get(n) != second.outputs.get(n)]
    findings = [Finding(rules.NOT_REPRODUCIBLE, f"{n} differs between two runs of the training command "
                        f"({(first.outputs.get(n) or 'absent')[:16]} vs {(second.outputs.get(n) or 'absent')[:16]}).",
                        Severity.MEDIUM, Location(n)) for n in differ[:MAX_LISTED]]
    return second, findings
