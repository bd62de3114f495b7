"""The local pipeline runner behind `mlsec run`: the same stages as the workflows, on a laptop or a runner.

What runs comes from the catalog (`catalog.pipeline(name)`), as a graph (`dag.py`): each implemented stage
of the pipeline is its own `python -I -m mlsec_actions <stage>` process, started in a folder we own (never in
the scanned project) as soon as the stages it needs (the catalog's `needs`; the gate needs every scan) have
finished, up to one per core, the slowest of the last run first; the stage that signs runs last and only after
a passing run. It fails closed:

- every run has a fresh id (uuid4) that each stage stamps into its SARIF (`MLSEC_RUN_ID`) and the gate
  checks (`--run-id`, `--expect-stage` for every scan stage), and the run's results folder is locked and
  emptied of the previous run's results first, so no stale SARIF is ever read;
- a stage that crashed, was killed, timed out, or left no (or someone else's) SARIF gets a SARIF written on
  its behalf with `executionSuccessful: false` naming the cause, so the gate fails on it;
- the run's exit code is never better than the worst stage's, and nothing is signed unless all passed;
- a stage left out (`--only`, `--skip`) or not started (a stage before it failed, without `--keep-going`) is
  never counted as passed: the gate's policy (`required-stages`) and `--expect-stage` still see it missing.

Progress goes out as `progress.Event`s (progress.py shows them); the run ends with `report.html` (report/).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlsec_actions import catalog, dag, outputs, run_outputs
from mlsec_actions.catalog import Kind, StageInfo
from mlsec_actions.errors import ExitCode, MlsecError
from mlsec_actions.progress import Emit, Event
from mlsec_actions.sanitize import log_line
from mlsec_actions.sarif import RUN_ID_ENV

# What one run writes into OUT; removed at the start of the next run (under the lock) so it cannot be read
# as this run's. Bundles written beside signed artifacts live elsewhere and are not touched.
SARIF_DIR = "sarif"
RESULT_FILES = ("verdict.json", "summary.md", "gate.sarif", "sbom.cdx.json", "gate.intoto.sigstore.json",
                "gate.predicate.json", "run.json", "report.html")
GENERATED_KEY = "signing-key.pem"
DEFAULT_STAGE_TIMEOUT = 3600.0
# A stage process gets this long after its group was killed before its pipes are abandoned.
_REAP_SECONDS = 5.0


@dataclass(frozen=True)
class StepResult:
    """One stage's process in the pipeline."""

    stage: str
    """Stage id."""
    exit_code: int
    """The stage's exit code (see the README's table); a killed process counts as 1."""
    seconds: float
    """Wall time."""
    output: str
    """What the stage printed (its summary line and errors)."""
    cause: str = ""
    """Why the runner counts it as failed (crashed, killed, timed out, no SARIF of this run); empty: it ran."""
    started: float = 0.0
    """Seconds after the run started that it started (the report's timeline)."""
    counts: Mapping[str, int] | None = None
    """Its SARIF's true result counts (`total`, per severity, `tool-errors`); None: not a scan or unreadable."""

    @property
    def findings(self) -> int | None:
        """Results in its SARIF (true count); None: not a scan or unreadable."""
        return None if self.counts is None else self.counts["total"]


