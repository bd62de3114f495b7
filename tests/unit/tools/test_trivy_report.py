"""trivy's report parser on the recorded vulnerability report and on reports that are not trivy's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions.findings import GapKind, Severity
from mlsec_actions.tools import decoys
from mlsec_actions.tools.trivy_report import ReportError, parse_report, validate

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "trivy"


def _recorded() -> dict:  # type: ignore[type-arg]
    return json.loads((FIXTURES / "fs-vulnerabilities.json").read_text())  # type: ignore[no-any-return]


def test_every_dependency_vulnerability_becomes_a_finding() -> None:
    findings, gaps = parse_report(validate(_recorded()))
    assert gaps == []
    by_id = {f.rule.id: f for f in findings}
    assert set(by_id) == {"trivy/vuln/CVE-2020-14343", "trivy/vuln/CVE-2023-32681", "trivy/vuln/CVE-2025-32434",
                          "trivy/vuln/CVE-2024-22195", "trivy/vuln/CVE-2021-34141"}
    torch = by_id["trivy/vuln/CVE-2025-32434"]
    assert torch.severity is Severity.CRITICAL and torch.score == 9.8
    assert torch.location.path == "requirements.txt" and torch.location.start_line == 3
    assert torch.location.logical == "torch@1.13.1"
    assert dict(torch.properties) == {"package": "torch", "installed": "1.13.1", "fixed": "2.6.0"}
    assert "Upgrade torch to 2.6.0" in torch.message
    assert torch.rule.help_uri == "https://avd.aquasec.com/nvd/cve-2025-32434"
    numpy = by_id["trivy/vuln/CVE-2021-34141"]
    assert numpy.location.start_line == 5 and "No fixed version of numpy" in numpy.message
    assert by_id["trivy/vuln/CVE-2023-32681"].severity is Severity.MEDIUM


@pytest.mark.parametrize("report", [{}, [], {"SchemaVersion": 1, "ArtifactType": "filesystem"},
                                    {"SchemaVersion": 2}, {"SchemaVersion": 2, "ArtifactType": "filesystem",
                                                           "Results": {"Target": "x"}},
                                    {"SchemaVersion": 2, "ArtifactType": "filesystem", "Results": [{"Class": "x"}]},
                                    {"SchemaVersion": 2, "ArtifactType": "filesystem",
                                     "Results": [{"Target": "a", "Vulnerabilities": ["CVE-1"]}]}],
                         ids=["empty", "list", "schema1", "no-type", "results-dict", "no-target", "vuln-str"])
def test_what_is_not_a_trivy_report_is_refused(report: object) -> None:
    with pytest.raises(ReportError):
        validate(report)


def test_clean_report_without_results_is_valid() -> None:
    assert parse_report(validate({"SchemaVersion": 2, "ArtifactType": "filesystem", "Trivy": {}})) == ([], [])


def _secret_report(target: str, offset: int, length: int) -> dict:  # type: ignore[type-arg]
    return {"SchemaVersion": 2, "ArtifactType": "filesystem", "Results": [{"Target": target, "Secrets": [
        {"RuleID": "aws-access-key-id", "Title": "AWS Access Key ID", "Severity": "CRITICAL", "StartLine": 1,
         "EndLine": 1, "Offset": offset, "Match": 'k = "' + "*" * length + '"'}]}]}


@pytest.mark.parametrize(("value", "dropped"), [
    ("AKIA" + "IOSFODNN7EXAMPLE", True), ("AKIA" + "X" * 16, True), ("<your-aws-key-here>", True),
    ("${{ secrets.AWS_KEY }}", True), ("AKIA" + "QWERTYUIOPASDFGH", False), ("AKIA" + "2E0A8F3B244C9986", False)])
def test_placeholders_are_dropped_as_gaps_real_values_kept(tmp_path: Path, value: str, dropped: bool) -> None:
    (tmp_path / "cfg.py").write_text(f'k = "{value}"\n')
    findings, gaps = parse_report(_secret_report("cfg.py", 5, len(value)), tmp_path)
    assert (findings == []) is dropped
    assert (len(gaps) == 1) is dropped
    if dropped:
        assert gaps[0].kind is GapKind.ALLOW_RULE and gaps[0].path == "cfg.py"
        assert "placeholder" in gaps[0].detail and value not in gaps[0].detail


def test_placeholder_value_is_read_only_from_a_regular_file_inside_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text('k = "AKIA' + 'IOSFODNN7EXAMPLE"\n')
    root = tmp_path / "root"
    root.mkdir()
    (root / "cfg.py").symlink_to(outside)
    assert decoys.placeholder(root, "cfg.py", _secret_report("cfg.py", 5, 20)["Results"][0]["Secrets"][0]) is None
    findings, _ = parse_report(_secret_report("cfg.py", 5, 20), root)
    assert len(findings) == 1  # not verified as a placeholder: reported


def test_misconfiguration_snippets_are_redacted() -> None:
    token = "ghp_" + "Zq3Xw9Lm2Np8Rt4Vy6Bc1Df5Gh7Jk0MnPqRs"
    report = {"SchemaVersion": 2, "ArtifactType": "filesystem", "Results": [{"Target": "Dockerfile",
              "Misconfigurations": [{"AVDID": "DS-0031", "Title": "Secrets passed via build-args or envs",
                                     "Message": f"Possible exposure of secret env GITHUB_TOKEN={token}",
                                     "Severity": "CRITICAL", "Status": "FAIL",
                                     "CauseMetadata": {"StartLine": 2, "EndLine": 2, "Code": {"Lines": [
                                         {"Number": 2, "Content": f"ENV GITHUB_TOKEN={token}", "IsCause": True}]}}}]}]}
    findings, _ = parse_report(report)
    text = json.dumps([(f.message, f.location.snippet) for f in findings])
    assert "ENV GITHUB_TOKEN=***" in text
    for i in range(len(token) - 11):
        assert token[i:i + 12] not in text
