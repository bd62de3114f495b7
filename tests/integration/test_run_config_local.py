"""`mlsec run` with the project's `.mlsec.yml`: the config sets the policy, the models and key signing, the verdict
records where the config came from, `--only` narrows the scans, and a stage left out that the policy requires
fails the gate (skipping never turns a gate green)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def configured(example_project: Path) -> Path:
    (example_project / "policy.yml").write_text(
        "version: 1\nrequired-stages: [model-scan]\ntool-errors: fail\n"
        "thresholds:\n  - {id: no-high, stage: '*', severity: high, max: 0}\n")
    (example_project / ".mlsec.yml").write_text(
        "policy: policy.yml\nmodels: [models]\nmodel-card: model-card.yml\nsigning-backend: key\n"
        "upload-sarif: false\nmodel-scan:\n  timeout: 120\n")
    return example_project


def test_project_config_signs_with_a_generated_key_and_is_recorded(configured: Path, tmp_path: Path,
                                                                   run_mlsec) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    proc = run_mlsec("run", str(configured), "--out", str(out), "--only", "model-scan,data-scan",
                     "--log-format", "json")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is one JSON event
    messages = [e["message"] for e in events]
    assert any("generated a signing key" in m for m in messages)
    assert any(m.startswith("config upload-sarif: used by the workflows only") for m in messages)
    assert [e["stage"] for e in events if e["event"] == "stage-end"][-2:] == ["sign", "verify"]
    assert (out / "signing-key.pem").stat().st_mode & 0o077 == 0
    assert (configured / "models.sigstore.json").is_file() and (out / "gate.intoto.sigstore.json").is_file()
    digest = hashlib.sha256((configured / ".mlsec.yml").read_bytes()).hexdigest()
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["run_config"] == {"source": "project", "path": str(configured / ".mlsec.yml"), "sha256": digest}
    assert verdict["policy"]["path"].endswith("policy.yml") and verdict["verdict"] == "pass"
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["sha256"] == digest
    assert record["left-out"] == ["code-scan", "notebook-scan", "evaluate"]
    html = (out / "report.html").read_text()
    assert "left out (--only/--skip)" in html and "models.sigstore.json" in html
    assert [s["status"] for s in record["signed"]] == ["verified"] * 3, record["signed"]  # models, SBOM, verdict
    # The key the run made verifies what it signed.
    verify = run_mlsec("verify", "--public-key", str(out / "signing-key.pub"), str(configured / "models"),
                       "--attestation", str(out / "gate.intoto.sigstore.json"), "--base", str(tmp_path))
    assert verify.returncode == 0, verify.stderr


def test_skipping_a_required_stage_fails_the_gate(configured: Path, tmp_path: Path,
                                                  run_mlsec) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    proc = run_mlsec("run", str(configured), "--out", str(out), "--skip", "model-scan,code-scan,evaluate",
                     "--skip", "notebook-scan", "--log-format", "plain")
    assert proc.returncode == 3, proc.stderr
    assert "[model-scan] left out by --only/--skip (not run, not counted as passed)" in proc.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == "fail"
    kinds = {(v["stage"], v["kind"]) for v in verdict["violations"]}
    assert ("model-scan", "required-stage-missing") in kinds, verdict
    assert not list(out.rglob("*.sigstore.json")) and not (configured / "models.sigstore.json").exists()


def _one_core(mlsec_bin: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # One core: stages run one at a time in catalog order, so which ones had not started is certain.
    return subprocess.run(["taskset", "-c", "0", mlsec_bin, *args], env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def test_a_failed_stage_stops_new_ones_unless_keep_going(example_project: Path, tmp_path: Path,
                                                         mlsec_bin: str) -> None:
    fake = tmp_path / "fake-trivy"
    fake.write_text("#!/bin/sh\necho 'fake trivy: internal failure' >&2\nexit 1\n")
    fake.chmod(0o755)
    (example_project / ".mlsec.yml").write_text("vuln-db: skip\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_"))} | {
        "MLSEC_TRIVY_BIN": str(fake)}
    out = tmp_path / "out"
    two = ("--only", "code-scan,data-scan")  # code-scan first (catalog order), then one that may not start
    first = _one_core(mlsec_bin, "run", str(example_project), "--out", str(out), *two, "--log-format", "plain",
                      env=env)
    assert first.returncode == 3, first.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["stages"][0]["stage"] == "code-scan" and record["stages"][0]["exit-code"] == 1
    assert record["not-started"] == ["data-scan"]
    assert "[data-scan] not started: code-scan failed" in first.stderr
    missing = {v["stage"] for v in json.loads((out / "verdict.json").read_text())["violations"]
               if v["kind"] == "stage-missing"}
    assert missing == set(record["not-started"])
    both = _one_core(mlsec_bin, "run", str(example_project), "--out", str(out), *two, "--keep-going", env=env)
    assert both.returncode == 3, both.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["not-started"] == [] and [s["stage"] for s in record["stages"]] == [
        "code-scan", "data-scan", "gate", "sbom"]


def test_a_given_config_brings_its_policy_never_the_trees(example_project: Path, tmp_path: Path,
                                                          run_mlsec) -> None:  # type: ignore[no-untyped-def]
    # As CI hands the base commit's config: `policy: team.yml` is the one beside it, not the tree's own.
    base = tmp_path / "base"
    base.mkdir()
    (base / "team.yml").write_text("version: 1\nrequired-stages: [code-scan]\n")
    (base / "mlsec.yml").write_text("policy: team.yml\n")
    (example_project / "team.yml").write_text("version: 1\nrequired-stages: []\n")  # the tree's permissive copy
    out = tmp_path / "out"
    proc = run_mlsec("run", str(example_project), "--out", str(out), "--config", str(base / "mlsec.yml"),
                     "--only", "data-scan", "--no-report")
    assert proc.returncode == 3, proc.stderr  # code-scan is required by the base's policy and was left out
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["policy"]["path"] == str(base / "team.yml")
    assert verdict["run_config"]["source"] == "--config" and not (out / "report.html").exists()
