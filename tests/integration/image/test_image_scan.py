"""image-scan with the real trivy on the session's built image (OCI layout, docker-archive, the loopback
registry): the key baked into a layer is found and reported on the Dockerfile line that made the layer;
imports land in the same SARIF; registry targets outside loopback over plain HTTP are refused."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.image.conftest import Built
from tests.oci_layout import mlsec
from tests.oci_registry import Registry

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "image"


def _results(sarif: Path) -> list[dict[str, Any]]:
    return list(json.loads(sarif.read_text())["runs"][0]["results"])


def _where(result: dict[str, Any]) -> tuple[str, int | None]:
    phys = result["locations"][0]["physicalLocation"]
    return phys["artifactLocation"]["uri"], phys.get("region", {}).get("startLine")


def test_secret_in_a_layer_is_on_the_copy_line(built_image: Built, tmp_path: Path) -> None:
    sarif = tmp_path / "image-scan.sarif"
    proc = mlsec("image-scan", str(built_image.layout.root), str(built_image.archive), "--dockerfile",
                 str(built_image.context / "Containerfile"), "--vuln-db", "skip", "--sarif", str(sarif),
                 "--source-root", str(built_image.context.parent), "--import", f"grype:{FIXTURES / 'grype.json'}",
                 "--import", f"snyk:{FIXTURES / 'snyk.json'}")
    assert proc.returncode == 0, proc.stderr
    results = _results(sarif)
    secrets = [r for r in results if r["ruleId"] == "trivy/secret/aws-access-key-id"]
    assert len(secrets) == 2  # once from the layout, once from the archive
    # COPY config/ /etc/app/ put it there; the RUN that deletes it later does not take it out of the image.
    assert {_where(r) for r in secrets} == {("ctx/Containerfile", 4)}
    assert secrets[0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "/etc/app/aws.env"
    assert "AKIA" not in sarif.read_text()  # the value never reaches SARIF
    by_rule = {r["ruleId"]: r for r in results}
    assert _where(by_rule["snyk/CVE-2023-5363"]) == ("ctx/Containerfile", 4)  # its dockerfileInstruction
    assert "grype/CVE-2023-5363" in by_rule
    gaps = json.loads(sarif.read_text())["runs"][0]["properties"]["mlsec-coverage"]["gaps"]
    assert {g["kind"] for g in gaps} == {"vulnerabilities-not-scanned"}


def test_registry_image_over_loopback(built_image: Built, oci_registry: Registry, tmp_path: Path) -> None:
    repo = f"mlsec-test/scan-{uuid.uuid4().hex[:8]}"
    copy = subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{built_image.layout.root}",
                           f"docker://{oci_registry.host}/{repo}:1"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert copy.returncode == 0, copy.stderr
    sarif = tmp_path / "image-scan.sarif"
    proc = mlsec("image-scan", "--image", f"http://{oci_registry.host}/{repo}:1", "--vuln-db", "skip",
                 "--sarif", str(sarif), "--source-root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert {r["ruleId"] for r in _results(sarif)} >= {"trivy/secret/aws-access-key-id"}
    assert {_where(r)[0] for r in _results(sarif)} == {"container-image"}


@pytest.mark.parametrize("ref", ["http://registry.example.com/app:1", "http://192.168.1.5:5000/app:1", "no ref"])
def test_plain_http_to_a_non_loopback_registry_is_refused(tmp_path: Path, ref: str) -> None:
    proc = mlsec("image-scan", "--image", ref, "--sarif", str(tmp_path / "s.sarif"))
    assert proc.returncode == 2 and "--image" in proc.stderr
    assert not (tmp_path / "s.sarif").exists()


def test_a_broken_import_is_bad_input(tmp_path: Path) -> None:
    report = tmp_path / "grype.json"
    report.write_text('{"matches": "nope"}')
    proc = mlsec("image-scan", "--import", f"grype:{report}", "--sarif", str(tmp_path / "s.sarif"))
    assert proc.returncode == 2 and "grype.json" in proc.stderr


def test_recorded_vulnerability_report_lands_on_the_line_of_its_layer(tmp_path: Path) -> None:
    # No vulnerability DB can be downloaded here: trivy's report with a vulnerability is the recorded one
    # (tests/fixtures/image/trivy-vulns.json), printed by a stand-in through MLSEC_TRIVY_BIN; the rest is real.
    fake = tmp_path / "trivy"
    fake.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Version: 0.76.0"; exit 0; fi\n'
                    f"cat '{FIXTURES / 'trivy-vulns.json'}'\n")
    fake.chmod(0o755)
    layout = tmp_path / "layout"
    layout.mkdir()
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    dockerfile = tmp_path / "Containerfile"
    dockerfile.write_text('FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "true"]\n'
                          'COPY config/ /etc/app/\nUSER 65532\nENTRYPOINT ["/bin/busybox"]\n')
    sarif = tmp_path / "image-scan.sarif"
    proc = mlsec("image-scan", str(layout), "--dockerfile", str(dockerfile), "--vuln-db", "skip", "--sarif",
                 str(sarif), "--source-root", str(tmp_path),
                 env={"PATH": "/usr/bin:/bin", "MLSEC_TRIVY_BIN": str(fake)})
    assert proc.returncode == 0, proc.stderr
    [result] = _results(sarif)
    assert result["ruleId"] == "trivy/vuln/CVE-2022-48174"
    assert _where(result) == ("Containerfile", 2)
    assert result["properties"]["security-severity"] == "9.8"
