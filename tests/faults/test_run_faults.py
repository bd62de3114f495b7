"""`mlsec run` under every fault, generated from the catalog: the run exits non-zero, nothing is signed, the
gate fails, and the verdict names the stage and the cause (the runner writes a failed SARIF on the behalf of
a stage that died or left none)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from mlsec_actions import catalog, pipeline
from tests.faults.conftest import (
    SCAN_STAGES,
    SCANNER_FAULTS,
    STAGE_HANGS,
    STAGE_KILLED,
    Fault,
    assert_names_stage_and_cause,
    clean_env,
    external_tools,
    give_input,
    make_fake,
    mlsec,
    runner_tools,
    stage_inputs,
    tool_env,
)

pytestmark = pytest.mark.integration

# The runner's own faults: the stage process itself dies, hangs, or leaves someone else's SARIF.
RUN_FAULTS = (
    *SCANNER_FAULTS,
    Fault("stage-killed", STAGE_KILLED, ("killed by signal", "SIGKILL")),
    Fault("stage-hangs", STAGE_HANGS, ("did not finish",)),
)
CASES = [pytest.param(s, t, f, id=f"{s.id}-{t}-{f.name}")
         for s in SCAN_STAGES for t in runner_tools(s) for f in RUN_FAULTS]


def _pipeline_for(stage: catalog.StageInfo) -> str:
    """The pipeline with the fewest implemented scan stages that holds this one (faster runs)."""
    return min((p for p in catalog.PIPELINES if stage.id in pipeline.plan(Path("/"), Path("/"), p).scans),
               key=lambda p: len(pipeline.plan(Path("/"), Path("/"), p).scans))


def _key(tmp_path: Path) -> Path:
    key = tmp_path / "signing.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True)
    return key


def _run(tmp_path: Path, project: Path, policy: Path, stage: catalog.StageInfo, env: dict[str, str],
         stage_timeout: str = "120", tool_timeout: str = "120") -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "out"
    config = tmp_path / "mlsec.yml"
    extra, section = stage_inputs(stage.id, tmp_path)
    if "--policy" in extra:  # a network stage's own policy (lenient too, plus its hosts) is the run's: mlsec run
        policy = Path(extra[extra.index("--policy") + 1])  # hands the run's policy to the stage
    config.write_text(f"{stage.id}:\n  timeout: {tool_timeout}\n{section}"
                      + ("code-scan:\n" if stage.id != "code-scan" else "") + "  vuln-db: skip\n")
    # Only the stage under test (its pipeline's other scans prove nothing here, and each costs seconds): the gate,
    # the SBOM and the signing still run after it.
    proc = mlsec("run", str(project), "--pipeline", _pipeline_for(stage), "--only", stage.id, "--no-report",
                 "--out", str(out), "--policy", str(policy),
                 "--config", str(config), "--stage-timeout", stage_timeout, "--sign-key", str(_key(tmp_path)),
                 env=clean_env(**env))
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, out


@pytest.mark.parametrize("stage", [pytest.param(s, id=s.id) for s in SCAN_STAGES])
def test_clean_run_passes_and_signs(tmp_path: Path, project: Path, lenient_policy: Path,
                                    stage: catalog.StageInfo) -> None:
    proc, out = _run(tmp_path, project, lenient_policy, stage, {})
    assert proc.returncode == 0, proc.stderr  # the control: the same run without a fault is green
    assert (out / "gate.intoto.sigstore.json").is_file()


@pytest.mark.parametrize(("stage", "tool", "fault"), CASES)
def test_fault_makes_the_run_fail(tmp_path: Path, project: Path, lenient_policy: Path, stage: catalog.StageInfo,
                                  tool: str, fault: Fault) -> None:
    give_input(project, tool)
    fake = make_fake(tmp_path, tool, fault.body)
    hangs_whole_stage = fault.name == "stage-hangs"
    # Only the faulted scanner's hang is meant to hit a timeout: the real tools keep a normal one.
    proc, out = _run(tmp_path, project, lenient_policy, stage, {tool_env(tool): str(fake)},
                     stage_timeout="4" if hangs_whole_stage else "120",
                     tool_timeout="1.5" if fault.name == "hangs" else "120")
    assert proc.returncode != 0, proc.stderr
    assert not list(out.rglob("*.sigstore.json")), "signed after a fault"
    assert_names_stage_and_cause(out / "verdict.json", stage.id, fault.causes)
    record = json.loads((out / "run.json").read_text())
    mine = next(s for s in record["stages"] if s["stage"] == stage.id)
    assert mine["exit-code"] != 0


# The stage is killed through a faked scanner, so only stages with an external tool (evaluate has none: its
# libraries are imported, its robustness worker is ours) are in this case; every stage is in the others.
@pytest.mark.parametrize("stage", [pytest.param(s, id=s.id) for s in SCAN_STAGES if external_tools(s)])
def test_sarif_from_an_earlier_run_is_never_read(tmp_path: Path, project: Path, lenient_policy: Path,
                                                 stage: catalog.StageInfo) -> None:
    # A clean SARIF from an earlier run is left where this run writes; this run's stage then dies writing
    # nothing. Without the cleared folder and the run id, the gate would read the old file and pass.
    first, out = _run(tmp_path, project, lenient_policy, stage, {})
    assert first.returncode == 0, first.stderr
    old = (out / "sarif" / f"{stage.id}.sarif").read_text()
    fake = make_fake(tmp_path, external_tools(stage)[0], STAGE_KILLED)
    keep = tmp_path / "earlier.sarif.bad"
    keep.write_text(old)
    proc, out = _run(tmp_path, project, lenient_policy, stage, {tool_env(external_tools(stage)[0]): str(fake)})
    assert proc.returncode != 0
    assert (out / "sarif" / f"{stage.id}.sarif").read_text() != old
    assert_names_stage_and_cause(out / "verdict.json", stage.id, ("killed by signal",))


def test_stale_run_id_in_the_stage_sarif_is_refused(tmp_path: Path) -> None:
    # The runner's own check: a SARIF whose run id is not this run's is replaced by a failed one.
    from mlsec_actions.findings import StageResult
    from mlsec_actions.sarif import write_sarif

    path = tmp_path / "code-scan.sarif"
    write_sarif(StageResult("code-scan"), path, run_id=str(uuid.uuid4()))
    assert pipeline.sarif_problem(path, "code-scan", str(uuid.uuid4())) == "left a SARIF that is not from this run"
    assert pipeline.sarif_problem(path, "model-scan", json.loads(path.read_text())["runs"][0]["properties"]
                                  ["mlsec-run-id"]) is not None
    assert pipeline.sarif_problem(tmp_path / "none.sarif", "code-scan", "x") == "wrote no SARIF"


# A trivy stand-in that reports a clean tree, and leaves behind (in a session of its own, so the stage's
# process-group kill does not stop it) a process that deletes code-scan's SARIF as soon as it appears.
_CLEAN_TRIVY_THEN_DELETE = """
out=""; prev=""
for a in "$@"; do if [ "$prev" = "--output" ]; then out="$a"; fi; prev="$a"; done
report='{"SchemaVersion": 2, "Trivy": {"Version": "0.0.0"}, "Results": []}'
if [ -n "$out" ]; then echo "$report" > "$out"; else echo "$report"; fi
setsid sh -c 'touch "$FAULT_ARMED"; i=0
while [ ! -f "$FAULT_TARGET" ] && [ $i -lt 12000 ]; do sleep 0.01; i=$((i+1)); done
rm -f "$FAULT_TARGET" && touch "$FAULT_TARGET.deleted"' </dev/null >/dev/null 2>&1 &
# Exit only once the deleter has its own session: the adapter kills the tool's process group when it exits.
j=0; while [ ! -f "$FAULT_ARMED" ] && [ $j -lt 3000 ]; do sleep 0.01; j=$((j+1)); done
exit 0
"""


def test_sarif_deleted_during_the_run_fails_it(tmp_path: Path, project: Path, lenient_policy: Path) -> None:
    # Whether the runner sees the file gone (and writes a failed SARIF on the stage's behalf) or the gate does
    # (stage-missing for an expected stage), the run is red; only the moment differs.
    stage = catalog.by_id("code-scan")
    assert stage is not None
    target = tmp_path / "out" / "sarif" / "code-scan.sarif"
    fake = make_fake(tmp_path, "trivy", _CLEAN_TRIVY_THEN_DELETE)
    proc, out = _run(tmp_path, project, lenient_policy, stage,
                     {tool_env("trivy"): str(fake), "FAULT_TARGET": str(target),
                      "FAULT_ARMED": str(tmp_path / "deleter-armed")})
    assert Path(f"{target}.deleted").exists(), "the fault did not happen"
    assert proc.returncode != 0, proc.stderr
    assert not list(out.rglob("*.sigstore.json"))
    assert_names_stage_and_cause(out / "verdict.json", "code-scan", ("no SARIF", "wrote no SARIF", "produced no"))
