"""The gate and the final sbom/sign job of mlsecops.yml, on examples/ml-project under act.

Red: the example as shipped fails the default policy at the gate, the verdict artifact says fail, and
nothing is signed. Green (issue 17's act item): the example with a training script, through every ML stage
mlsecops runs without a lock or a registry - precommit, the scans, gate-4, train, evaluate, gate-8, sbom,
sign - with a policy of reviewed, unexpired waivers for exactly the example's findings and an evaluate floor.
The final job writes the SBOM and signs the model, the SBOM, the verdict and the training provenance with the
`key` backend (a P-256 key made here, handed over as a repository secret); `mlsec verify --public-key` accepts
the bundles, the signed provenance is the train job's statement about the files it wrote, and the workflow's
outputs carry gate-8's verdict. Red again: the same waivers expired.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions.signing.key import generate
from tests.e2e.act_harness import ROOT, ActRun
from tests.e2e.conftest import POLICY_PATH, WORKFLOW, day, run_example, waiver_policy
from tests.provenance_schemas import PROVENANCE, errors

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(name="e2e-act")]

GATE = "gate before training"
SBOM = "sbom (ML stage 9)"
SIGN = "sign (ML stage 9)"
MODEL = "models/linear.safetensors"
TRAINED = ("model/metrics.json", "model/weights.json")
# The example's workflow with every ML stage that needs no lock or registry switched on, and a job that records
# what the reusable workflow's caller receives as its outputs.
TRAINING_WORKFLOW = """\
name: mlsec
on:
  push:
    branches: [main]
permissions: {}
jobs:
  mlsecops:
    uses: mlsec-actions/mlsec-actions/.github/workflows/mlsecops.yml@v1  # zizmor: ignore[unpinned-uses] test consumer
    permissions:
      contents: read
      security-events: write
      actions: read
      id-token: write
    with:
      path: .
      vuln-db: ${{ vars.MLSEC_VULN_DB || 'auto' }}
      policy: ${{ vars.MLSEC_POLICY || 'default' }}
      models: models/linear.safetensors
      model-card: model-card.yml
      signing-backend: ${{ vars.MLSEC_SIGNING_BACKEND || 'sigstore' }}
      precommit: fast
      train-command: |
        python3
        train_model.py
      train-output: model
      train-inputs: |
        train_model.py
        data/train.csv
      train-params: |
        seed=0
      eval-metrics: model/metrics.json
    secrets:
      signing-key: ${{ secrets.MLSEC_SIGNING_KEY }}
  outputs:
    needs: [mlsecops]
    if: ${{ !cancelled() }}
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - name: Record what the caller receives
        env:
          GATE_4: ${{ needs.mlsecops.outputs.gate-verdict }}
          GATE_8: ${{ needs.mlsecops.outputs.gate-8-verdict }}
          GATE_8_VIOLATIONS: ${{ needs.mlsecops.outputs.gate-8-violations }}
          RUN_ID: ${{ needs.mlsecops.outputs.run-id }}
        run: |
          printf '{"gate-verdict": "%s", "gate-8-verdict": "%s", "gate-8-violations": "%s", "run-id": "%s"}\\n' \\
            "$GATE_4" "$GATE_8" "$GATE_8_VIOLATIONS" "$RUN_ID" > "$E2E_RECORD_DIR/pipeline-outputs.json"
"""
# Least squares on committed data, stdlib only (the train job runs the runner's python3, not our venv).
TRAIN_SCRIPT = """\
import json
import pathlib

