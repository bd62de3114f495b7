"""The build stage with the real buildah and the loopback registry: the image it says it built is the one in the
layout, the archive and the registry; a failed build fails the stage and the gate; bad push targets are refused
before anything runs; the build context configures nothing but the build."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.integration.image.conftest import Built
from tests.oci_layout import Layout, mlsec, service_context
from tests.oci_registry import Registry

pytestmark = pytest.mark.integration


def test_layout_archive_and_outputs_agree(built_image: Built) -> None:
    layout = built_image.layout
    assert built_image.image["digest"] == layout.manifest_digest()
    assert built_image.image["image-id"] == layout.manifest()["config"]["digest"]
    files = layout.files()
    assert files["built.txt"] == b"built\n"  # the RUN step ran, in the image, not on the host
    assert not Path("/built.txt").exists()
    assert layout.config()["config"]["User"] == "65532"
    assert len(layout.manifest()["layers"]) == 4  # --layers: one per COPY/RUN, so image-scan can map them
    assert "etc/app/aws.env" not in files  # deleted by the last RUN, yet still in the COPY's layer
    assert built_image.archive.stat().st_size > 100_000
    run = json.loads(built_image.sarif.read_text())["runs"][0]
    assert run["properties"]["mlsec-image"]["digest"] == built_image.image["digest"]
    assert all(i["executionSuccessful"] for i in run["invocations"])
    assert {i["properties"]["tool"] for i in run["invocations"]} == {"mlsec-dockerfile", "buildah", "trivy"}
    sbom = json.loads(Path(str(built_image.image["sbom"])).read_text())
    assert sbom["bomFormat"] == "CycloneDX"


def test_push_to_the_loopback_registry_gives_the_same_digest(tmp_path: Path, oci_registry: Registry) -> None:
    context = service_context(tmp_path / "ctx", secret=False)
    repo = f"mlsec-test/push-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out"
    outputs = tmp_path / "gh-output"
    outputs.write_text("")
    env = {"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(outputs)}
    proc = mlsec("build", str(context), "--sarif", str(out / "build.sarif"), "--layout", str(out / "layout"),
                 "--image-json", str(out / "image.json"), "--sbom", str(out / "sbom.json"),
                 "--push", f"http://{oci_registry.host}/{repo}:v1", env=env)
    assert proc.returncode == 0, proc.stderr
    image = json.loads((out / "image.json").read_text())
    request = urllib.request.Request(f"{oci_registry.url}/v2/{repo}/manifests/v1",
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        served = response.headers["Docker-Content-Digest"]
    assert served == image["digest"] == Layout(out / "layout").manifest_digest()
    assert image["pushed"] == [{"reference": f"{oci_registry.host}/{repo}:v1", "digest": served,
                                "pinned": f"{oci_registry.host}/{repo}@{served}"}]
    written = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
    assert written["digest"] == served and written["reference"] == f"{oci_registry.host}/{repo}@{served}"


@pytest.mark.parametrize("target", ["http://registry.example.com/app:1", "http://10.0.0.1:5000/app:1",
                                    "http://127.0.0.1.nip.io/app:1", "not a reference", "http://[::2]:5000/app"])
def test_plain_http_push_to_a_non_loopback_host_is_refused_before_anything_runs(tmp_path: Path, target: str) -> None:
    context = service_context(tmp_path / "ctx", secret=False)
    proc = mlsec("build", str(context), "--sarif", str(tmp_path / "build.sarif"), "--layout",
                 str(tmp_path / "layout"), "--push", target)
    assert proc.returncode == 2, proc.stderr
    assert "--push" in proc.stderr and "\n" not in proc.stderr.strip()
    assert not (tmp_path / "layout").exists() and not (tmp_path / "build.sarif").exists()


def test_failed_build_fails_the_stage_and_the_gate(tmp_path: Path) -> None:
    context = service_context(tmp_path / "ctx", secret=False)
    (context / "Containerfile").write_text('FROM scratch\nCOPY busybox /bin/busybox\n'
                                           'RUN ["/bin/busybox", "false"]\nUSER 1\n')
    run_id = str(uuid.uuid4())
    sarif_dir = tmp_path / "sarif"
    env = {"PATH": "/usr/bin:/bin", "MLSEC_RUN_ID": run_id}
    proc = mlsec("build", str(context), "--sarif", str(sarif_dir / "build.sarif"), "--layout",
                 str(tmp_path / "layout"), "--image-json", str(tmp_path / "image.json"), env=env)
    assert proc.returncode == 1, proc.stderr
    assert "buildah failed: build failed" in proc.stderr
    assert not (tmp_path / "image.json").exists()  # no digest for an image that was not built
    run = json.loads((sarif_dir / "build.sarif").read_text())["runs"][0]
    assert [i["executionSuccessful"] for i in run["invocations"] if i["properties"]["tool"] == "buildah"] == [False]
    policy = tmp_path / "policy.yml"
    policy.write_text("version: 1\nthresholds: []\n")
    gate = mlsec("gate", "--sarif-dir", str(sarif_dir), "--policy", str(policy), "--run-id", run_id,
                 "--expect-stage", "build", "--verdict", str(tmp_path / "verdict.json"),
                 "--summary", str(tmp_path / "summary.md"), "--sarif", str(tmp_path / "gate.sarif"), env=env)
    assert gate.returncode == 3, gate.stderr
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert any(v.get("stage") == "build" for v in verdict["violations"]), verdict


def test_missing_dockerfile_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    proc = mlsec("build", str(tmp_path / "ctx"), "--sarif", str(tmp_path / "b.sarif"), "--file", "../Dockerfile")
    assert proc.returncode == 2 and "inside the build context" in proc.stderr
    proc = mlsec("build", str(tmp_path / "ctx"), "--sarif", str(tmp_path / "b.sarif"))
    assert proc.returncode == 2 and "no Containerfile or Dockerfile" in proc.stderr
