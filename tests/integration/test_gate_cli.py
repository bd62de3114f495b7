"""`mlsec gate` on SARIF that the real `mlsec code-scan` (trivy) wrote: red, green with a waiver, red when expired."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.trees import leaky_project

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real code-scan of a leaky tree (a secret, Dockerfile and Terraform misconfigurations)."""
    root = tmp_path_factory.mktemp("gate-cli")
    project = leaky_project(root / "proj")
    out = root / "results" / "code-scan.sarif"
    mlsec = str(Path(sys.executable).parent / "mlsec")
    proc = subprocess.run([mlsec, "code-scan", str(project), "--sarif", str(out), "--vuln-db", "skip"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return out.parent


WAIVED = (("secret", "trivy/secret/*"), ("misconfig", "trivy/misconfig/*"), ("iac", "checkov/*"))
"""What the leaky tree's findings come from: trivy's secret and misconfiguration checks, and checkov's IaC checks."""


def _policy(tmp_path: Path, expires: dt.date | None) -> Path:
    text = "version: 1\nrequired-stages: [code-scan]\nthresholds:\n  - id: no-high\n    severity: high\n"
    if expires is not None:
        text += "waivers:\n" + "".join(
            f"  - id: {name}\n    rule: '{rule}'\n    reason: demo fixtures, not deployed\n"
            f"    owner: '@platform'\n    expires: {expires.isoformat()}\n" for name, rule in WAIVED)
    path = tmp_path / "policy.yml"
    path.write_text(text, encoding="utf-8")
    return path


def _gate(run_mlsec, tmp_path: Path, sarif_dir: Path, *extra: str):  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    env = {"GITHUB_OUTPUT": str(tmp_path / "gh-output"), "GITHUB_STEP_SUMMARY": str(tmp_path / "gh-summary")}
    return run_mlsec("gate", "--sarif-dir", str(sarif_dir), "--verdict", str(out / "verdict.json"),
                     "--summary", str(out / "summary.md"), "--sarif", str(out / "gate.sarif"), *extra,
                     cwd=tmp_path, env=env)


def test_default_policy_is_red_on_real_findings(scanned: Path, tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    proc = _gate(run_mlsec, tmp_path, scanned)
    assert proc.returncode == 3, proc.stderr
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert verdict["verdict"] == "fail"
    assert verdict["policy"]["path"] == "policies/default.yml"
    assert [v["kind"] for v in verdict["violations"]] == ["threshold"]
    assert verdict["counts"]["code-scan"]["critical"] >= 1
    assert [i["path"] for i in verdict["inputs"]] == [str(scanned / "code-scan.sarif")]
    assert {"stage": "code-scan", "name": "trivy", "status": "ok"}.items() <= verdict["tools"][0].items()
    outputs = (tmp_path / "gh-output").read_text()
    assert "verdict=fail\n" in outputs and "violations=1\n" in outputs
    summary = (tmp_path / "gh-summary").read_text()
    assert "## mlsec gate: ❌ **FAIL**" in summary and "trivy/secret/aws-access-key-id" in summary
    assert summary.strip() == (tmp_path / "out" / "summary.md").read_text().strip()
    gate_sarif = json.loads((tmp_path / "out" / "gate.sarif").read_text())
    assert [r["ruleId"] for r in gate_sarif["runs"][0]["results"]] == ["gate/threshold"]
    assert "gate: FAIL: 1 violation(s)" in proc.stderr


def test_waiver_turns_it_green(scanned: Path, tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    proc = _gate(run_mlsec, tmp_path, scanned, "--policy", str(_policy(tmp_path, TODAY + dt.timedelta(days=30))))
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert verdict["verdict"] == "pass" and verdict["violations"] == []
    assert {w["id"] for w in verdict["waivers"]["used"]} == {name for name, _ in WAIVED}
    assert verdict["waived"] == sum(verdict["counts"]["code-scan"].values())
    assert "verdict=pass\n" in (tmp_path / "gh-output").read_text()


def test_expired_waiver_turns_it_red_again(scanned: Path, tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    proc = _gate(run_mlsec, tmp_path, scanned, "--policy", str(_policy(tmp_path, TODAY - dt.timedelta(days=1))))
    assert proc.returncode == 3, proc.stderr
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert sorted(v["kind"] for v in verdict["violations"]) == ["threshold"] + ["waiver-expired"] * len(WAIVED)
    assert {w["id"] for w in verdict["waivers"]["expired"]} == {name for name, _ in WAIVED}


def test_baseline_of_the_same_run_is_green(scanned: Path, tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    proc = _gate(run_mlsec, tmp_path, scanned, "--baseline", str(scanned))
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert verdict["in_baseline"] == sum(verdict["counts"]["code-scan"].values()) > 0


@pytest.fixture
def outside_basetemp() -> Iterator[Path]:
    """Broken *.sarif files stay out of basetemp, whose *.sarif files the session hook validates."""
    with tempfile.TemporaryDirectory(prefix="mlsec-gate-cli-") as d:
        yield Path(d)


def test_truncated_sarif_fails_closed(scanned: Path, tmp_path: Path, outside_basetemp: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    sarif_dir = outside_basetemp / "sarif"
    shutil.copytree(scanned, sarif_dir)
    text = (sarif_dir / "code-scan.sarif").read_text()
    (sarif_dir / "code-scan.sarif").write_text(text[: len(text) // 3])
    proc = _gate(run_mlsec, tmp_path, sarif_dir, "--policy", str(_policy(tmp_path, TODAY)))
    assert proc.returncode == 3, proc.stderr
    assert f"sarif-malformed: {sarif_dir / 'code-scan.sarif'}: not valid JSON" in proc.stderr
    assert "truncated or corrupt SARIF" in proc.stderr
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert sorted(v["kind"] for v in verdict["violations"]) == ["required-stage-missing", "sarif-malformed"]


@pytest.mark.parametrize(("args", "message"), [
    (("--sarif-dir", "missing"), "missing: no such folder"),
    (("--baseline", "missing"), "missing: no such folder"),
    (("--policy", "nope.yml"), "nope.yml: cannot read policy"),
    (("--policy", "bad.yml"), "bad.yml:2: thresholds: {} is not of type 'array'"),
])
def test_bad_input_exits_2(scanned: Path, tmp_path: Path, run_mlsec, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bad.yml").write_text("version: 1\nthresholds: {}\n")
    full = ("--sarif-dir", str(scanned), *args) if args[0] != "--sarif-dir" else args
    proc = run_mlsec("gate", *full, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_policy_validate_command(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    good = _policy(tmp_path, TODAY)
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 1\nwaivers:\n  - rule: x/*\n    owner: me\n    expires: 2027-01-01\n")
    ok = run_mlsec("policy", "validate", str(good), "default", "strict")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(": valid (") == 3
    proc = run_mlsec("policy", "validate", str(good), str(bad))
    assert proc.returncode == 2
    assert f"{bad}:3: waivers[0]: 'reason' is a required property" in proc.stderr
    assert "policy" not in [line.split()[0] for line in run_mlsec("stages").stdout.splitlines()]


def test_defaults_and_rerun_with_outputs_inside_the_sarif_dir(scanned: Path, tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    """All defaults: reads mlsec-results/ and writes its outputs there. A second run must not read the first
    run's gate.sarif, which it then overwrites (the verdict's digests would no longer match the files)."""
    shutil.copytree(scanned, tmp_path / "mlsec-results")
    for _ in range(2):
        proc = run_mlsec("gate", cwd=tmp_path)
        assert proc.returncode == 3, proc.stderr
    verdict = json.loads((tmp_path / "mlsec-results" / "gate-verdict.json").read_text())
    assert [i["path"] for i in verdict["inputs"]] == ["mlsec-results/code-scan.sarif"]
    for item in verdict["inputs"]:
        assert hashlib.sha256((tmp_path / item["path"]).read_bytes()).hexdigest() == item["sha256"]
    assert (tmp_path / "mlsec-results" / "gate.sarif").is_file()
    assert (tmp_path / "mlsec-results" / "gate-summary.md").is_file()
