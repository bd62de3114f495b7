"""runtime-probe against real HTTP servers on loopback: the vulnerable app lets probes through, the filtering proxy
in front of it blocks them all, the fixed app shows no effect; a host outside the allowlist gets no packet."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.vulnerable_app import SYSTEM_CANARY, Running, fixed, probe_targets, proxied, vulnerable

pytestmark = pytest.mark.integration
__all__ = ["fixed", "proxied", "vulnerable"]  # session fixtures used by name
MLSEC = str(Path(sys.executable).parent / "mlsec")


def _probe(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    sarif = tmp_path / "runtime-probe.sarif"
    proc = subprocess.run([MLSEC, "runtime-probe", "--sarif", str(sarif), "--oversize-bytes", "200000", *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in proc.stderr
    run: dict[str, Any] = json.loads(sarif.read_text())["runs"][0] if sarif.is_file() else {}
    return proc, run


def _families(run: dict[str, Any]) -> set[str]:
    return {r["ruleId"].split("/", 1)[1] for r in run["results"]}


@pytest.fixture(scope="module")
def against_vulnerable(vulnerable: Running, tmp_path_factory: pytest.TempPathFactory
                       ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    return _probe(tmp_path_factory.mktemp("rp"), *probe_targets(vulnerable.url), "--llm-canary", SYSTEM_CANARY)


def test_the_unprotected_app_lets_every_family_through(against_vulnerable: Any, vulnerable: Running) -> None:
    proc, run = against_vulnerable
    assert proc.returncode == 0, proc.stderr
    assert _families(run) == {"sql-injection", "path-traversal", "command-injection", "reflected-xss",
                              "ssrf-metadata", "oversized-body", "prompt-injection", "jailbreak",
                              "system-prompt-leak"}
    probes = run["properties"]["probes"]
    assert probes["let-through"] == len(run["results"]) and probes["blocked"] == 0
    assert run["properties"]["attack-set"]
    # SSRF payloads were only sent to the target: the app recorded them, nothing fetched them
    assert "http://169.254.169.254/latest/meta-data/" in vulnerable.recorder.fetched
    assert SYSTEM_CANARY not in json.dumps(run)  # the planted secret is never copied into the report


def test_the_filtering_proxy_blocks_every_probe(proxied: Running, tmp_path: Path) -> None:
    proc, run = _probe(tmp_path, *probe_targets(proxied.url), "--llm-canary", SYSTEM_CANARY)
    assert proc.returncode == 0, proc.stderr
    assert run["results"] == []
    probes = run["properties"]["probes"]
    assert probes["blocked"] == probes["sent"] > 80


def test_the_fixed_app_shows_no_effect(fixed: Running, tmp_path: Path) -> None:
    proc, run = _probe(tmp_path, *probe_targets(fixed.url), "--llm-canary", SYSTEM_CANARY)
    assert proc.returncode == 0, proc.stderr
    assert run["results"] == []
    assert run["properties"]["probes"]["no-effect"] > 0


class _Listener:
    """A bare TCP listener on another loopback address that counts the connections it gets."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()


def test_a_target_outside_the_allowlist_is_refused_before_any_packet(tmp_path: Path) -> None:
    other = _Listener("127.0.0.2")
    try:
        url = f"http://127.0.0.2:{other.port}/item?id=1"
        for args in (["--target", url], ["--llm-target", url], ["--target", "http://127.0.0.1:1/", "--target", url]):
            proc, run = _probe(tmp_path, *args, "--allow-host", "127.0.0.1")
            assert proc.returncode == 2, proc.stderr
            assert "not in the allowlist" in proc.stderr and proc.stderr.count("\n") == 1
            assert run == {}  # refused before anything was written, too
        assert other.connections == 0
        # the control: allowed, it is contacted (and, as it answers nothing, the run fails closed)
        proc, _ = _probe(tmp_path, "--target", url, "--allow-host", "127.0.0.2", "--request-timeout", "1")
        assert proc.returncode == 1 and other.connections > 0
    finally:
        other.stop.set()
        other.sock.close()


def test_a_target_that_does_not_answer_fails_closed(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    proc, run = _probe(tmp_path, "--target", f"http://127.0.0.1:{port}/item?id=1")
    assert proc.returncode == 1
    inv = run["invocations"][0]
    assert not inv["executionSuccessful"]
    assert "did not answer" in json.dumps(run["invocations"])


def test_a_spent_time_budget_fails_closed_with_a_gap(vulnerable: Running, tmp_path: Path) -> None:
    proc, run = _probe(tmp_path, "--target", f"{vulnerable.url}/slow?q=1", "--timeout", "0.5")
    assert proc.returncode == 1, proc.stderr
    assert "time budget" in proc.stderr
    assert 0 < run["properties"]["probes"]["sent"] < 10
    gaps = run["properties"]["mlsec-coverage"]["gaps"]
    assert any(g["kind"] == "limit-reached" for g in gaps)


def test_no_target_is_a_recorded_gap_not_a_silent_pass(tmp_path: Path) -> None:
    proc, run = _probe(tmp_path)
    assert proc.returncode == 0
    assert run["results"] == []
    assert [g["kind"] for g in run["properties"]["mlsec-coverage"]["gaps"]] == ["exclusion"]


def test_the_policys_allow_hosts_bound_the_targets(vulnerable: Running, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text("version: 1\nthresholds: []\nruntime-probe:\n  allow-hosts: [127.0.0.2]\n")
    proc, run = _probe(tmp_path, "--target", f"{vulnerable.url}/item?id=1", "--policy", str(policy))
    assert proc.returncode == 2 and "policy's allow-hosts" in proc.stderr and run == {}
    policy.write_text("version: 1\nthresholds: []\nruntime-probe:\n  allow-hosts: [127.0.0.1]\n")
    proc, run = _probe(tmp_path, "--target", f"{vulnerable.url}/item?id=1", "--policy", str(policy),
                       "--skip-family", "oversized-body")
    assert proc.returncode == 0, proc.stderr
    assert run["results"]  # allowed: probed, and the SQL injection let through
    policy.write_text("version: 1\nthresholds: []\nruntime-probe:\n  allow-hosts: [127.0.0.1]\n  extra: 1\n")
    proc, _ = _probe(tmp_path, "--target", f"{vulnerable.url}/item?id=1", "--policy", str(policy))
    assert proc.returncode == 2  # a policy the schema refuses is bad input
