"""`mlsec run`: the local pipeline on the example project, with real scanners, gate, SBOM and key signing."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from mlsec_actions import pipeline


def _key(tmp_path: Path) -> tuple[Path, Path]:
    key, pub = tmp_path / "signing.pem", tmp_path / "signing.pub"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True)
    subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    return key, pub


def test_plan_runs_only_available_stages_and_lists_the_rest() -> None:
    p = pipeline.plan(Path("/p"), Path("/o"), "mlsecops", ["code-scan", "model-scan", "gate", "sbom"])
    assert p.scans == ("code-scan", "model-scan")
    assert "precommit" in p.unavailable and "code-scan" not in p.unavailable
    assert p.gate and p.sbom and p.sign_key is None


def test_leaky_example_goes_red_and_nothing_is_signed(tmp_path: Path, example_project: Path,
                                                       run_mlsec) -> None:  # type: ignore[no-untyped-def]
    key, _ = _key(tmp_path)
    out = tmp_path / "results"
    proc = run_mlsec("run", str(example_project), "--out", str(out), "--sign-key", str(key),
                     "--model", str(example_project / "models"))
    assert proc.returncode == 3, proc.stderr
    assert "[code-scan] ok" in proc.stderr and "[model-scan] ok" in proc.stderr
    assert "[precommit] not available" in proc.stderr
    assert "[sign] skipped" in proc.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == "fail"
    assert {p.name for p in (out / "sarif").iterdir()} == {"code-scan.sarif", "model-scan.sarif"}
    assert not list(out.rglob("*.sigstore.json"))


def test_waived_example_goes_green_signs_and_verifies(tmp_path: Path, example_project: Path,
                                                      run_mlsec) -> None:  # type: ignore[no-untyped-def]
    key, pub = _key(tmp_path)
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "version: 1\nrequired-stages: [code-scan, model-scan]\n"
        "thresholds:\n  - {id: no-high, stage: '*', severity: high, max: 0}\n"
        "waivers:\n  - {id: demo, rule: 'trivy/*', reason: deliberately leaky demo, owner: '@ml',"
        f" expires: {dt.date.today() + dt.timedelta(days=30)}}}\n")  # the gate allows waivers of up to 90 days
    out = tmp_path / "results"
    models = example_project / "models"
    proc = run_mlsec("run", str(example_project), "--out", str(out), "--policy", str(policy), "--sign-key", str(key),
                     "--model", str(models), "--model-card", str(example_project / "model-card.yml"))
    assert proc.returncode == 0, proc.stderr
    sbom = json.loads((out / "sbom.cdx.json").read_text())
    assert any(c.get("type") == "machine-learning-model" for c in sbom["components"])
    verify = run_mlsec("verify", "--public-key", str(pub), str(models), str(out / "sbom.cdx.json"),
                       "--attestation", str(out / "gate.intoto.sigstore.json"), "--base", str(tmp_path))
    assert verify.returncode == 0, verify.stderr
    # A model byte changed after signing is caught, by name.
    weights = models / "linear.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    tampered = run_mlsec("verify", "--public-key", str(pub), str(models), "--base", str(tmp_path))
    assert tampered.returncode == 1
    assert "linear.safetensors" in tampered.stderr


@pytest.mark.parametrize(("args", "problem"), [
    (["--policy", "nope.yml"], "policy file not found"),
    (["--model", "no-model"], "model not found"),
])
def test_bad_input_is_exit_2(tmp_path: Path, example_project: Path, run_mlsec, args: list[str],
                             problem: str) -> None:  # type: ignore[no-untyped-def]
    proc = run_mlsec("run", str(example_project), "--out", str(tmp_path / "o"), *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert problem in proc.stderr
    assert not (tmp_path / "o").exists()
