"""The local pipeline runner behind `mlsec run`: the same stages as the workflows, on a laptop or a runner.

Scan stages run in parallel (each as its own `mlsec <stage>` process, like the workflow's jobs), then the
gate decides, then the SBOM is written and, after a passing gate only, artifacts are signed. Only stages
this version implements run; the others are listed as not available, never counted as passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.errors import ExitCode

# Scan stages per pipeline, in DESIGN.md's stage-map order; the gate, sbom and sign follow.
PIPELINES: dict[str, tuple[str, ...]] = {
    "mlsecops": ("precommit", "fetch", "code-scan", "notebook-scan", "data-scan", "model-scan"),
    "devsecops": ("precommit", "code-scan", "build", "image-scan", "dast", "infra-scan", "runtime-probe"),
}


@dataclass(frozen=True)
class StepResult:
    """One stage's process in the pipeline."""

    stage: str
    """Stage id."""
    exit_code: int
    """The stage's exit code (see the README's table)."""
    seconds: float
    """Wall time."""
    output: str
    """What the stage printed on stderr (its summary line and errors)."""


@dataclass(frozen=True)
class PipelinePlan:
    """What `mlsec run` will do."""

    root: Path
    """The project scanned."""
    out: Path
    """Where SARIF, verdict, SBOM and signatures go."""
    scans: tuple[str, ...]
    """Scan stages to run in parallel."""
    unavailable: tuple[str, ...]
    """Stages of the pipeline this version does not implement."""
    gate: bool
    """Whether the gate stage is available."""
    sbom: bool
    """Whether the sbom stage is available."""
    sign_key: Path | None
    """Sign with this key after a passing gate (key backend); None: do not sign."""
    policy: Path | None
    """Gate policy; None: the default policy."""
    models: tuple[Path, ...] = ()
    """Model files or folders: recorded in the SBOM with their hashes, and signed."""
    model_card: Path | None = None
    """Model-card YAML for the SBOM."""


def plan(root: Path, out: Path, pipeline: str, available: Sequence[str], *, sign_key: Path | None = None,
         policy: Path | None = None, models: Sequence[Path] = (), model_card: Path | None = None) -> PipelinePlan:
    stages = PIPELINES[pipeline]
    return PipelinePlan(root=root, out=out, scans=tuple(s for s in stages if s in available),
                        unavailable=tuple(s for s in stages if s not in available),
                        gate="gate" in available, sbom="sbom" in available,
                        sign_key=sign_key if "sign" in available else None, policy=policy,
                        models=tuple(models), model_card=model_card)


def _mlsec(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlsec_actions", *args]


def _step(stage: str, command: list[str], cwd: Path) -> StepResult:
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSEC_")}
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    return StepResult(stage, proc.returncode, time.monotonic() - started, (proc.stderr + proc.stdout).strip())


def run(p: PipelinePlan, progress: Callable[[str], None]) -> int:
    """Run the plan; returns the exit code (the gate's when there is one)."""
    p.out.mkdir(parents=True, exist_ok=True)
    sarif_dir = p.out / "sarif"
    sarif_dir.mkdir(exist_ok=True)
    for stage in p.unavailable:
        progress(f"[{stage}] not available in this version (not run, not counted as passed)")
    results: list[StepResult] = []
    workers = max(1, min(len(p.scans), os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_step, s, _mlsec(s, str(p.root), "--sarif", str(sarif_dir / f"{s}.sarif")), p.root): s
                   for s in p.scans}
        for future in as_completed(futures):
            r = future.result()
            results.append(r)
            progress(_describe(r))
    worst = max((r.exit_code for r in results), default=0)
    if worst == ExitCode.USAGE:
        return ExitCode.USAGE
    code = worst
    verdict = p.out / "verdict.json"
    if p.gate:
        args = ["gate", "--sarif-dir", str(sarif_dir), "--verdict", str(verdict),
                "--summary", str(p.out / "summary.md"), "--sarif", str(p.out / "gate.sarif")]
        if p.policy is not None:
            args += ["--policy", str(p.policy)]
        r = _step("gate", _mlsec(*args), p.root)
        progress(_describe(r))
        code = r.exit_code
        if code == ExitCode.USAGE:  # a bad policy: nothing more is worth doing until it is fixed
            return code
    # sbom and sign share one digest cache, so each model file is read once in the run.
    cache = ["--digest-cache", str(p.out / "digests.json")]
    if p.sbom:
        args = ["sbom", str(p.root), "--out", str(p.out / "sbom.cdx.json"), *cache]
        for model in p.models:
            args += ["--model", str(model)]
        if p.model_card is not None:
            args += ["--model-card", str(p.model_card)]
        if verdict.is_file():
            args += ["--verdict", str(verdict)]
        r = _step("sbom", _mlsec(*args), p.root)
        progress(_describe(r))
        code = code or r.exit_code
    if p.sign_key is not None:
        if code != ExitCode.OK:
            progress("[sign] skipped: artifacts are only signed after a passing gate")
        else:
            artifacts = [str(m) for m in p.models] + [str(f) for f in (p.out / "sbom.cdx.json",) if f.is_file()]
            r = _step("sign", _mlsec("sign", "--backend", "key", "--key", str(p.sign_key), "--verdict", str(verdict),
                                     "--attest", "--sarif-dir", str(sarif_dir), "--attestation-out",
                                     str(p.out / "gate.intoto.sigstore.json"), "--base", str(_common_base(p)),
                                     *cache, *artifacts), p.root)
            progress(_describe(r))
            code = r.exit_code
    progress(f"results in {p.out}")
    return code


def _common_base(p: PipelinePlan) -> Path:
    """Attestation subject names are relative to a folder holding both the project and the results."""
    return Path(os.path.commonpath([p.root, p.out, *p.models]))


def _describe(r: StepResult) -> str:
    last = r.output.splitlines()
    summary = next((ln for ln in last if ln.startswith(f"{r.stage}:")), last[-1] if last else "")
    status = {0: "ok", 1: "TOOL ERROR", 2: "BAD INPUT", 3: "FAILED"}.get(r.exit_code, f"exit {r.exit_code}")
    errors = [ln for ln in last if "error" in ln.lower() and ln != summary][:5]
    lines = [f"[{r.stage}] {status} in {r.seconds:.1f}s: {summary}"] + [f"    {e}" for e in errors]
    return "\n".join(lines)
