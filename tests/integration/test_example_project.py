"""examples/ml-project, the consumer repo the e2e test and the demo run on, keeps its deliberate mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_code_scan_finds_the_secret_and_the_misconfigurations(  # type: ignore[no-untyped-def]
        example_project: Path, tmp_path: Path, run_mlsec) -> None:
    out = tmp_path / "code-scan.sarif"
    proc = run_mlsec("code-scan", str(example_project), "--sarif", str(out), "--vuln-db", "skip")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text(encoding="utf-8"))["runs"][0]["results"]
    by_file: dict[str, set[str]] = {}
    for r in results:
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        by_file.setdefault(uri, set()).add(r["ruleId"])
    assert "trivy/secret/aws-access-key-id" in by_file["train.py"]  # hard-coded key
    assert "trivy/misconfig/DS-0002" in by_file["Dockerfile"]  # runs as root
    assert any(r.startswith("trivy/misconfig/AWS-") for r in by_file["infra/main.tf"])  # public bucket
