"""code-scan offline with the real resolver and the real trivy (issue 13): with `vuln-db: auto` and DB hosts
that certainly do not resolve, ONE trivy process (no download attempt, no version probe) and the same
`vulnerabilities-not-scanned` gap as a failed download; `vuln-db: download` still tries and fails closed; an
uncertain host (an IP literal) still gets its download attempt.

Each run goes through a stand-in (`MLSEC_TRIVY_BIN`) that logs its arguments and then execs the real trivy.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from mlsec_actions.tools import trivy
from mlsec_actions.tools.base import locate
from mlsec_actions.tools.trivy_db import PROXY_VARIABLES
from tests.trees import clean_project

NOWHERE = "no-such-registry.invalid"  # RFC 6761: .invalid never resolves
NOWHERE_DB = f"{NOWHERE}/mlsec/trivy-db:2"
REFUSED_DB = "127.0.0.1:1/mlsec/no-such-db"  # an address: resolving it says nothing about being offline
NO_PROXY = {name: "" for name in PROXY_VARIABLES}  # a proxy of the machine's would make offline uncertain


@pytest.fixture
def logged_trivy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.delenv("MLSEC_TRIVY_BIN", raising=False)
    real = locate(trivy.SPEC)
    assert real is not None, "trivy is not installed; run scripts/test"
    log = tmp_path / "trivy-calls.log"
    wrapper = tmp_path / "trivy-logged"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _invocation(sarif: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(sarif.read_text())["runs"][0]["invocations"][0]  # type: ignore[no-any-return]


def test_the_test_host_does_not_resolve() -> None:
    with pytest.raises(socket.gaierror) as got:
        socket.getaddrinfo(NOWHERE, 443, type=socket.SOCK_STREAM)
    assert got.value.errno == socket.EAI_NONAME


def test_auto_offline_is_one_trivy_process_and_a_gap(tmp_path: Path, run_mlsec, logged_trivy) -> None:  # type: ignore[no-untyped-def]
    wrapper, log = logged_trivy
    out = tmp_path / "offline.sarif"
    proc = run_mlsec("code-scan", str(clean_project(tmp_path / "c")), "--sarif", str(out), "--vuln-db", "auto",
                     "--trivy-cache-dir", str(tmp_path / "empty-cache"), "--trivy-db-repository", NOWHERE_DB,
                     env={"MLSEC_TRIVY_BIN": str(wrapper), **NO_PROXY})
    assert proc.returncode == 0, proc.stderr
    calls = _calls(log)
    assert len(calls) == 1, calls
    assert calls[0].startswith("fs --format json") and "--download-db-only" not in calls[0]
    inv = _invocation(out)
    assert inv["executionSuccessful"] is True
    assert inv["properties"]["version"] not in ("", "unknown")  # from the report, not from a probe
    run = json.loads(out.read_text())["runs"][0]
    gaps = [g for g in run["properties"]["mlsec-coverage"]["gaps"] if g["kind"] == "vulnerabilities-not-scanned"]
    assert [g["tool"] for g in gaps] == ["trivy"]
    assert NOWHERE in gaps[0]["detail"] and "no download tried" in gaps[0]["detail"]
    assert "vulnerabilities NOT scanned" in proc.stderr


def test_download_offline_still_tries_and_fails_closed(tmp_path: Path, run_mlsec, logged_trivy) -> None:  # type: ignore[no-untyped-def]
    wrapper, log = logged_trivy
    out = tmp_path / "dl.sarif"
    proc = run_mlsec("code-scan", str(clean_project(tmp_path / "c")), "--sarif", str(out), "--vuln-db",
                     "download", "--trivy-cache-dir", str(tmp_path / "empty-cache"), "--trivy-db-repository",
                     NOWHERE_DB, env={"MLSEC_TRIVY_BIN": str(wrapper), **NO_PROXY})
    assert proc.returncode == 1
    assert any("--download-db-only" in c for c in _calls(log))
    inv = _invocation(out)
    assert inv["executionSuccessful"] is False
    assert "vulnerability DB download failed" in inv["toolExecutionNotifications"][0]["message"]["text"]


def test_auto_uncertain_host_still_tries_the_download(tmp_path: Path, run_mlsec, logged_trivy) -> None:  # type: ignore[no-untyped-def]
    wrapper, log = logged_trivy
    out = tmp_path / "refused.sarif"
    proc = run_mlsec("code-scan", str(clean_project(tmp_path / "c")), "--sarif", str(out), "--vuln-db", "auto",
                     "--trivy-cache-dir", str(tmp_path / "empty-cache"), "--trivy-db-repository", REFUSED_DB,
                     env={"MLSEC_TRIVY_BIN": str(wrapper), **NO_PROXY})
    assert proc.returncode == 0, proc.stderr
    calls = _calls(log)
    assert "--download-db-only" in calls[0] and calls[-1].startswith("fs --format json"), calls
    assert "127.0.0.1:1" in proc.stderr and "offline" not in proc.stderr
