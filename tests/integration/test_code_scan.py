"""code-scan with the real trivy: findings, SARIF, fingerprints, and failing closed."""

from __future__ import annotations

import json
import shutil
import stat
import time
from pathlib import Path

from tests.trees import FAKE_AWS_KEY_ID, clean_project, leaky_project

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trivy"


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


def _coverage(sarif: Path) -> list[dict]:  # type: ignore[type-arg]
    return json.loads(sarif.read_text())["runs"][0]["properties"]["mlsec-coverage"]["gaps"]  # type: ignore[no-any-return]


UNREACHABLE_DB = "127.0.0.1:1/mlsec/no-such-db"  # refused at once: the download path is forced, not hoped for


def test_missing_db_is_a_coverage_gap_not_silence(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "nodb.sarif"
    proc = run_mlsec("code-scan", str(clean_project(tmp_path / "c")), "--sarif", str(out), "--vuln-db", "auto",
                     "--trivy-cache-dir", str(tmp_path / "empty-cache"), "--trivy-db-repository", UNREACHABLE_DB)
    assert proc.returncode == 0, proc.stderr
    gaps = [g for g in _coverage(out) if g["kind"] == "vulnerabilities-not-scanned"]
    assert [g["tool"] for g in gaps] == ["trivy"] and "127.0.0.1:1" in gaps[0]["detail"]
    inv = json.loads(out.read_text())["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is True
    assert any(n["descriptor"]["id"] == "mlsec/coverage/vulnerabilities-not-scanned"
               for n in inv["toolExecutionNotifications"])
    assert "vulnerabilities NOT scanned" in proc.stderr


def test_vuln_db_skip_is_recorded_as_a_gap(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "skip.sarif"
    assert run_mlsec("code-scan", str(clean_project(tmp_path / "c")), "--sarif", str(out), "--vuln-db",
                     "skip").returncode == 0
    assert [g["kind"] for g in _coverage(out)] == ["vulnerabilities-not-scanned"]


def test_required_db_download_failure_fails_closed(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "dl.sarif"
    proc = run_mlsec("code-scan", str(clean_project(tmp_path / "c")), "--sarif", str(out), "--vuln-db", "download",
                     "--trivy-cache-dir", str(tmp_path / "empty-cache"), "--trivy-db-repository", UNREACHABLE_DB)
    assert proc.returncode == 1
    inv = json.loads(out.read_text())["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert "vulnerability DB download failed" in inv["toolExecutionNotifications"][0]["message"]["text"]


def _fake_trivy(tmp_path: Path, body: str) -> Path:
    fake = tmp_path / "fake-trivy"
    fake.write_text(f"#!/bin/sh\ncase \"$*\" in *--version*) echo 'Version: 0.76.0'; exit 0;; esac\n{body}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return fake


def test_recorded_vulnerability_report(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    """The dependency-vulnerability path, end to end, on a recorded trivy report (no DB download here)."""
    recorded = FIXTURES / "fs-vulnerabilities.json"
    fake = _fake_trivy(tmp_path, f'case "$*" in *vuln*) cat {recorded}; exit 0;; esac\necho "no vuln scanner" >&2\n'
                                 "exit 3")
    cache = tmp_path / "cache"
    (cache / "db").mkdir(parents=True)
    (cache / "db" / "trivy.db").write_bytes(b"recorded")
    (cache / "db" / "metadata.json").write_text("{}")
    project = tmp_path / "p"
    project.mkdir()
    shutil.copy(FIXTURES / "requirements.txt", project / "requirements.txt")
    out = tmp_path / "vuln.sarif"
    proc = run_mlsec("code-scan", str(project), "--sarif", str(out), "--vuln-db", "auto", "--trivy-cache-dir",
                     str(cache), env={"MLSEC_TRIVY_BIN": str(fake)})
    assert proc.returncode == 0, proc.stderr
    run = json.loads(out.read_text())["runs"][0]
    vulns = {r["ruleId"]: r for r in run["results"] if r["ruleId"].startswith("trivy/vuln/")}
    assert len(vulns) == 5
    torch = vulns["trivy/vuln/CVE-2025-32434"]
    assert torch["level"] == "error"
    assert torch["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
    assert torch["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "requirements.txt"
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["trivy/vuln/CVE-2025-32434"]["properties"]["security-severity"] == "9.8"
    assert run["properties"]["mlsec-result-counts"]["critical"] == 2
    assert not [g for g in _coverage(out) if g["kind"] == "vulnerabilities-not-scanned"]


def test_empty_object_is_not_a_clean_result(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "empty.sarif"
    proc = run_mlsec("code-scan", str(clean_project(tmp_path / "c")), "--sarif", str(out), "--vuln-db", "skip",
                     env={"MLSEC_TRIVY_BIN": str(_fake_trivy(tmp_path, "echo '{}'"))})
    assert proc.returncode == 1
    inv = json.loads(out.read_text())["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert "not a trivy report" in inv["toolExecutionNotifications"][0]["message"]["text"]


def test_hung_trivy_is_stopped_at_the_timeout_with_its_children(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "child.pid"
    fake = _fake_trivy(tmp_path, f"sleep 1000 & echo $! > {pidfile}\nsleep 1000")
    out = tmp_path / "hung.sarif"
    started = time.monotonic()
    proc = run_mlsec("code-scan", str(clean_project(tmp_path / "c")), "--sarif", str(out), "--vuln-db", "skip",
                     "--timeout", "3", env={"MLSEC_TRIVY_BIN": str(fake)})
    took = time.monotonic() - started
    assert proc.returncode == 1 and "trivy timeout" in proc.stderr
    assert took < 6, f"--timeout 3 took {took:.1f}s"
    child = int(pidfile.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split(") ")[1][:1]


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
    # trivy's part is a failed tool; the in-house secret rules still report the key (fail closed, not blind).
    assert [(r["ruleId"], "trivy" in r["properties"]["mlsec-tools"]) for r in run["results"]
            if "secret" in r["ruleId"]] == [("secret/aws-access-key-id", False)]
    assert not [r for r in run["results"] if "trivy" in r["properties"]["mlsec-tools"]]


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


def test_deeply_nested_output_fails_closed(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 200_000 + "]" * 200_000)
    out = tmp_path / "nested.sarif"
    proc = run_mlsec("code-scan", str(clean_project(tmp_path / "c")), "--sarif", str(out), "--vuln-db", "skip",
                     env={"MLSEC_TRIVY_BIN": str(_fake_trivy(tmp_path, f"cat {nested}"))})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert json.loads(out.read_text())["runs"][0]["invocations"][0]["executionSuccessful"] is False
