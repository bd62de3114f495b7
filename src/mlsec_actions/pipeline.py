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
- the run's exit code is never better than the worst stage's, and nothing is signed unless all passed.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlsec_actions import catalog, dag, outputs
from mlsec_actions.catalog import Kind, StageInfo
from mlsec_actions.errors import ExitCode, MlsecError
from mlsec_actions.sanitize import log_line
from mlsec_actions.sarif import RUN_ID_ENV

# What one run writes into OUT; removed at the start of the next run (under the lock) so it cannot be read
# as this run's. Bundles written beside signed artifacts live elsewhere and are not touched.
SARIF_DIR = "sarif"
RESULT_FILES = ("verdict.json", "summary.md", "gate.sarif", "sbom.cdx.json", "gate.intoto.sigstore.json",
                "gate.predicate.json", "run.json")
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

    @property
    def sarif_dir(self) -> Path:
        return self.out / SARIF_DIR


def _first(rows: tuple[StageInfo, ...], test: Callable[[StageInfo], bool]) -> str | None:
    return next((s.id for s in rows if s.implemented and test(s)), None)


def plan(root: Path, out: Path, pipeline: str, *, sign_key: Path | None = None, policy: str | None = None,
         models: tuple[Path, ...] = (), model_card: Path | None = None, config: Path | None = None,
         stage_timeout: float = DEFAULT_STAGE_TIMEOUT, run_id: str | None = None) -> PipelinePlan:
    """The run for one catalog pipeline: which stages run, in which role, which are not available."""
    rows = catalog.pipeline(pipeline)
    scans = tuple(s.id for s in rows if s.implemented and s.kind is Kind.SCAN)
    gate = _first(rows, lambda s: s.kind is Kind.GATE)
    sbom = _first(rows, lambda s: "sbom" in s.produces)
    sign = _first(rows, lambda s: "attestation" in s.produces)
    used = {*scans, gate, sbom, sign}
    return PipelinePlan(
        root=root, out=out, pipeline=pipeline, scans=scans,
        unavailable=tuple(s.id for s in rows if not s.implemented), gate=gate, sbom=sbom, sign=sign,
        not_local=tuple(s.id for s in rows if s.implemented and s.id not in used),
        sign_key=sign_key if sign else None, policy=policy, models=tuple(models), model_card=model_card,
        config=config, stage_timeout=stage_timeout, **({"run_id": run_id} if run_id else {}))


def _mlsec(p: PipelinePlan, stage: str, *args: str) -> list[str]:
    # -I: isolated mode, so nothing from the current folder, PYTHONPATH or the user's site is imported.
    config = ["--config", str(p.config)] if p.config is not None else []
    return [sys.executable, "-I", "-m", "mlsec_actions", stage, *args, *config]


def stage_env(run_id: str) -> dict[str, str]:
    """The stages' environment: ours without `MLSEC_*` options meant for `mlsec run` itself (they would
    become another stage's options), keeping tool overrides (`MLSEC_<TOOL>_BIN`), plus this run's id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSEC_") or k.endswith("_BIN")}
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
    return StepResult(r.stage, max(int(r.exit_code), ExitCode.ERROR), r.seconds, r.output, cause)


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


def run(p: PipelinePlan, progress: Callable[[str], None]) -> int:
    """Run the plan under OUT's lock; returns the exit code, never better than the worst stage's."""
    token = uuid.uuid4().hex
    with outputs.lock(p.out, token), tempfile.TemporaryDirectory(prefix="mlsec-run-") as workdir:
        costs = previous_seconds(p.out)
        clear_previous(p.out)
        p.sarif_dir.mkdir(parents=True)
        return _run(p, Path(workdir), progress, {**stage_env(p.run_id), outputs.LOCK_TOKEN_ENV: token}, costs)


def headline(p: PipelinePlan) -> str:
    """The run's first progress line: its id and what will run."""
    return log_line(f"mlsec run {p.run_id}: {p.pipeline} on {p.root}: {', '.join(p.scans) or 'no scan stages'}"
                    + (f" -> {p.gate}" if p.gate else "") + (f" -> {p.sbom}" if p.sbom else "")
                    + (f" -> {p.sign}" if p.sign_key else ""))