@dataclass(frozen=True)
class PipelinePlan:
    """What `mlsec run` will do."""

    root: Path
    """The project scanned."""
    out: Path
    """Where SARIF, verdict, SBOM and signatures go (locked for the run, emptied of the last run's results)."""
    pipeline: str
    """Catalog pipeline name (mlsecops, devsecops)."""
    scans: tuple[str, ...]
    """Scan stages to run in parallel."""
    unavailable: tuple[str, ...]
    """Stages of the pipeline this version does not implement."""
    gate: str | None
    """The gate stage, when the pipeline has one built."""
    sbom: str | None
    """The stage that writes the SBOM, when built."""
    sign: str | None
    """The stage that signs (used only with `sign_key`), when built."""
    not_local: tuple[str, ...]
    """Built stages of the pipeline `mlsec run` does not run (e.g. verify: the consumer's step)."""
    sign_key: Path | None
    """Sign with this key after a passing run (key backend); None: do not sign."""
    policy: str | None
    """Gate policy: a file (absolute) or a builtin name; None: the gate's default."""
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    """This run's id, stamped into every SARIF and required by the gate."""
    models: tuple[Path, ...] = ()
    """Model files or folders: recorded in the SBOM with their hashes, and signed."""
    model_card: Path | None = None
    """Model-card YAML for the SBOM."""
    config: Path | None = None
    """`--config` file handed to every stage (each reads its own section)."""
    stage_timeout: float = DEFAULT_STAGE_TIMEOUT
    """Seconds a stage process may take before its whole process group is killed."""
    left_out: tuple[str, ...] = ()
    """Scan stages of the pipeline left out by `--only`/`--skip` (listed, never counted as passed)."""
    keep_going: bool = False
    """Start every stage even after one failed (exit 1 or 2); without it, stages not started yet are not."""
    datasets: tuple[Path, ...] = ()
    """Dataset files or folders recorded in the SBOM."""
    stage_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Extra options per stage (from the config's workflow-input keys, e.g. code-scan `--vuln-db`)."""
    config_record: dict[str, str] = field(default_factory=dict)
    """The config's source, path and SHA-256, written into run.json and the verdict."""
    generate_key: bool = False
    """Create `sign_key` (an ECDSA P-256 key) when it does not exist yet, and say so."""
    notes: tuple[str, ...] = ()
    """Lines to print at the start (config keys not used locally, ...)."""
    report: bool = True
    """Write OUT/report.html at the end."""

    @property
    def sarif_dir(self) -> Path:
        return self.out / SARIF_DIR


def _first(rows: tuple[StageInfo, ...], test: Callable[[StageInfo], bool]) -> str | None:
    return next((s.id for s in rows if s.implemented and test(s)), None)


def plan(root: Path, out: Path, pipeline: str, *, sign_key: Path | None = None, policy: str | None = None,
         models: tuple[Path, ...] = (), model_card: Path | None = None, config: Path | None = None,
         stage_timeout: float = DEFAULT_STAGE_TIMEOUT, run_id: str | None = None,
         only: tuple[str, ...] = (), skip: tuple[str, ...] = (), **extra: Any) -> PipelinePlan:
    """The run for one catalog pipeline: which stages run, in which role, which are not available.
    `only`/`skip` choose among its scan stages (ValueError naming a stage that is not one); `extra`: the
    plan's other fields (keep_going, datasets, stage_args, ...)."""
    rows = catalog.pipeline(pipeline)
    every_scan = tuple(s.id for s in rows if s.implemented and s.kind is Kind.SCAN)
    for name in (*only, *skip):
        if name not in every_scan:
            raise ValueError(f"{name}: not a scan stage of the {pipeline} pipeline "
                             f"(choose from {', '.join(every_scan)})")
    scans = tuple(s for s in every_scan if (not only or s in only) and s not in skip)
    gate = _first(rows, lambda s: s.kind is Kind.GATE)
    sbom = _first(rows, lambda s: "sbom" in s.produces)
    sign = _first(rows, lambda s: "attestation" in s.produces)
    used = {*every_scan, gate, sbom, sign}
    made = PipelinePlan(
        root=root, out=out, pipeline=pipeline, scans=scans,
        unavailable=tuple(s.id for s in rows if not s.implemented), gate=gate, sbom=sbom, sign=sign,
        not_local=tuple(s.id for s in rows if s.implemented and s.id not in used),
        sign_key=sign_key if sign else None, policy=policy, models=tuple(models), model_card=model_card,
        config=config, stage_timeout=stage_timeout, left_out=tuple(s for s in every_scan if s not in scans),
        run_id=run_id or str(uuid.uuid4()))
    return replace(made, **extra) if extra else made


def _mlsec(p: PipelinePlan, stage: str, *args: str) -> list[str]:
    # -I: isolated mode, so nothing from the current folder, PYTHONPATH or the user's site is imported.
    config = ["--config", str(p.config)] if p.config is not None else []
    return [sys.executable, "-I", "-m", "mlsec_actions", stage, *args, *config]


def stage_env(run_id: str) -> dict[str, str]:
    """The stages' environment: ours without `MLSEC_*` options meant for `mlsec run` itself (they would
    become another stage's options), keeping tool overrides (`MLSEC_<TOOL>_BIN`), plus this run's id, and without
    `GITHUB_OUTPUT`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSEC_") or k.endswith("_BIN")}
    env.pop("GITHUB_OUTPUT", None)  # the stages' outputs would overwrite each other; the run writes its own
    env[RUN_ID_ENV] = run_id
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _step(stage: str, command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> StepResult:
    started = time.monotonic()
    try:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        return StepResult(stage, ExitCode.ERROR, 0.0, "", cause=f"could not start: {e.strerror or e}")
    cause = ""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        cause = f"did not finish within {timeout:g}s; stopped"
        try:
            out, err = proc.communicate(timeout=_REAP_SECONDS)
        except subprocess.TimeoutExpired:  # a grandchild left the group and holds the pipes
            out, err = b"", b""
    finally:
        _kill_group(proc)  # whatever it left running (a scanner's children) goes with it
    seconds = time.monotonic() - started
    code = proc.wait()
    if code < 0 and not cause:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        cause = f"killed by signal {name}"
    text = (err + out).decode("utf-8", errors="replace").strip()
    exit_code = code if code in (0, 1, 2, 3) and not cause else ExitCode.ERROR
    return StepResult(stage, exit_code, seconds, text, cause)


def sarif_problem(path: Path, stage: str, run_id: str) -> str | None:
    """Why `path` is not a SARIF of `stage` from run `run_id`, or None."""
    from mlsec_actions import inputs

    if not path.is_file():
        return "wrote no SARIF"
    try:
        doc = inputs.load_json(path, "SARIF", inputs.MAX_SARIF_BYTES)
    except MlsecError:
        return "wrote a SARIF that is not valid JSON"
    runs = doc.get("runs") if isinstance(doc, dict) else None
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
        return "wrote a SARIF without runs"
    for r in runs:
        props = r.get("properties") if isinstance(r.get("properties"), dict) else {}
        if props.get("mlsec-run-id") != run_id:
            return "left a SARIF that is not from this run"
        if props.get("mlsec-stage") != stage:
            return f"wrote a SARIF for another stage ({str(props.get('mlsec-stage'))[:40]!r})"
    return None


def _settle(p: PipelinePlan, r: StepResult) -> StepResult:
    """Make sure the stage's SARIF says what happened; write it on the stage's behalf when it cannot."""
    from mlsec_actions.stages.base import write_crash_sarif

    path = p.sarif_dir / f"{r.stage}.sarif"
    problem = sarif_problem(path, r.stage, p.run_id)
    if r.exit_code in (ExitCode.OK, ExitCode.ERROR) and not r.cause and problem is None:
        return r
    cause = r.cause or (f"exited {r.exit_code}" + (f" and {problem}" if problem else ""))
    if problem is not None and r.cause:
        cause += f"; {problem}"
    message = log_line(f"{r.stage}: {cause} (recorded by mlsec run)")
    if not write_crash_sarif(r.stage, path, message, run_id=p.run_id):
        message += "; and its SARIF could not be written"
    return replace(r, exit_code=max(int(r.exit_code), ExitCode.ERROR), cause=cause)


def clear_previous(out: Path) -> None:
    """Remove the results of an earlier run from OUT (only the names a run writes)."""
    sarif_dir = out / SARIF_DIR
    if sarif_dir.is_symlink() or (sarif_dir.exists() and not sarif_dir.is_dir()):
        sarif_dir.unlink()
    elif sarif_dir.is_dir():
        shutil.rmtree(sarif_dir)
    for name in RESULT_FILES:
        target = out / name
        if target.is_symlink() or target.is_file():
            target.unlink()


def run(p: PipelinePlan, emit: Emit) -> int:
    """Run the plan under OUT's lock; returns the exit code, never better than the worst stage's."""
    token = uuid.uuid4().hex
    with outputs.lock(p.out, token), tempfile.TemporaryDirectory(prefix="mlsec-run-") as workdir:
        costs = previous_seconds(p.out)
        clear_previous(p.out)
        p.sarif_dir.mkdir(parents=True)
        if p.generate_key and p.sign_key is not None:
            run_outputs.generate_key(p.sign_key, emit)
        return _run(p, Path(workdir), emit, {**stage_env(p.run_id), outputs.LOCK_TOKEN_ENV: token}, costs)


def headline(p: PipelinePlan) -> str:
    """The run's first progress line: its id and what will run."""
    return log_line(f"mlsec run {p.run_id}: {p.pipeline} on {p.root}: {', '.join(p.scans) or 'no scan stages'}"
                    + (f" -> {p.gate}" if p.gate else "") + (f" -> {p.sbom}" if p.sbom else "")
                    + (f" -> {p.sign}" if p.sign_key else ""))


def _scan_policy(p: PipelinePlan, stage: str) -> tuple[str, ...]:
    """The stages that read the gate's policy too: model-scan (`model-scan.allow-globals`), evaluate (its
    thresholds) and the network stages (the hosts they may contact: `infra-scan.hosts`, `*.allow-hosts`)."""
    return ("--policy", p.policy) if stage in _POLICY_READERS and p.policy is not None else ()


_POLICY_READERS = frozenset({"model-scan", "evaluate", "infra-scan", "dast", "runtime-probe"})


def previous_seconds(out: Path) -> dict[str, float]:
    """Each stage's wall time in the last run's record (`run.json`), to start the slowest first; {} if none."""
    from mlsec_actions import inputs

    try:
        doc = inputs.load_json(out / "run.json", "run record", 1024 * 1024)
    except MlsecError:
        return {}
    rows = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        return {}
    return {str(r["stage"]): float(r["seconds"]) for r in rows
            if isinstance(r, dict) and isinstance(r.get("stage"), str) and isinstance(r.get("seconds"), int | float)}


def jobs(p: PipelinePlan, costs: dict[str, float] | None = None) -> list[dag.Job]:
    """The plan as a graph: the catalog's `needs` among the stages run here, the gate after every scan, and the
    signer after everything else (it signs only what a whole, passing run produced)."""
    names = [*p.scans, *(s for s in (p.gate, p.sbom) if s), *([p.sign] if p.sign and p.sign_key else [])]
    out = []
    for stage in names:
        row = catalog.by_id(stage)
        needs = set(row.needs if row else ())
        if stage == p.gate:
            needs |= set(p.scans)
        elif stage in p.scans:  # a scan after a workflow's first gate (dast) comes before this run's one gate
            needs.discard("gate")
        if stage == p.sign:
            needs |= set(names)
        out.append(dag.Job(stage, frozenset(needs & set(names) - {stage}), (costs or {}).get(stage, 0.0)))
    return out


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _run(p: PipelinePlan, cwd: Path, emit: Emit, env: dict[str, str], costs: dict[str, float] | None = None) -> int:
    t0 = time.monotonic()
    emit(Event("run-start", headline(p)))
    for line in p.notes:
        emit(Event("note", log_line(line)))
    for stage in p.unavailable:
        emit(Event("stage-skipped", f"[{stage}] not available in this version (not run, not counted as passed)", stage))
    for stage in p.left_out:
        emit(Event("stage-skipped", f"[{stage}] left out by --only/--skip (not run, not counted as passed)", stage))
    steps: list[StepResult] = []
    not_started: list[str] = []
    verdict = p.out / "verdict.json"
    cache = ["--digest-cache", str(p.out / "digests.json")]  # sbom and sign share it: each model file read once

    def args(stage: str) -> list[str] | None:
        """The stage's arguments, decided when it starts (after what it needs); None: skip it."""
        if stage == p.gate:
            out = ["--sarif-dir", str(p.sarif_dir), "--verdict", str(verdict), "--summary", str(p.out / "summary.md"),
                   "--sarif", str(p.out / "gate.sarif"), "--run-id", p.run_id, "--pipeline", p.pipeline]
            out += [a for s in p.scans for a in ("--expect-stage", s)]
            return out + (["--policy", p.policy] if p.policy is not None else [])
        if stage == p.sbom:
            out = [str(p.root), "--out", str(p.out / "sbom.cdx.json"), *cache]
            out += [a for m in p.models for a in ("--model", str(m))]
            out += [a for d in p.datasets for a in ("--dataset", str(d))]
            out += ["--model-card", str(p.model_card)] if p.model_card is not None else []
            licences = p.sarif_dir / "code-scan.sarif"  # its licence inventory: dependencies' licences
            out += ["--licenses-from", str(licences)] if "code-scan" in p.scans and licences.is_file() else []
            return out + (["--verdict", str(verdict)] if verdict.is_file() else [])
        if stage == p.sign:
            if worst(steps) != ExitCode.OK or not_started:  # every other stage has finished: sign needs them all
                emit(Event("stage-skipped", f"[{p.sign}] skipped: artifacts are only signed after a passing gate "
                                            "and clean stages", stage))
                return None
            artifacts = [str(m) for m in p.models] + [str(f) for f in (p.out / "sbom.cdx.json",) if f.is_file()]
            return ["--backend", "key", "--key", str(p.sign_key), "--verdict", str(verdict), "--attest",
                    "--sarif-dir", str(p.sarif_dir), "--attestation-out", str(p.out / "gate.intoto.sigstore.json"),
                    "--base", str(_common_base(p)), *cache, *artifacts]
        failed = [r.stage for r in steps if r.stage in p.scans and r.exit_code in (ExitCode.ERROR, ExitCode.USAGE)]
        if failed and not p.keep_going:
            not_started.append(stage)
            emit(Event("stage-skipped", f"[{stage}] not started: {failed[0]} failed (--keep-going runs every stage; "
                                        "the gate counts this one as missing)", stage))
            return None
        return [str(p.root), "--sarif", str(p.sarif_dir / f"{stage}.sarif"), *_scan_policy(p, stage),
                *p.stage_args.get(stage, ())]

    def execute(job: dag.Job) -> StepResult | None:
        chosen = args(job.name)
        if chosen is None:
            return None
        started = time.monotonic() - t0
        emit(Event("stage-start", f"[{job.name}] started", job.name))
        r = _step(job.name, _mlsec(p, job.name, *chosen), cwd, env, p.stage_timeout)
        r = _settle(p, r) if job.name in p.scans else r
        if job.name == p.gate and p.config_record:
            run_outputs.note_config(verdict, p.config_record)
        counts = run_outputs.result_counts(p.sarif_dir / f"{job.name}.sarif") if job.name in p.scans else None
        return replace(r, started=started, counts=counts)

    def finished(job: dag.Job, r: StepResult | None) -> None:
        if r is not None:
            steps.append(r)
            emit(Event("stage-end", describe(r), r.stage, status=status_of(r), seconds=r.seconds, findings=r.findings))

    dag.run(jobs(p, costs), _cores(), execute, finished)
    for stage in p.not_local:
        emit(Event("stage-skipped", f"[{stage}] not run by mlsec run (run `mlsec {stage}` yourself)", stage))
    signed: list[dict[str, str]] = []
    if any(r.stage == p.sign and r.exit_code == ExitCode.OK for r in steps):
        check, signed = _verify_signed(p, cwd, env, time.monotonic() - t0)
        steps.append(check)
        emit(Event("stage-end", describe(check), check.stage, status=status_of(check), seconds=check.seconds))
    code = max(worst(steps), ExitCode.ERROR if not_started else ExitCode.OK)
    _record(p, steps, code, not_started, signed)
    if p.report:
        run_outputs.write_report(p.out, emit)
    counted = {r.stage: r.counts for r in steps}
    run_outputs.action_outputs(p.out, p.sarif_dir, {stage: counted.get(stage) for stage in p.scans}, code)
    total = sum(r.findings or 0 for r in steps if r.stage in p.scans)
    emit(Event("run-end", f"results in {p.out} (run {p.run_id}): exit {code}", status=str(code), findings=total))
    return code


def _verify_signed(p: PipelinePlan, cwd: Path, env: dict[str, str],
                   started: float) -> tuple[StepResult, list[dict[str, str]]]:
    """Verify what was just signed, with the public key of the key used, as a consumer would (`mlsec verify`):
    the report lists each artifact with the outcome, and a failure fails the run."""
    from mlsec_actions.signing.verify import bundle_path

    public = run_outputs.public_key(p.sign_key, cwd) if p.sign_key is not None else None
    sbom = p.out / "sbom.cdx.json"
    artifacts = [*p.models, *([sbom] if sbom.is_file() else [])]
    attestation = p.out / "gate.intoto.sigstore.json"
    answer = cwd / "verify.json"
    r = _step("verify", _mlsec(p, "verify", "--public-key", str(public), *map(str, artifacts), "--attestation",
                               str(attestation), "--base", str(_common_base(p)), "--json", str(answer)),
              cwd, env, p.stage_timeout) if public else StepResult("verify", ExitCode.ERROR, 0.0, "", "no public key")
    outcome = run_outputs.verify_outcomes(answer)
    rows = [*((str(a), bundle_path(a)) for a in artifacts), ("gate verdict (attestation)", attestation)]
    signed = [{"artifact": name, "bundle": str(bundle),
               "status": outcome.get(name) or outcome.get(str(bundle)) or "not verified"} for name, bundle in rows]
    return replace(r, started=started), signed


def worst(steps: list[StepResult]) -> int:
    """The run's exit code: the highest of its stages' (0 ok < 1 tool error < 2 bad input < 3 gate failed)."""
    return max((int(r.exit_code) for r in steps), default=ExitCode.OK)


def _record(p: PipelinePlan, steps: list[StepResult], code: int, not_started: list[str],
            signed: list[dict[str, str]]) -> None:
    doc = {"run-id": p.run_id, "pipeline": p.pipeline, "exit-code": code, "unavailable": list(p.unavailable),
           "left-out": list(p.left_out), "not-started": not_started, "config": p.config_record, "signed": signed,
           "stages": [{"stage": r.stage, "exit-code": r.exit_code, "seconds": round(r.seconds, 3),
                       "started": round(r.started, 3), **({"findings": r.findings} if r.findings is not None else {}),
                       **({"cause": r.cause} if r.cause else {})} for r in steps]}
    outputs.write_text(p.out / "run.json", json.dumps(doc, indent=2, ensure_ascii=True) + "\n")


def _common_base(p: PipelinePlan) -> Path:
    """Attestation subject names are relative to a folder holding both the project and the results."""
    return Path(os.path.commonpath([p.root, p.out, *p.models]))


def status_of(r: StepResult) -> str:
    """ok, TOOL ERROR, BAD INPUT, FAILED, or FAILED (cause)."""
    status = {0: "ok", 1: "TOOL ERROR", 2: "BAD INPUT", 3: "FAILED"}.get(r.exit_code, f"exit {r.exit_code}")
    return f"FAILED ({r.cause})" if r.cause else status


def describe(r: StepResult) -> str:
    """The progress line(s) for one finished stage; stage output is hostile and sanitised."""
    lines_in = r.output.splitlines()
    summary = next((ln for ln in lines_in if ln.startswith(f"{r.stage}:")), lines_in[-1] if lines_in else "")
    errors = [ln for ln in lines_in if "error" in ln.lower() and ln != summary][:5]
    lines = [log_line(f"[{r.stage}] {status_of(r)} in {r.seconds:.1f}s: {summary}")]
    lines += [f"    {log_line(e)}" for e in errors]
    return "\n".join(lines)
