"""infra-scan with the real nmap against listeners on 127.0.0.0/8 (tests/tls_services.py): the allowlist judges
each open port, and a host the policy does not list is never contacted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions import cli
from tests.tls_services import Services  # its fixtures are registered in tests/integration/conftest.py

pytestmark = pytest.mark.integration


def policy_file(folder: Path, body: str) -> Path:
    path = folder / "policy.yml"
    path.write_text("version: 1\nthresholds: []\ninfra-scan:\n" + body)
    return path


def run(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    sarif = tmp_path / "out" / "infra-scan.sarif"
    code = cli.main(["infra-scan", str(tmp_path), "--sarif", str(sarif), *args])
    return code, (json.loads(sarif.read_text())["runs"][0] if sarif.is_file() else {})


def results(run_doc: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"])
                  for r in run_doc["results"])


def test_open_port_outside_the_allowlist_is_a_finding(tmp_path: Path, plain_listeners: Services) -> None:
    host, ports = plain_listeners.host, plain_listeners.ports
    policy = policy_file(tmp_path, f"  hosts:\n    - host: {host}\n      allow:\n        - ports: {ports['allowed']}\n")
    code, doc = run(tmp_path, "--policy", str(policy), "--target", f"{host}:{ports['allowed']},{ports['extra']},1")
    assert code == 0
    assert results(doc) == [("nmap/port-not-allowed", f"{host}:{ports['extra']}/tcp")]
    nmap_runs = [i for i in doc["invocations"] if i["properties"]["tool"] == "nmap"]
    assert len(nmap_runs) == 1 and nmap_runs[0]["executionSuccessful"]


def test_every_open_port_allowed_is_clean(tmp_path: Path, plain_listeners: Services) -> None:
    host, ports = plain_listeners.host, plain_listeners.ports
    low, high = sorted(ports.values())
    policy = policy_file(tmp_path, f"  hosts:\n    - host: {host}\n      allow:\n        - ports: \"{low}-{high}\"\n")
    code, doc = run(tmp_path, "--policy", str(policy), "--target", f"{host}:{low},{high}")
    assert (code, results(doc)) == (0, [])


def test_a_target_missing_from_the_policy_is_refused_before_nmap_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    canary = tmp_path / "nmap-started"
    fake = tmp_path / "fake-nmap"
    fake.write_text(f"#!/bin/sh\ntouch {canary}\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MLSEC_NMAP_BIN", str(fake))
    policy = policy_file(tmp_path, "  hosts:\n    - host: 127.0.0.21\n      allow: []\n")
    for target in ("127.0.0.23", "127.0.0.21,127.0.0.23", "127.0.0.0/24", "-iL/etc/hosts", "127.0.0.21:0"):
        code, _ = run(tmp_path, "--policy", str(policy), "--target", "127.0.0.21", "--target", target)
        assert code == 2, target
        err = capsys.readouterr().err
        assert err.startswith("mlsec: error: ") and err.count("\n") == 1, err
    assert not canary.exists()
    assert not (tmp_path / "out" / "infra-scan.sarif").exists()


def test_without_targets_nmap_is_skipped_and_said(tmp_path: Path) -> None:
    code, doc = run(tmp_path)
    assert code == 0
    (nmap_run,) = [i for i in doc["invocations"] if i["properties"]["tool"] == "nmap"]
    assert nmap_run["executionSuccessful"]
    assert "no --target" in json.dumps(nmap_run)
    # Scanning nothing is a coverage gap (a strict policy fails on it), as in dast and runtime-probe.
    assert doc["properties"]["mlsec-coverage"]["gaps"] == [
        {"tool": "nmap", "kind": "exclusion", "detail": "no --target given: no host was scanned"}]


def _tls_policy(tmp_path: Path, tls: Services, extra: str = "") -> Path:
    low, high = sorted(tls.ports.values())
    return policy_file(tmp_path, f"  hosts:\n    - host: {tls.host}\n      allow:\n        - ports: \"{low},{high}\"\n"
                                 f"          tls: true\n{extra}")


def test_tls_1_0_expired_self_signed_endpoint_is_flagged_and_the_modern_one_is_clean(
        tmp_path: Path, tls_services: Services) -> None:
    modern, legacy = tls_services.ports["modern"], tls_services.ports["legacy"]
    policy = _tls_policy(tmp_path, tls_services)
    code, doc = run(tmp_path, "--policy", str(policy), "--tls-ca", str(tls_services.ca),
                    "--target", f"{tls_services.host}:{modern},{legacy}")
    assert code == 0
    at = f"{tls_services.host}:{legacy}/tcp"
    assert results(doc) == sorted((r, at) for r in ("tls/old-protocol", "tls/weak-cipher", "tls/cert-expired",
                                                    "tls/self-signed", "tls/hostname-mismatch"))
    old = next(r for r in doc["results"] if r["ruleId"] == "tls/old-protocol")
    assert old["properties"]["versions"] == "TLSv1" and old["level"] == "error"
    gaps = doc["properties"]["mlsec-coverage"]["gaps"]
    assert any(g["tool"] == "tls" and "not tested" in g["detail"] for g in gaps), gaps


def test_tls_chain_is_checked_against_the_trust_store(tmp_path: Path, tls_services: Services) -> None:
    modern = tls_services.ports["modern"]
    policy = _tls_policy(tmp_path, tls_services, "  tls:\n    min-version: TLSv1.3\n")
    code, doc = run(tmp_path, "--policy", str(policy), "--target", f"{tls_services.host}:{modern}")
    at = f"{tls_services.host}:{modern}/tcp"
    # Without --tls-ca the test CA is unknown; TLS 1.2 is below this policy's minimum (medium, not high).
    assert (code, results(doc)) == (0, [("tls/old-protocol", at), ("tls/untrusted", at)])
    old = next(r for r in doc["results"] if r["ruleId"] == "tls/old-protocol")
    assert old["level"] == "warning" and old["properties"]["versions"] == "TLSv1.2,TLSv1.3"


PROFILE = "xccdf_org.ssgproject.content_profile_anssi_np_nt28_minimal"
RULE = "xccdf_org.ssgproject.content_rule_"


def _debian11_root(tmp_path: Path) -> Path:
    """A root folder OpenSCAP evaluates as Debian 11 (the SSG content ssg-debian ships): a readable shadow file."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="11"\n')
    (root / "etc" / "debian_version").write_text("11.7\n")
    for name, line in (("passwd", "root:x:0:0::/root:/bin/sh"), ("shadow", "root:*:19000:0:99999:7:::")):
        (root / "etc" / name).write_text(line + "\n")
        (root / "etc" / name).chmod(0o644)
    return root


