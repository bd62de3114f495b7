"""The local pipeline runner behind `mlsec run`: the same stages as the workflows, on a laptop or a runner.

What runs comes from the catalog (`catalog.pipeline(name)`): the pipeline's implemented scan stages in
parallel (each its own `python -I -m mlsec_actions <stage>` process, started in a folder we own, never in
the scanned project), then its gate, then the stage that writes the SBOM and, after a passing run only, the
one that signs. It fails closed:

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
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from mlsec_actions import catalog, outputs
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
        clear_previous(p.out)
        p.sarif_dir.mkdir(parents=True)
        return _run(p, Path(workdir), progress, {**stage_env(p.run_id), outputs.LOCK_TOKEN_ENV: token})


def headline(p: PipelinePlan) -> str:
    """The run's first progress line: its id and what will run."""
    return log_line(f"mlsec run {p.run_id}: {p.pipeline} on {p.root}: {', '.join(p.scans) or 'no scan stages'}"
                    + (f" -> {p.gate}" if p.gate else "") + (f" -> {p.sbom}" if p.sbom else "")
                    + (f" -> {p.sign}" if p.sign_key else ""))


def _scan_policy(p: PipelinePlan, stage: str) -> tuple[str, ...]:
    """model-scan reads the gate's policy too (`model-scan.allow-globals`, docs/model-scan.md)."""
    return ("--policy", p.policy) if stage == "model-scan" and p.policy is not None else ()


def _run(p: PipelinePlan, cwd: Path, progress: Callable[[str], None], env: dict[str, str]) -> int:
    progress(headline(p))
    for stage in p.unavailable:
        progress(f"[{stage}] not available in this version (not run, not counted as passed)")
    steps: list[StepResult] = []

    def one(stage: str, *args: str) -> StepResult:
        r = _step(stage, _mlsec(p, stage, *args), cwd, env, p.stage_timeout)
        steps.append(r)
        progress(describe(r))
        return r

    workers = max(1, min(len(p.scans), os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_step, s, _mlsec(p, s, str(p.root), "--sarif", str(p.sarif_dir / f"{s}.sarif"),
                                                *_scan_policy(p, s)), cwd, env, p.stage_timeout) for s in p.scans]
        for future in as_completed(futures):
            r = _settle(p, future.result())
            steps.append(r)
            progress(describe(r))
    verdict = p.out / "verdict.json"
    if p.gate is not None:
        args = ["--sarif-dir", str(p.sarif_dir), "--verdict", str(verdict), "--summary", str(p.out / "summary.md"),
                "--sarif", str(p.out / "gate.sarif"), "--run-id", p.run_id]
        for stage in p.scans:
            args += ["--expect-stage", stage]
        if p.policy is not None:
            args += ["--policy", p.policy]
        one(p.gate, *args)
    # sbom and sign share one digest cache, so each model file is read once in the run.
    cache = ["--digest-cache", str(p.out / "digests.json")]
    if p.sbom is not None:
        args = [str(p.root), "--out", str(p.out / "sbom.cdx.json"), *cache]
        for model in p.models:
            args += ["--model", str(model)]
        if p.model_card is not None:
            args += ["--model-card", str(p.model_card)]
        if verdict.is_file():
            args += ["--verdict", str(verdict)]
        one(p.sbom, *args)
    if p.sign_key is not None and p.sign is not None:
        if worst(steps) != ExitCode.OK:
            progress(f"[{p.sign}] skipped: artifacts are only signed after a passing gate and clean stages")
        else:
            artifacts = [str(m) for m in p.models] + [str(f) for f in (p.out / "sbom.cdx.json",) if f.is_file()]
            one(p.sign, "--backend", "key", "--key", str(p.sign_key), "--verdict", str(verdict), "--attest",
                "--sarif-dir", str(p.sarif_dir), "--attestation-out", str(p.out / "gate.intoto.sigstore.json"),
                "--base", str(_common_base(p)), *cache, *artifacts)
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
