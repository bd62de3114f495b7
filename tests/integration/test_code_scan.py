"""code-scan with the real trivy: findings, SARIF, fingerprints, and failing closed."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.trees import FAKE_AWS_KEY_ID, clean_project, leaky_project


def _results(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return json.loads(path.read_text())["runs"][0]["results"]  # type: ignore[no-any-return]


def test_finds_secret_and_misconfigurations(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    project = leaky_project(tmp_path / "proj")
    out = tmp_path / "code-scan.sarif"
    proc = run_mlsec("code-scan", str(project), "--sarif", str(out), "--vuln-db", "skip")
    assert proc.returncode == 0, proc.stderr
    results = _results(out)
    rules = {r["ruleId"] for r in results}
    assert "trivy/secret/aws-access-key-id" in rules
    assert any(r.startswith("trivy/misconfig/") for r in rules)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert {"train.py", "Dockerfile", "infra/main.tf"} <= uris
    # The secret's value never reaches the SARIF.
    assert FAKE_AWS_KEY_ID not in out.read_text()
    assert f"SARIF: {out}" in proc.stderr


def test_clean_tree_has_no_results_but_a_successful_invocation(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "clean.sarif"
    proc = run_mlsec("code-scan", str(clean_project(tmp_path / "c")), "--sarif", str(out), "--vuln-db", "skip")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(out.read_text())["runs"][0]
    assert run["results"] == []
    assert run["invocations"][0]["executionSuccessful"] is True
    assert run["invocations"][0]["properties"]["version"] != "unknown"


def test_missing_db_is_announced_not_silent(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "nodb.sarif"
    proc = run_mlsec("code-scan", str(clean_project(tmp_path / "c")), "--sarif", str(out),
                     "--trivy-cache-dir", str(tmp_path / "empty-cache"))
    assert proc.returncode == 0, proc.stderr
    notes = json.loads(out.read_text())["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert any("NOT scanned" in n["message"]["text"] and n["level"] == "warning" for n in notes)
    assert "vulnerabilities were NOT scanned" in proc.stderr


def test_required_db_download_failure_fails_closed(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "dl.sarif"
    proc = run_mlsec("code-scan", str(clean_project(tmp_path / "c")), "--sarif", str(out), "--vuln-db", "download",
                     "--trivy-cache-dir", str(tmp_path / "empty-cache"),
                     env={"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
    assert proc.returncode == 1
    inv = json.loads(out.read_text())["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False


def test_fingerprints_stable_across_runs_and_line_moves(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    project = leaky_project(tmp_path / "proj")

    def prints(name: str) -> dict[str, str]:
        out = tmp_path / f"{name}.sarif"
        assert run_mlsec("code-scan", str(project), "--sarif", str(out), "--vuln-db", "skip").returncode == 0
        return {r["ruleId"]: r["partialFingerprints"]["primaryLocationLineHash"] for r in _results(out)
                if r["ruleId"].startswith("trivy/secret/")}

    first, second = prints("one"), prints("two")
    assert first and first == second
    train = project / "train.py"
    train.write_text("# moved down\n\n\n" + train.read_text())
    moved = prints("moved")
    assert moved == first
    out = json.loads((tmp_path / "moved.sarif").read_text())["runs"][0]["results"]
    line = next(r for r in out if r["ruleId"].startswith("trivy/secret/"))
    assert line["locations"][0]["physicalLocation"]["region"]["startLine"] == 6  # it really moved


def test_missing_trivy_fails_closed(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "missing.sarif"
    proc = run_mlsec("code-scan", str(leaky_project(tmp_path / "p")), "--sarif", str(out), "--vuln-db", "skip",
                     env={"MLSEC_TRIVY_BIN": str(tmp_path / "no-trivy-here")})
    assert proc.returncode == 1
    assert "trivy missing" in proc.stderr
    run = json.loads(out.read_text())["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is False
    assert run["results"] == []


def test_crashing_trivy_fails_closed(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    fake = tmp_path / "trivy"
    fake.write_text("#!/bin/sh\necho 'panic: runtime error: index out of range' >&2\nexit 2\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "crash.sarif"
    proc = run_mlsec("code-scan", str(leaky_project(tmp_path / "p")), "--sarif", str(out), "--vuln-db", "skip",
                     env={"MLSEC_TRIVY_BIN": str(fake)})
    assert proc.returncode == 1
    inv = json.loads(out.read_text())["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert "panic: runtime error" in inv["toolExecutionNotifications"][0]["message"]["text"]


def test_garbage_output_fails_closed(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    fake = tmp_path / "trivy"
    fake.write_text("#!/bin/sh\necho 'Version: 0.0.1'\necho '{\"Results\": [' \nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "garbage.sarif"
    proc = run_mlsec("code-scan", str(tmp_path), "--sarif", str(out), "--vuln-db", "skip",
                     env={"MLSEC_TRIVY_BIN": str(fake)})
    assert proc.returncode == 1
    assert "not JSON" in json.loads(out.read_text())["runs"][0]["invocations"][0][
        "toolExecutionNotifications"][0]["message"]["text"]


def test_paths_are_relative_to_the_repository_root(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "repo"
    leaky_project(repo / "services" / "ml")
    (repo / ".git").mkdir()
    out = tmp_path / "sub.sarif"
    assert run_mlsec("code-scan", str(repo / "services" / "ml"), "--sarif", str(out), "--vuln-db",
                     "skip").returncode == 0
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in _results(out)}
    assert "services/ml/train.py" in uris
    env_out = tmp_path / "ws.sarif"
    assert run_mlsec("code-scan", str(repo / "services" / "ml"), "--sarif", str(env_out), "--vuln-db", "skip",
                     env={"GITHUB_WORKSPACE": str(repo / "services")}).returncode == 0
    assert "ml/train.py" in {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                             for r in _results(env_out)}