def test_openscap_failed_rules_are_findings_with_their_rule_id(tmp_path: Path) -> None:
    root = _debian11_root(tmp_path)
    policy = policy_file(tmp_path, f"  openscap:\n    profile: {PROFILE}\n"
                                   f"    rules: [{RULE}file_permissions_etc_shadow,\n"
                                   f"            {RULE}file_permissions_etc_passwd]\n")
    code, doc = run(tmp_path, "--policy", str(policy), "--oscap-root", str(root))
    assert code == 0
    assert [(r["ruleId"], r["level"]) for r in doc["results"]] == [("openscap/file_permissions_etc_shadow", "warning")]
    assert doc["results"][0]["properties"]["xccdf-rule"] == f"{RULE}file_permissions_etc_shadow"
    assert "Verify Permissions on shadow File" in doc["results"][0]["message"]["text"]
    (scap,) = [i for i in doc["invocations"] if i["properties"]["tool"] == "openscap"]
    # The only gap: no --target, so no host was scanned (OpenSCAP itself decided every rule).
    assert scap["executionSuccessful"] and [g["tool"] for g in doc["properties"]["mlsec-coverage"]["gaps"]] == ["nmap"]
    (root / "etc" / "shadow").chmod(0o600)  # fixed: the same evaluation is clean
    code, doc = run(tmp_path, "--policy", str(policy), "--oscap-root", str(root))
    assert (code, doc["results"]) == (0, [])


def test_openscap_content_for_another_os_is_a_gap_and_no_content_fails(tmp_path: Path) -> None:
    root = _debian11_root(tmp_path)
    (root / "etc" / "debian_version").write_text("12.1\n")  # the debian11 content's platform check fails
    policy = policy_file(tmp_path, f"  openscap:\n    profile: {PROFILE}\n"
                                   f"    rules: [{RULE}file_permissions_etc_shadow]\n")
    code, doc = run(tmp_path, "--policy", str(policy), "--oscap-root", str(root))
    assert (code, doc["results"]) == (0, [])
    gaps = doc["properties"]["mlsec-coverage"]["gaps"]
    assert any(g["tool"] == "openscap" and "no rule applies" in g["detail"] for g in gaps), gaps
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')  # no ssg-debian12 content installed
    code, doc = run(tmp_path, "--policy", str(policy), "--oscap-root", str(root))
    assert code == 1
    (scap,) = [i for i in doc["invocations"] if i["properties"]["tool"] == "openscap"]
    assert not scap["executionSuccessful"] and "debian12" in json.dumps(scap)


def test_openscap_needs_a_profile_and_a_root_folder(tmp_path: Path) -> None:
    assert run(tmp_path, "--oscap-root", str(_debian11_root(tmp_path)))[0] == 2
    assert run(tmp_path, "--oscap-root", str(tmp_path / "nowhere"), "--oscap-profile", PROFILE)[0] == 2
