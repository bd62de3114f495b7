"""code-scan's IaC part with the real checkov beside the real trivy: what it finds, one result where both tools
see the same check, and the scanned tree never configuring it (`.checkov.yaml`, `#checkov:skip=`, `CKV_*`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
MLSEC = str(Path(sys.executable).parent / "mlsec")

TERRAFORM = """resource "aws_s3_bucket" "data" {
  bucket = "ml-data"
  acl    = "public-read"
}

resource "aws_security_group" "open" {
  description = "ssh"
  ingress {
    description = "ssh from anywhere"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_20:the tree says this is fine
  bucket = "ml-logs"
  acl    = "public-read"
}
"""
POD = """apiVersion: v1
kind: Pod
metadata:
  name: trainer
spec:
  containers:
    - name: trainer
      image: trainer:1.0
      securityContext:
        privileged: true
"""
WORKFLOW = """on: pull_request_target
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ github.event.pull_request.title }}"
"""


def _tree(root: Path) -> Path:
    (root / "infra").mkdir(parents=True)
    (root / "infra" / "main.tf").write_text(TERRAFORM)
    (root / "infra" / "broken.tf").write_text('resource "x" {{{ not hcl\n')
    (root / "k8s").mkdir()
    (root / "k8s" / "pod.yaml").write_text(POD)
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    (root / "Dockerfile").write_text("FROM python:3.11-slim\nRUN pip install flask\n")
    (root / "data.json").write_text(json.dumps({"rows": list(range(100))}))  # not IaC: never given to checkov
    (root / ".checkov.yaml").write_text("skip-check:\n  - CKV_AWS_24\n  - CKV_DOCKER_3\nframework:\n  - secrets\n")
    return root


def _scan(tree: Path, out: Path, *extra: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_"))}
    env |= {"CKV_SKIP_CHECK": "CKV_K8S_16", "CKV_FRAMEWORK": "secrets", "BC_API_KEY": "planted-by-the-caller",
            "LOG_LEVEL": "DEBUG"}
    proc = subprocess.run([MLSEC, "code-scan", str(tree), "--sarif", str(out), "--vuln-db", "skip", *extra],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())["runs"][0]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """One tree scanned twice: as shipped, and with --repo-ignore-files."""
    base = tmp_path_factory.mktemp("iac")
    tree = _tree(base / "repo")
    return _scan(tree, base / "default.sarif"), _scan(tree, base / "opted-in.sarif", "--repo-ignore-files")


def _by_rule(run: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for r in run["results"]:
        ids = r.get("properties", {}).get("mlsec-rule-ids", r["ruleId"]).split(", ")
        for rid in ids:
            out[(rid, r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])] = r
    return out


def _checkov(run: dict[str, Any]) -> dict[str, Any]:
    return next(i for i in run["invocations"] if i["properties"]["tool"] == "checkov")


def test_checkov_reports_each_kind_of_iac_and_its_version(scans: tuple[dict[str, Any], dict[str, Any]]) -> None:
    run, _ = scans
    inv = _checkov(run)
    assert inv["executionSuccessful"] is True and inv["properties"]["version"] == "3.3.30"
    found = _by_rule(run)
    for rid, path in [("checkov/CKV_AWS_20", "infra/main.tf"), ("checkov/CKV_AWS_24", "infra/main.tf"),
                      ("checkov/CKV_K8S_16", "k8s/pod.yaml"), ("checkov/CKV_GHA_2", ".github/workflows/ci.yml"),
                      ("checkov/CKV_DOCKER_3", "Dockerfile")]:
        assert (rid, path) in found, (rid, path, sorted(found))
    assert not [k for k in found if k[0].startswith("checkov/") and k[1] == "data.json"]
    assert not [k for k in found if k[0].startswith("checkov/CKV_SECRET")]  # its secrets framework never runs


def test_same_check_from_both_tools_is_one_result_naming_both(scans: tuple[dict[str, Any], dict[str, Any]]) -> None:
    run, _ = scans
    found = _by_rule(run)
    for checkov_id, trivy_id, path in [("checkov/CKV_K8S_16", "trivy/misconfig/KSV-0017", "k8s/pod.yaml"),
                                       ("checkov/CKV_AWS_24", "trivy/misconfig/AWS-0107", "infra/main.tf"),
                                       ("checkov/CKV_DOCKER_3", "trivy/misconfig/DS-0002", "Dockerfile")]:
        one = found[(checkov_id, path)]
        assert found.get((trivy_id, path)) is one, (checkov_id, trivy_id)
        assert one["ruleId"] == trivy_id  # trivy's id kept, so earlier alerts stay
        assert one["properties"]["mlsec-tools"] == "trivy, checkov"
        assert one["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
    # The public-read bucket of main.tf (lines 1-4) and the suppressed one (lines 17-21) stay two results.
    public = [r for r in run["results"] if "checkov/CKV_AWS_20" in r.get("properties", {}).get("mlsec-rule-ids", "")]
    assert len(public) == 2


def test_tree_and_environment_do_not_configure_checkov(scans: tuple[dict[str, Any], dict[str, Any]]) -> None:
    run, _ = scans
    found = _by_rule(run)
    # .checkov.yaml's skip-check and CKV_SKIP_CHECK had no effect; the inline skip is reported, marked.
    assert ("checkov/CKV_AWS_24", "infra/main.tf") in found and ("checkov/CKV_K8S_16", "k8s/pod.yaml") in found
    suppressed = [r for r in run["results"] if "checkov-suppressed-by-repository" in r.get("properties", {})]
    assert [(r["locations"][0]["physicalLocation"]["region"]["startLine"], r["properties"][
        "checkov-suppressed-by-repository"]) for r in suppressed] == [(20, "the tree says this is fine")]
    assert suppressed[0]["properties"]["mlsec-tools"] == "trivy, checkov"  # trivy's AWS-0092 there too
    gaps = [g for g in run["properties"]["mlsec-coverage"]["gaps"] if g["tool"] == "checkov"]
    assert {(g["kind"], g.get("path")) for g in gaps} == {("format-unknown", "infra/broken.tf")}


def test_repository_suppressions_apply_only_when_opted_in_and_are_gaps(
        scans: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, run = scans
    assert not [r for r in run["results"] if "checkov-suppressed-by-repository" in r.get("properties", {})]
    gaps = [g for g in run["properties"]["mlsec-coverage"]["gaps"] if g["tool"] == "checkov"]
    allow = [g for g in gaps if g["kind"] == "allow-rule"]
    assert [(g["path"], "CKV_AWS_20" in g["detail"], "the tree says this is fine" in g["detail"])
            for g in allow] == [("infra/main.tf", True, True)]
    # .checkov.yaml is never applied (it can load Python checks from the tree): its skips still report.
    assert ("checkov/CKV_AWS_24", "infra/main.tf") in _by_rule(run)


def test_a_tree_without_iac_does_not_start_checkov(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "app.py").write_text("print('hi')\n")
    (tmp_path / "r" / "config.yaml").write_text("lr: 0.1\nepochs: 3\n")
    fake = tmp_path / "checkov-must-not-run"
    fake.write_text(f"#!/bin/sh\ntouch {tmp_path}/ran\nexit 2\n")
    fake.chmod(0o755)
    out = tmp_path / "c.sarif"
    proc = run_mlsec("code-scan", str(tmp_path / "r"), "--sarif", str(out), "--vuln-db", "skip",
                     env={"MLSEC_CHECKOV_BIN": str(fake)})
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "ran").exists()
    inv = _checkov(json.loads(out.read_text())["runs"][0])
    assert inv["executionSuccessful"] is True and inv["properties"]["status"] == "skipped"