rows = [line.split(",") for line in pathlib.Path("data/train.csv").read_text().split()[1:]]
xs, ys = [float(x) for x, _ in rows], [float(y) for _, y in rows]
n = len(xs)
mx, my = sum(xs) / n, sum(ys) / n
a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
b = my - a * mx
rmse = (sum((a * x + b - y) ** 2 for x, y in zip(xs, ys)) / n) ** 0.5
out = pathlib.Path("model")
out.mkdir(exist_ok=True)  # mlsec train makes the (empty) output folder
(out / "weights.json").write_text(json.dumps({"a": a, "b": b}))
(out / "metrics.json").write_text(json.dumps({"rmse": rmse}))
"""
TRAIN_DATA = "x,y\n" + "".join(f"{x},{2 * x + 1 + (0.1 if x % 2 else -0.1)}\n" for x in range(20))
EVALUATE_POLICY = "evaluate:\n  metrics:\n    rmse: {max: 0.5}\n"


def _verdict(run: ActRun) -> dict[str, Any]:
    path = run.artifact("mlsec-gate-mlsecops-4") / "gate-verdict.json"
    assert path.is_file(), run.log[-4000:]
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def _assert_red_and_unsigned(run: ActRun) -> dict[str, Any]:
    assert run.returncode != 0, run.log[-4000:]
    assert run.job_result("code-scan") == "succeeded"
    assert run.job_result("model-scan") == "succeeded"
    assert run.job_result(GATE) == "failed", run.log[-4000:]
    assert "Failure - Main Fail on policy violation" in run.log
    verdict = _verdict(run)
    assert verdict["verdict"] == "fail"
    # The final jobs never started: no SBOM, no bundles.
    assert run.job_result(SBOM) is None and run.job_result(SIGN) is None
    assert not run.artifact("mlsec-signatures-mlsecops").exists()
    assert not run.artifact("mlsec-sbom-mlsecops").exists()
    return verdict


def test_example_goes_red_at_the_gate(example_run: ActRun) -> None:
    verdict = _assert_red_and_unsigned(example_run)
    assert [v["kind"] for v in verdict["violations"]] == ["threshold"]
    assert verdict["policy"]["path"].endswith("default.yml")
    gate_sarif = example_run.upload("mlsec/gate/mlsecops-4")
    assert gate_sarif["valid"] is True and gate_sarif["rule_ids"] == ["gate/threshold"]
    gate_dir = example_run.artifact("mlsec-gate-mlsecops-4")
    kept = sorted(p.name for p in gate_dir.iterdir())
    assert kept == ["gate-report.html", "gate-summary.md", "gate-verdict.json", "gate.sarif"]
    # The report is the gate's own: it names the verdict it shows.
    report = (gate_dir / "gate-report.html").read_text(encoding="utf-8")
    assert report.lstrip().lower().startswith("<!doctype html") and "threshold" in report


def test_gate_reads_every_stage_sarif_and_nothing_else(example_run: ActRun) -> None:
    lines = (example_run.record_dir / "download-artifact.jsonl").read_text(encoding="utf-8").splitlines()
    downloads = [json.loads(line) for line in lines]
    # Each of this pipeline's stage artifacts by its exact name, no pattern over the whole run.
    assert [(d["job"], d["name"], d["pattern"], d["path"]) for d in downloads] == [
        ("gate-4", "mlsec-sarif-mlsecops-code-scan", "", "mlsec-gate-input/code-scan"),
        ("gate-4", "mlsec-sarif-mlsecops-notebook-scan", "", "mlsec-gate-input/notebook-scan"),
        ("gate-4", "mlsec-sarif-mlsecops-data-scan", "", "mlsec-gate-input/data-scan"),
        ("gate-4", "mlsec-sarif-mlsecops-model-scan", "", "mlsec-gate-input/model-scan")]
    verdict = _verdict(example_run)
    assert [i["path"] for i in verdict["inputs"]] == ["mlsec-gate-input/code-scan/code-scan.sarif",
                                                      "mlsec-gate-input/data-scan/data-scan.sarif",
                                                      "mlsec-gate-input/model-scan/model-scan.sarif",
                                                      "mlsec-gate-input/notebook-scan/notebook-scan.sarif"]
    assert sorted(verdict["expected_stages"]) == ["code-scan", "data-scan", "model-scan", "notebook-scan"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("e2e-key")
    generate(folder / "signing.pem", folder / "signing.pub")
    return folder / "signing.pem", folder / "signing.pub"


@pytest.fixture(scope="module")
def green(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]) -> ActRun:
    private, _ = keys
    files = {POLICY_PATH: waiver_policy(day(30)) + EVALUATE_POLICY, str(WORKFLOW): TRAINING_WORKFLOW,
             "train_model.py": TRAIN_SCRIPT, "data/train.csv": TRAIN_DATA}
    return run_example(tmp_path_factory.mktemp("e2e-green"), files=files,
                       variables={"MLSEC_POLICY": POLICY_PATH, "MLSEC_SIGNING_BACKEND": "key"},
                       secrets={"MLSEC_SIGNING_KEY": private.read_text(encoding="utf-8")})


def test_waived_example_goes_green_and_is_signed(green: ActRun) -> None:
    assert green.returncode == 0, green.log[-4000:]
    for job in ("precommit", "code-scan", "notebook-scan", "data-scan", "model-scan", GATE, "train", "evaluate",
                "gate after training", SBOM, SIGN):
        assert green.job_result(job) == "succeeded", job
    verdict = _verdict(green)
    assert verdict["verdict"] == "pass" and verdict["violations"] == []
    assert verdict["policy"]["path"] == POLICY_PATH
    assert {w["id"]: w["matched"] for w in verdict["waivers"]["used"]} == {"demo-fake-keys": 1, "demo-infra": 10}
    signed = sorted(p.relative_to(green.artifact("mlsec-signatures-mlsecops")).as_posix()
                    for p in green.artifact("mlsec-signatures-mlsecops").rglob("*") if p.is_file())
    assert signed == ["mlsec-results/gate-verdict.json.sigstore.json", "mlsec-results/gate.intoto.sigstore.json",
                      "mlsec-results/gate.predicate.json", "mlsec-results/sbom.cdx.json.sigstore.json",
                      "mlsec-results/train.provenance.json.sigstore.json", f"{MODEL}.sigstore.json"]


def test_gate_8_judged_train_and_evaluate_and_its_verdict_is_an_output(green: ActRun) -> None:
    late = json.loads((green.artifact("mlsec-gate-mlsecops-8") / "gate-verdict.json").read_text(encoding="utf-8"))
    assert late["verdict"] == "pass" and late["violations"] == []
    assert late["policy"]["checkpoint"] == 8
    assert sorted(late["expected_stages"]) == ["code-scan", "evaluate", "model-scan", "train"]
    assert sorted((d["name"], d["status"]) for d in late["sarif_digests"]) == [
        ("code-scan/code-scan.sarif", "ok"), ("evaluate/evaluate.sarif", "ok"), ("model-scan/model-scan.sarif", "ok"),
        ("train/train.sarif", "ok")]
    evaluate = json.loads((green.artifact("mlsec-sarif-mlsecops-evaluate") / "evaluate.sarif").read_text("utf-8"))
    assert evaluate["runs"][0]["results"] == []  # rmse 0.1 under the policy's 0.5
    assert 0.09 < evaluate["runs"][0]["properties"]["metrics"]["rmse"] < 0.11
    outputs = json.loads((green.record_dir / "pipeline-outputs.json").read_text(encoding="utf-8"))
    assert outputs == {"gate-verdict": "pass", "gate-8-verdict": "pass", "gate-8-violations": "0",
                       "run-id": late["run_id"]}


def _signed_payload(bundle: Path) -> bytes:
    envelope = json.loads(bundle.read_text(encoding="utf-8"))["dsseEnvelope"]
    return base64.b64decode(envelope["payload"])


def test_the_signed_provenance_is_the_train_jobs_statement(green: ActRun) -> None:
    trained = green.artifact("mlsec-train-mlsecops")
    written = (trained / "mlsec-results" / "train.provenance.json").read_bytes()
    bundle = green.artifact("mlsec-signatures-mlsecops") / "mlsec-results" / "train.provenance.json.sigstore.json"
    assert _signed_payload(bundle) == written  # signed as it is, never rebuilt
    statement = json.loads(written)
    assert errors(statement, PROVENANCE) == []  # in-toto Statement v1 + SLSA v1, as written under act
    # Exactly the files the script wrote, with their digests as the train job kept them.
    assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]} == {
        name: hashlib.sha256((trained / name).read_bytes()).hexdigest() for name in TRAINED}
    consumer = green.record_dir.parent / "consumer"
    resolved = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    inputs = {d["name"]: d["digest"]["sha256"] for d in resolved if d.get("annotations", {}).get("role") == "input"}
    assert inputs == {name: hashlib.sha256((consumer / name).read_bytes()).hexdigest()
                      for name in ("data/train.csv", "train_model.py")}
    external = statement["predicate"]["buildDefinition"]["externalParameters"]
    assert external["command"] == ["python3", "train_model.py"] and external["parameters"] == {"seed": "0"}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=consumer, capture_output=True, text=True,
                            check=True).stdout.strip()
    assert {"uri": "git+https://github.com/example-org/ml-project", "digest": {"gitCommit": commit}} in resolved


def test_sbom_records_the_model_and_the_verdict(green: ActRun) -> None:
    sbom = json.loads((green.artifact("mlsec-sbom-mlsecops") / "sbom.cdx.json").read_text(encoding="utf-8"))
    (model,) = [c for c in sbom["components"] if c["type"] == "machine-learning-model"]
    digest = hashlib.sha256((green.record_dir.parent / "consumer" / MODEL).read_bytes()).hexdigest()
    assert model["name"] == MODEL and model["hashes"] == [{"alg": "SHA-256", "content": digest}]
    assert model["modelCard"]["modelParameters"]["task"] == "regression"  # from the example's model-card.yml
    props = {p["name"]: p["value"] for p in sbom["metadata"]["properties"]}
    assert props["mlsec:gate:verdict"] == "pass"


def _consumer_view(run: ActRun, dest: Path) -> Path:
    """What a consumer holds after downloading the run's artifacts into a checkout of the same commit."""
    shutil.copytree(run.record_dir.parent / "consumer", dest, ignore=shutil.ignore_patterns(".git"))
    shutil.copytree(run.artifact("mlsec-signatures-mlsecops"), dest, dirs_exist_ok=True)
    # The signed verdict is the last gate's (ML stage 8, after evaluate); its inputs are what it read.
    shutil.copytree(run.artifact("mlsec-gate-mlsecops-8"), dest / "mlsec-results", dirs_exist_ok=True)
    shutil.copy2(run.artifact("mlsec-sbom-mlsecops") / "sbom.cdx.json", dest / "mlsec-results")
    for stage in ("code-scan", "model-scan", "train", "evaluate"):
        shutil.copytree(run.artifact(f"mlsec-sarif-mlsecops-{stage}"), dest / "mlsec-gate-input" / stage)
    # The trained model as the train job kept it (the provenance's subjects).
    shutil.copytree(run.artifact("mlsec-train-mlsecops") / "model", dest / "model")
    return dest