def _scan_policy(p: PipelinePlan, stage: str) -> tuple[str, ...]:
    """model-scan reads the gate's policy too (`model-scan.allow-globals`, docs/model-scan.md)."""
    return ("--policy", p.policy) if stage == "model-scan" and p.policy is not None else ()


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
        if stage == p.sign:
            needs |= set(names)
        out.append(dag.Job(stage, frozenset(needs & set(names) - {stage}), (costs or {}).get(stage, 0.0)))
    return out


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _run(p: PipelinePlan, cwd: Path, progress: Callable[[str], None], env: dict[str, str],
         costs: dict[str, float] | None = None) -> int:
    progress(headline(p))
    for stage in p.unavailable:
        progress(f"[{stage}] not available in this version (not run, not counted as passed)")
    steps: list[StepResult] = []
    verdict = p.out / "verdict.json"
    cache = ["--digest-cache", str(p.out / "digests.json")]  # sbom and sign share it: each model file read once

    def args(stage: str) -> list[str] | None:
        """The stage's arguments, decided when it starts (after what it needs); None: skip it."""
        if stage == p.gate:
            out = ["--sarif-dir", str(p.sarif_dir), "--verdict", str(verdict), "--summary", str(p.out / "summary.md"),
                   "--sarif", str(p.out / "gate.sarif"), "--run-id", p.run_id]
            out += [a for s in p.scans for a in ("--expect-stage", s)]
            return out + (["--policy", p.policy] if p.policy is not None else [])
        if stage == p.sbom:
            out = [str(p.root), "--out", str(p.out / "sbom.cdx.json"), *cache]
            out += [a for m in p.models for a in ("--model", str(m))]
            out += ["--model-card", str(p.model_card)] if p.model_card is not None else []
            return out + (["--verdict", str(verdict)] if verdict.is_file() else [])
        if stage == p.sign:
            if worst(steps) != ExitCode.OK:  # every other stage has finished: sign needs them all
                progress(f"[{p.sign}] skipped: artifacts are only signed after a passing gate and clean stages")
                return None
            artifacts = [str(m) for m in p.models] + [str(f) for f in (p.out / "sbom.cdx.json",) if f.is_file()]
            return ["--backend", "key", "--key", str(p.sign_key), "--verdict", str(verdict), "--attest",
                    "--sarif-dir", str(p.sarif_dir), "--attestation-out", str(p.out / "gate.intoto.sigstore.json"),
                    "--base", str(_common_base(p)), *cache, *artifacts]
        return [str(p.root), "--sarif", str(p.sarif_dir / f"{stage}.sarif"), *_scan_policy(p, stage)]

    def execute(job: dag.Job) -> StepResult | None:
        chosen = args(job.name)
        if chosen is None:
            return None
        r = _step(job.name, _mlsec(p, job.name, *chosen), cwd, env, p.stage_timeout)
        return _settle(p, r) if job.name in p.scans else r

    def finished(job: dag.Job, r: StepResult | None) -> None:
        if r is not None:
            steps.append(r)
            progress(describe(r))

    dag.run(jobs(p, costs), _cores(), execute, finished)
    for stage in p.not_local:
        progress(f"[{stage}] not run by mlsec run (run `mlsec {stage}` yourself)")
    code = worst(steps)
    _record(p, steps, code)
    progress(f"results in {p.out} (run {p.run_id}): exit {code}")
    return code


def worst(steps: list[StepResult]) -> int:
    """The run's exit code: the highest of its stages' (0 ok < 1 tool error < 2 bad input < 3 gate failed)."""
    return max((int(r.exit_code) for r in steps), default=ExitCode.OK)


def _record(p: PipelinePlan, steps: list[StepResult], code: int) -> None:
    doc = {"run-id": p.run_id, "pipeline": p.pipeline, "exit-code": code, "unavailable": list(p.unavailable),
           "stages": [{"stage": r.stage, "exit-code": r.exit_code, "seconds": round(r.seconds, 3),
                       **({"cause": r.cause} if r.cause else {})} for r in steps]}
    outputs.write_text(p.out / "run.json", json.dumps(doc, indent=2, ensure_ascii=True) + "\n")


def _common_base(p: PipelinePlan) -> Path:
    """Attestation subject names are relative to a folder holding both the project and the results."""
    return Path(os.path.commonpath([p.root, p.out, *p.models]))


def describe(r: StepResult) -> str:
    """The progress line(s) for one finished stage; stage output is hostile and sanitised."""
    lines_in = r.output.splitlines()
    summary = next((ln for ln in lines_in if ln.startswith(f"{r.stage}:")), lines_in[-1] if lines_in else "")
    status = {0: "ok", 1: "TOOL ERROR", 2: "BAD INPUT", 3: "FAILED"}.get(r.exit_code, f"exit {r.exit_code}")
    if r.cause:
        status = f"FAILED ({r.cause})"
    errors = [ln for ln in lines_in if "error" in ln.lower() and ln != summary][:5]
    lines = [log_line(f"[{r.stage}] {status} in {r.seconds:.1f}s: {summary}")] + [f"    {log_line(e)}" for e in errors]
    return "\n".join(lines)
