"""infra-scan's TLS verdicts on probe results: version floor, weak suites, certificate window, self-signed,
names. Certificates are built here (tests/tls_services.py); the probing itself is in the integration tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from mlsec_actions.analyzers import tls_config as tc
from mlsec_actions.findings import Severity
from tests.tls_services import make_certificate

NOW = dt.datetime.now(dt.UTC)


def _der(cert: object) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("certs")
    _, _, ca, ca_key = make_certificate(folder, "ca", host="127.0.0.1", days=(-1, 365), issuer=None)
    issued = make_certificate(folder, "issued", host="127.0.0.1", days=(-1, 100), issuer=(ca, ca_key))[2]
    soon = make_certificate(folder, "soon", host="127.0.0.1", days=(-1, 10), issuer=(ca, ca_key))[2]
    own = make_certificate(folder, "own", host="127.0.0.1", days=(-1, 100), issuer=None)[2]
    future = make_certificate(folder, "future", host="127.0.0.1", days=(2, 100), issuer=(ca, ca_key))[2]
    return {"issued": _der(issued), "soon": _der(soon), "own": _der(own), "future": _der(future)}


def _rules(probe: tc.Probe, min_version: str = "TLSv1.2", days: int = 30) -> dict[str, Severity]:
    found, gaps = tc.judge(probe, min_version, days, "p.yml", now=NOW)
    assert gaps == []
    return {f.rule.id: f.severity for f in found}


@pytest.mark.parametrize(("versions", "floor", "expected"), [
    (("TLSv1.2", "TLSv1.3"), "TLSv1.2", {}),
    (("TLSv1.3",), "TLSv1.3", {}),
    (("TLSv1.2", "TLSv1.3"), "TLSv1.3", {"tls/old-protocol": Severity.MEDIUM}),
    (("TLSv1", "TLSv1.2"), "TLSv1.2", {"tls/old-protocol": Severity.HIGH}),
    (("TLSv1.1",), "TLSv1.2", {"tls/old-protocol": Severity.HIGH}),
    (("TLSv1", "TLSv1.1"), "TLSv1", {}),
    (("TLSv1", "TLSv1.1"), "TLSv1.1", {"tls/old-protocol": Severity.HIGH}),
])
def test_versions_below_the_floor(versions: tuple[str, ...], floor: str, expected: dict[str, Severity]) -> None:
    assert _rules(tc.Probe("h", 1, versions), floor) == expected


def test_each_weak_suite_is_a_finding_at_its_severity() -> None:
    probe = tc.Probe("h", 1, ("TLSv1.2",), weak=(("NULL-SHA", "no encryption", Severity.HIGH),))
    assert _rules(probe) == {"tls/weak-cipher": Severity.HIGH}
    found, _ = tc.judge(tc.Probe("h", 1, ("TLSv1.2",), weak=(("AES128-SHA", "x", Severity.MEDIUM),) * 2), "TLSv1.2",
                        30, "p.yml", now=NOW)
    assert [f.severity for f in found] == [Severity.MEDIUM, Severity.MEDIUM] and "AES128-SHA" in found[0].message


@pytest.mark.parametrize(("name", "verify_error", "days", "expected"), [
    ("issued", None, 30, {}),
    ("issued", None, 101, {"tls/cert-expiring": Severity.MEDIUM}),
    ("soon", None, 30, {"tls/cert-expiring": Severity.MEDIUM}),
    ("soon", None, 9, {}),
    ("future", None, 30, {"tls/cert-expired": Severity.HIGH}),
    ("own", None, 30, {"tls/self-signed": Severity.MEDIUM}),
    ("own", "self-signed certificate", 30, {"tls/self-signed": Severity.MEDIUM}),
    ("issued", "unable to get local issuer certificate", 30, {"tls/untrusted": Severity.MEDIUM}),
])
def test_certificate_checks(certs: dict[str, bytes], name: str, verify_error: str | None, days: int,
                            expected: dict[str, Severity]) -> None:
    probe = tc.Probe("127.0.0.1", 443, ("TLSv1.3",), certificate=certs[name], verify_error=verify_error)
    assert _rules(probe, days=days) == expected


def test_expired_is_judged_against_now(certs: dict[str, bytes]) -> None:
    probe = tc.Probe("127.0.0.1", 443, ("TLSv1.3",), certificate=certs["issued"])
    later = NOW + dt.timedelta(days=101)
    found, _ = tc.judge(probe, "TLSv1.2", 30, "p.yml", now=later)
    assert [f.rule.id for f in found] == ["tls/cert-expired"]


def test_the_name_must_be_in_the_certificate(certs: dict[str, bytes]) -> None:
    probe = tc.Probe("127.0.0.2", 443, ("TLSv1.3",), certificate=certs["issued"])
    assert _rules(probe) == {"tls/hostname-mismatch": Severity.MEDIUM}


def test_an_unreadable_certificate_is_a_gap_not_a_pass() -> None:
    found, gaps = tc.judge(tc.Probe("h", 1, ("TLSv1.3",), certificate=b"\x30\x03junk"), "TLSv1.2", 30, "p.yml")
    assert found == [] and len(gaps) == 1 and "not readable" in gaps[0].detail


@pytest.mark.parametrize(("pattern", "host", "match"), [
    ("app.example", "app.example", True), ("*.example", "app.example", True), ("*.example", "a.b.example", False),
    ("*.example", "example", False), ("*.example", ".example", False), ("app.example", "api.example", False),
])
def test_dns_names_follow_rfc_6125(pattern: str, host: str, match: bool) -> None:
    assert tc._dns_match(pattern, host) is match


def test_a_port_that_is_not_listening_is_a_gap(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    probe = tc.probe("127.0.0.1", port, 2)
    assert probe.versions == () and probe.gaps and "not checked" in probe.gaps[0].detail