def _verify(view: Path, public: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / ".venv" / "bin" / "mlsec"), "verify", "--public-key", str(public), MODEL,
                           "mlsec-results/sbom.cdx.json", "mlsec-results/gate-verdict.json",
                           "--attestation", "mlsec-results/gate.intoto.sigstore.json",
                           "--provenance", "mlsec-results/train.provenance.json.sigstore.json"],
                          cwd=view, capture_output=True, text=True, timeout=300, check=False)


def test_bundles_verify_with_the_public_key(green: ActRun, keys: tuple[Path, Path], tmp_path: Path) -> None:
    got = _verify(_consumer_view(green, tmp_path / "view"), keys[1])
    assert got.returncode == 0, got.stdout + got.stderr
    assert got.stderr.count("verify: OK") == 5, got.stderr
    assert "gate verdict 'pass'" in got.stderr


def test_a_changed_trained_model_fails_its_provenance(green: ActRun, keys: tuple[Path, Path], tmp_path: Path) -> None:
    view = _consumer_view(green, tmp_path / "view")
    (view / "model" / "weights.json").write_text('{"a": 0.0, "b": 0.0}', encoding="utf-8")
    got = _verify(view, keys[1])
    assert got.returncode == 1, got.stdout + got.stderr
    assert "verify: FAIL mlsec-results/train.provenance.json.sigstore.json" in got.stderr, got.stderr


