"""`known_offline`: the DB download is skipped only when every DB host certainly does not resolve (issue 13).

The resolver is replaced here (`socket.getaddrinfo` as trivy_db sees it) so each answer can be given on
purpose; tests/integration/test_code_scan_offline.py runs the real resolver and the real trivy.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions.findings import GapKind
from mlsec_actions.tools import trivy, trivy_db


@pytest.mark.parametrize(("ref", "host"), [
    ("ghcr.io/aquasecurity/trivy-db:2", "ghcr.io"),
    ("mirror.gcr.io/aquasec/trivy-db:2", "mirror.gcr.io"),
    ("127.0.0.1:5000/mlsec/db", "127.0.0.1"),
    ("registry.example:443/db", "registry.example"),
    ("[::1]:5000/db", "::1"),
    ("localhost/db", "localhost"),
    ("aquasec/trivy-db", trivy_db.DOCKER_HUB),    # no registry part: Docker Hub
    ("trivy-db", trivy_db.DOCKER_HUB),
    ("  ghcr.io/x  ", "ghcr.io"),
])
def test_registry_host(ref: str, host: str) -> None:
    assert trivy_db.registry_host(ref) == host


def test_hosts_default_and_list() -> None:
    assert trivy_db.hosts(None) == ("mirror.gcr.io", "ghcr.io")
    assert trivy_db.hosts("") == ("mirror.gcr.io", "ghcr.io")
    assert trivy_db.hosts("a.example/db:2, b.example/db:2,a.example/other") == ("a.example", "b.example")


def _resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any]) -> list[str]:
    """getaddrinfo answering per host: an exception to raise, "hang" to block, anything else to return."""
    asked: list[str] = []
    release = threading.Event()

    def fake(host: str, *args: object, **kwargs: object) -> object:
        asked.append(host)
        got = answers[host]
        if got == "hang":
            release.wait(10)
            raise socket.gaierror(socket.EAI_NONAME, "too late")
        if isinstance(got, BaseException):
            raise got
        return got

    monkeypatch.setattr(trivy_db.socket, "getaddrinfo", fake)
    monkeypatch.setattr(trivy_db, "PROXY_VARIABLES", ())  # the machine's own proxy settings play no part here
    return asked


NONAME = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
AGAIN = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
ADDRESS = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", 443))]


def test_every_host_no_such_name_is_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _resolver(monkeypatch, {"mirror.gcr.io": NONAME, "ghcr.io": NONAME})
    assert trivy_db.known_offline(None) is True
    assert sorted(asked) == ["ghcr.io", "mirror.gcr.io"]


def test_one_host_resolving_is_not_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolver(monkeypatch, {"mirror.gcr.io": NONAME, "ghcr.io": ADDRESS})
    assert trivy_db.known_offline(None) is False


@pytest.mark.parametrize("error", [
    AGAIN,                                                    # a resolver that could not answer now
    socket.gaierror(socket.EAI_FAIL, "Non-recoverable failure in name resolution"),
    OSError("resolver crashed"),
    UnicodeError("label too long"),
], ids=["again", "fail", "oserror", "unicode"])
def test_uncertain_answers_are_not_offline(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    _resolver(monkeypatch, {"mirror.gcr.io": NONAME, "ghcr.io": error})
    assert trivy_db.known_offline(None) is False


def test_slow_resolver_is_not_offline_and_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolver(monkeypatch, {"mirror.gcr.io": "hang", "ghcr.io": "hang"})
    start = time.monotonic()
    assert trivy_db.known_offline(None, timeout=0.2) is False
    assert time.monotonic() - start < 2  # the two lookups share one timeout


def test_db_repository_hosts_are_the_ones_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _resolver(monkeypatch, {"db.internal.example": NONAME})
    assert trivy_db.known_offline("db.internal.example:5000/trivy-db:2") is True
    assert asked == ["db.internal.example"]


def test_a_proxy_makes_it_uncertain(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_name(*args: object, **kwargs: object) -> object:
        raise NONAME

    monkeypatch.setattr(trivy_db.socket, "getaddrinfo", no_such_name)
    assert trivy_db.known_offline(None, environ={}) is True
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "ALL_PROXY"):
        assert trivy_db.known_offline(None, environ={name: "http://proxy.example:3128"}) is False, name
    assert trivy_db.known_offline(None, environ={"HTTPS_PROXY": ""}) is True


def _prepare(options: trivy.TrivyOptions, tmp_path: Path) -> tuple[bool, Any, Any]:
    config, _ = trivy._config_args(tmp_path, options)
    return trivy._prepare_db(options, tmp_path / "cache", [*config, "--cache-dir", str(tmp_path / "cache")],
                             time.monotonic() + 60)


def test_prepare_db_offline_is_the_download_gap_without_a_process(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    _resolver(monkeypatch, {"mirror.gcr.io": NONAME, "ghcr.io": NONAME})
    monkeypatch.setenv("MLSEC_TRIVY_BIN", str(tmp_path / "no-trivy-here"))  # any process start would be MISSING
    options = trivy.TrivyOptions(vuln_db="auto", cache_dir=tmp_path / "cache")
    scan_vulns, failed, gap = _prepare(options, tmp_path)
    assert (scan_vulns, failed) == (False, None)
    assert gap is not None and gap.kind is GapKind.VULNERABILITIES_NOT_SCANNED
    assert "NOT scanned" in gap.detail and "mirror.gcr.io, ghcr.io" in gap.detail and "no download" in gap.detail


def test_prepare_db_download_still_tries_and_fails_closed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _resolver(monkeypatch, {"mirror.gcr.io": NONAME, "ghcr.io": NONAME})
    monkeypatch.setenv("MLSEC_TRIVY_BIN", str(tmp_path / "no-trivy-here"))
    options = trivy.TrivyOptions(vuln_db="download", cache_dir=tmp_path / "cache")
    scan_vulns, failed, gap = _prepare(options, tmp_path)
    assert scan_vulns is False and gap is None
    assert failed is not None and "vulnerability DB download failed" in (failed.message or "")
    assert "not found" in (failed.message or "")  # it did try to start trivy


def test_prepare_db_uncertain_tries_the_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _resolver(monkeypatch, {"mirror.gcr.io": AGAIN, "ghcr.io": NONAME})
    monkeypatch.setenv("MLSEC_TRIVY_BIN", str(tmp_path / "no-trivy-here"))
    options = trivy.TrivyOptions(vuln_db="auto", cache_dir=tmp_path / "cache")
    scan_vulns, failed, gap = _prepare(options, tmp_path)
    assert (scan_vulns, failed) == (False, None)
    assert gap is not None and "not found" in gap.detail and "offline" not in gap.detail
