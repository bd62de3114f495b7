"""train (ML stage 5): run the caller's training command and record how the model was made.

`mlsec train --output DIR [--input PATH ...] [--param K=V ...] -- COMMAND ...` runs COMMAND (an argument list,
never a shell line) in `--workdir` with a scrubbed environment and a time limit, then writes: the SLSA v1
provenance statement (`--provenance`, signed later by `mlsec sign --provenance`), the run's log, and SARIF
with what the run did that it should not have (writes outside DIR, links in DIR, inputs changed, no output,
a non-reproducible rerun). A command that fails, is killed or times out is a failed tool run: exit 1, and
the gate fails closed. Reference: docs/train.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlsec_actions import gha, outputs
from mlsec_actions.digests import sha256_file
from mlsec_actions.errors import ExitCode, MlsecError, ToolError, UsageError
from mlsec_actions.findings import CoverageGap, GapKind, StageResult, ToolRun, ToolStatus, sort_findings
from mlsec_actions.sarif import RUN_ID_ENV, write_sarif
from mlsec_actions.stages.base import (
    Stage,
    StageCrash,
    crash_message,
    positive_float,
    report,
    write_crash_sarif,
)

STAGE_ID = "train"
TOOL = "mlsec-train"
TRACER = "strace"
_OUT = Path("mlsec-results")


def _param(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or any(c in key for c in "\r\n\0"):
        raise argparse.ArgumentTypeError(f"{text[:80]!r}: expected KEY=VALUE")
    return key.strip(), value


def _env_name(text: str) -> str:
    if not text.replace("_", "a").isalnum() or text[:1].isdigit():
        raise argparse.ArgumentTypeError(f"{text[:80]!r}: not an environment variable name")
    return text


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("train_command", nargs="*", metavar="COMMAND",
                        help="the training command and its arguments, after `--` (env MLSEC_TRAIN_COMMAND: "
                             "one argument per line); run without a shell")
    parser.add_argument("--output", type=Path, default=None,
                        help="the folder the command writes its model and files to (inside --workdir; must be "
                             "empty or absent); its files are the provenance's subjects")
    parser.add_argument("--workdir", type=Path, default=Path(),
                        help="the command's current folder and the subject base (default: current folder)")
    parser.add_argument("--input", action="append", type=Path, default=[], metavar="PATH",
                        help="a file or folder the command reads (dataset, script, base model): recorded by "
                             "SHA-256 before the run and checked after it (repeatable)")
    parser.add_argument("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
                        help="a parameter or seed recorded in the provenance (repeatable)")
    parser.add_argument("--python", default=None,
                        help="the training interpreter whose packages are recorded (default: COMMAND's program "
                             "when it is a python)")
    parser.add_argument("--pass-env", action="append", type=_env_name, default=[], metavar="NAME",
                        help="pass this environment variable to the command although it looks like a credential")
    parser.add_argument("--check-reproducible", action="store_true",
                        help="run the command twice and report outputs that differ")
    parser.add_argument("--network", choices=("allow", "forbid"), default="allow",
                        help="forbid: reaching a host outside loopback is a high finding, and a run whose network "
                             "cannot be observed fails (default: %(default)s: hosts reached are notes)")
    parser.add_argument("--no-trace", action="store_true",
                        help="do not run the command under strace (where ptrace is not allowed): reads and network "
                             "are not observed, which the SARIF says")
    parser.add_argument("--lock", type=Path, default=None,
                        help="the mlsec.lock whose pinned files (names relative to --workdir) the run may read "
                             "undeclared (default: WORKDIR/mlsec.lock when it exists)")
    parser.add_argument("--timeout", type=positive_float, default=3600.0,
                        help="seconds before the command's process group is killed (default: %(default)s)")
    parser.add_argument("--sarif", type=outputs.output_file, default=_OUT / "train.sarif",
                        help="where to write SARIF (default: %(default)s)")
    parser.add_argument("--provenance", type=outputs.output_file, default=_OUT / "train.provenance.json",
                        help="where to write the provenance statement (default: %(default)s)")
    parser.add_argument("--log", type=outputs.output_file, default=_OUT / "train.log",
                        help="where to write the command's output (default: %(default)s)")


def _plan(args: argparse.Namespace) -> object:
    from mlsec_actions.training import environment, runner, snapshot

    command = tuple(args.train_command or ())
    if not command:
        raise UsageError("train: no training command; give it after `--` (or MLSEC_TRAIN_COMMAND, one argument "
                         "per line)")
    if args.no_trace and args.network == "forbid":
        raise UsageError("train: --network forbid needs the trace that observes the network; drop --no-trace")
    workdir = Path(args.workdir)
    if not workdir.is_dir():
        raise UsageError(f"{workdir}: --workdir is not a folder")
    workdir = workdir.resolve()
    if args.output is None:
        raise UsageError("train: --output is required: the folder the command writes its outputs to")
    output = (workdir / args.output) if not Path(args.output).is_absolute() else Path(args.output)
    out_rel = snapshot.relative_inside(output, workdir)
    if out_rel is None or out_rel == "":
        raise UsageError(f"{args.output}: --output must be a folder inside --workdir (not the work tree itself)")
    if output.is_symlink() or (output.exists() and not output.is_dir()):
        raise UsageError(f"{args.output}: --output exists and is not a folder")
    if output.is_dir() and any(output.iterdir()):
        raise UsageError(f"{args.output}: --output is not empty; its files would be recorded as this run's outputs")
    ours = []
    for path in (args.sarif, args.provenance, args.log):
        inside = snapshot.relative_inside(Path(path), workdir)
        if inside is not None and (inside == out_rel or inside.startswith(out_rel + "/")):
            raise UsageError(f"{path}: our results must not be inside --output (the command could forge them)")
        if inside:
            ours.append(inside)
    pins = _pins(args, workdir)
    env = environment.training_env(args.pass_env)
    output.mkdir(parents=True, exist_ok=True)
    return runner.Plan(command, workdir, output.resolve(), runner.expand_inputs(list(args.input)), tuple(ours),
                       env, args.timeout, pins=pins, forbid_network=args.network == "forbid")


def _pins(args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    from mlsec_actions.supply import lock

    path = Path(args.lock) if args.lock is not None else workdir / lock.LOCK_NAME
    if args.lock is None and not path.is_file():
        return {}
    return {a.name: a.sha256 for a in lock.load(path).artifacts}


def _tracer(args: argparse.Namespace) -> tuple[str | None, CoverageGap | None, ToolRun | None]:
    """The strace that observes the run, or why there is none: a coverage gap, and with `--network forbid` a
    failed tool run (a forbidden network that cannot be observed must not pass)."""
    from mlsec_actions.training import trace

    if args.no_trace:
        return None, CoverageGap(GapKind.TOOL_ERROR, "--no-trace: files read and network access were not "
                                 "observed"), None
    binary = trace.locate()
    problem = "strace is not installed (apt-get install strace)" if binary is None else trace.problem(binary)
    if problem is None:
        return binary, None, None
    gap = CoverageGap(GapKind.TOOL_ERROR, f"files read and network access were not observed: {problem}")
    failed = ToolRun(TRACER, ToolStatus.MISSING if binary is None else ToolStatus.FAILED,
                     message=f"--network forbid, but the network cannot be observed: {problem}")
    return None, gap, failed if args.network == "forbid" else None


def _train(args: argparse.Namespace) -> StageResult:
    from mlsec_actions.training import environment, provenance, runner, snapshot

    plan = _plan(args)
    assert isinstance(plan, runner.Plan)
    binary, trace_gap, trace_failed = _tracer(args)
    plan = dataclasses.replace(plan, tracer=binary)
    inputs = runner.input_digests(plan)
    python = environment.interpreter_of(plan.command, args.python)
    # The interpreter is described while the command runs: its start-up is not added to the run's time.
    with ThreadPoolExecutor(max_workers=1) as pool:
        probing = pool.submit(environment.probe, python, plan.workdir, plan.env) if python else None
        first = runner.execute(plan)
        described = probing.result() if probing is not None else "no Python interpreter to describe"
    attempt, findings = first, list(first.findings)
    findings += runner.changed_inputs(inputs, plan)
    reproducible = None
    if args.check_reproducible and first.tool.status is ToolStatus.OK:
        attempt, differ = runner.rerun_differs(first, plan)
        known = {(f.rule.id, f.location.path, f.message) for f in findings}
        findings += [f for f in attempt.findings if f.rule.id != "train/no-outputs"
                     and (f.rule.id, f.location.path, f.message) not in known] + differ
        reproducible = attempt.tool.status is ToolStatus.OK and not differ
    notes = [] if not isinstance(described, str) else [f"packages not recorded: {described}"]
    _refuse_planted_links(args, plan.workdir)
    log_digest = sha256_file(outputs.write_bytes(args.log, attempt.log))
    exit_code = attempt.tool.exit_code if attempt.tool.status is not ToolStatus.TIMEOUT else None
    record = provenance.RunRecord(
        command=tuple(provenance.names(plan.command)), parameters=tuple(args.param),
        output_dir=runner.rel(plan.output, plan), outputs=attempt.outputs, inputs=inputs,
        commit=snapshot.git_commit(plan.workdir), interpreter=None if isinstance(described, str) else described,
        started=first.started, finished=attempt.finished, exit_code=exit_code, timeout=plan.timeout,
        run_id=os.environ.get(RUN_ID_ENV), log_sha256=log_digest,
        dropped_env=tuple(environment.dropped(plan.env)), reproducible=reproducible,
        reads=_reads(first.observed), hosts=first.observed.hosts if first.observed is not None else None)
    statement = provenance.statement(record)
    outputs.write_bytes(args.provenance, provenance.encode(statement))
    gaps = tuple(dict.fromkeys((*first.gaps, *attempt.gaps, *([trace_gap] if trace_gap else []))))
    ours = ToolRun(TOOL, ToolStatus.OK, notes=tuple(notes), gaps=gaps)
    seconds = round((attempt.finished - first.started).total_seconds(), 3)
    extra: dict[str, object] = {"provenance": {"file": str(args.provenance), "outputs": len(attempt.outputs),
                                               "inputs": len(inputs), "exitCode": exit_code, "seconds": seconds}}
    tools = (ours, attempt.tool, *([trace_failed] if trace_failed else []))
    return StageResult(STAGE_ID, sort_findings(findings), tools, extra=extra)


def _reads(judged: object) -> dict[str, dict[str, str]]:
    from mlsec_actions.training import observe

    if not isinstance(judged, observe.Judged):
        return {}
    return {"code": dict(judged.code), "pinned": dict(judged.pinned), "undeclared": dict(judged.undeclared)}


def _refuse_planted_links(args: argparse.Namespace, workdir: Path) -> None:
    """The command may have replaced a folder of our results with a link (to write our statement elsewhere,
    or to read it back from a place it controls): refuse to write through one (exit 1, no result: fail closed)."""
    for path in (args.sarif, args.provenance, args.log):
        full = Path(path).absolute()  # not resolve(): the link itself is what we look for
        if not full.is_relative_to(workdir):
            continue
        for parent in [full, *full.parents]:
            if parent == workdir:
                break
            if parent.is_symlink():
                raise ToolError(f"{parent}: the training command replaced it with a link; refusing to write "
                                "our results through it")


def execute(args: argparse.Namespace) -> int:
    source_root = Path(args.workdir).resolve() if Path(args.workdir).is_dir() else Path.cwd()
    try:
        result = _train(args)
        out = write_sarif(result, args.sarif, root=source_root)
    except MlsecError:
        raise
    except Exception as e:  # a crash: still a failed SARIF, exit 1 with one line
        message = crash_message(STAGE_ID, e)
        write_crash_sarif(STAGE_ID, args.sarif, message, root=source_root)
        raise StageCrash(message) from None
    report(result, out)
    gha.set_output("provenance-file", str(args.provenance))
    gha.set_output("log-file", str(args.log))
    gha.set_output("outputs", str(result.extra["provenance"]["outputs"]))  # type: ignore[index]
    return ExitCode.OK if result.succeeded else ExitCode.ERROR


STAGE = Stage(id=STAGE_ID, summary="run the training command and capture its provenance (SLSA v1)",
              configure=configure, execute=execute)