def test_a_changed_model_no_longer_verifies(green: ActRun, keys: tuple[Path, Path], tmp_path: Path) -> None:
    view = _consumer_view(green, tmp_path / "view")
    model = view / MODEL
    model.write_bytes(model.read_bytes()[:-4] + b"\x00\x00\x80\x7f")  # b := +inf
    got = _verify(view, keys[1])
    assert got.returncode == 1, got.stdout + got.stderr
    assert f"verify: FAIL {MODEL}" in got.stderr


def test_signing_key_never_reaches_the_log(green: ActRun, keys: tuple[Path, Path]) -> None:
    body = [line for line in keys[0].read_text(encoding="utf-8").splitlines() if "-----" not in line]
    assert "PRIVATE KEY" not in green.log
    assert not [line for line in body if line in green.log]


def test_expired_waivers_turn_the_gate_red_again(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    expired = run_example(tmp_path, files={POLICY_PATH: waiver_policy(day(-2))},
                          variables={"MLSEC_POLICY": POLICY_PATH, "MLSEC_SIGNING_BACKEND": "key"},
                          secrets={"MLSEC_SIGNING_KEY": keys[0].read_text(encoding="utf-8")})
    verdict = _assert_red_and_unsigned(expired)
    kinds = sorted(v["kind"] for v in verdict["violations"])
    assert kinds == ["threshold", "waiver-expired", "waiver-expired"], verdict["violations"]
    assert sorted(w["id"] for w in verdict["waivers"]["expired"]) == ["demo-fake-keys", "demo-infra"]
