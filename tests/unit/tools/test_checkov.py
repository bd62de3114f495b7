"""checkov's adapter without checkov: which files it is given, how they are linked, what its command and
environment carry, and how its report is read (the real checkov runs in tests/integration/test_code_scan_iac.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from mlsec_actions.findings import GapKind, Location, Rule, Severity, ToolStatus
from mlsec_actions.stages.code_scan_merge import merge
from mlsec_actions.tools import checkov, checkov_files


@pytest.mark.parametrize(("rel", "text", "expected"), [
    ("Dockerfile", "", True), ("docker/Dockerfile.gpu", "", True), ("app.dockerfile", "", True),
    ("Containerfile", "", True), ("infra/main.tf", "", True), ("infra/x.tf.json", "{}", True),
    ("k8s/pod.yaml", "apiVersion: v1\nkind: Pod\n", True),
    ("k8s/pod.json", '{"apiVersion": "v1", "kind": "Pod"}', True),
    ("cfn.yaml", "AWSTemplateFormatVersion: '2010-09-09'\n", True), ("cfn.template", "Resources:\n  B: {}\n", True),
    (".github/workflows/ci.yml", "on: push\n", True), (".gitlab-ci.yml", "test: {}\n", True),
    ("api.yaml", "openapi: 3.0.0\n", True), ("site.yml", "- hosts: all\n  tasks:\n    - ping:\n", True),
    ("config.yaml", "lr: 0.1\nkind: of\n", False), ("data.json", '{"rows": [1, 2]}', False),
    ("docs/Dockerfile.md", "", True), ("README.md", "apiVersion: v1\nkind: Pod\n", False),
    ("workflows/ci.yml", "on: push\n", False),
])
def test_what_checkov_understands(tmp_path: Path, rel: str, text: str, expected: bool) -> None:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    assert checkov_files.understood(rel, path.name, path) is expected


def test_iac_files_skip_links_config_charts_and_large_files(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "chart" / "templates").mkdir(parents=True)
    (root / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: x\n")
    (root / "main.tf").write_text("")
    (root / ".checkov.yaml").write_text("skip-check: [CKV_AWS_20]\n")
    (tmp_path / "outside.tf").write_text("")
    (root / "link.tf").symlink_to(tmp_path / "outside.tf")
    (root / "big.tf").write_bytes(b" " * (checkov_files.MAX_FILE_BYTES + 1))
    gaps: list = []  # type: ignore[type-arg]
    files = checkov_files.iac_files(root, gaps)
    assert [f.rel for f in files] == ["main.tf"]
    assert {(g.kind, g.path) for g in gaps} == {(GapKind.FORMAT_UNKNOWN, "chart/Chart.yaml"),
                                                (GapKind.FILE_SKIPPED, "big.tf")}


def test_link_farm_keeps_layout_and_makes_hostile_names_safe(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    odd = os.fsencode(root / "a") + b"/m\xffain.tf"
    os.close(os.open(odd, os.O_CREAT | os.O_WRONLY, 0o644))
    (root / "a" / "m\ufffdain.tf").write_text("")  # the same text once the bad byte is replaced
    (root / "a" / "new\nline.tf").write_text("")
    files = checkov_files.iac_files(root, [])
    names = checkov_files.link_farm(files, tmp_path / "farm")
    assert sorted(names) == ["a/1~m_ain.tf", "a/m_ain.tf", "a/new_line.tf"]
    assert sorted(names.values()) == sorted(f.rel for f in files)
    for farm_rel in names:
        link = tmp_path / "farm" / farm_rel
        assert link.is_symlink() and link.readlink().is_relative_to(root)


RECORDER = """#!{python}
import json, os, sys
with open({record!r}, "w") as fh:
    json.dump({{"cwd": os.getcwd(), "env": dict(os.environ), "argv": sys.argv[1:]}}, fh)
farm = sys.argv[sys.argv.index("-d") + 1]
check = {{"check_id": "CKV_DOCKER_3", "check_name": "Ensure that a user for the container has been created",
          "file_path": "/sub/Dockerfile", "file_line_range": [1, 2], "resource": "/sub/Dockerfile."}}
skip = dict(check, check_id="CKV_DOCKER_2", check_result={{"result": "SKIPPED", "suppress_comment": "::error::x"}})
print(json.dumps([{{"check_type": "dockerfile", "results": {{"failed_checks": [check], "skipped_checks": [skip],
                  "parsing_errors": [farm + "/sub/Dockerfile"]}}, "summary": {{"checkov_version": "9.9.9"}}}}]))
sys.exit(1)
"""


def test_command_environment_and_report_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "r"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "Dockerfile").write_text("FROM scratch\n")
    record = tmp_path / "record.json"
    fake = tmp_path / "fake-checkov"
    fake.write_text(RECORDER.format(python=sys.executable, record=str(record)))
    fake.chmod(0o755)
    monkeypatch.setenv("MLSEC_CHECKOV_BIN", str(fake))
    planted = {"CKV_SKIP_CHECK": "CKV_DOCKER_3", "BC_API_KEY": "k", "PRISMA_API_URL": "http://127.0.0.1:1",
               "GITHUB_TOKEN": "t", "CHECKOV_OUTPUT_CODE_LINE_LIMIT": "1", "TF_REGISTRY_TOKEN": "t"}
    for key, value in planted.items():
        monkeypatch.setenv(key, value)
    findings, run = checkov.scan(root, 30)
    call = json.loads(record.read_text())
    assert not set(planted) & set(call["env"])
    assert call["env"]["HOME"] != str(Path.home()) and not Path(call["env"]["HOME"]).is_relative_to(root)
    assert call["env"]["CKV_SKIP_PACKAGE_UPDATE_CHECK"] == "true" and call["env"]["BC_SKIP_MAPPING"] == "TRUE"
    argv = call["argv"]
    assert "--skip-download" in argv and Path(argv[argv.index("--config-file") + 1]) == checkov.CONFIG
    frameworks = argv[argv.index("--framework") + 1:]
    assert not {"secrets", "helm", "kustomize", "github_configuration", "sca_package"} & set(frameworks)
    assert run.status is ToolStatus.OK and run.version == "9.9.9"
    assert [(f.rule.id, f.location.path, f.location.start_line) for f in findings] == [
        ("checkov/CKV_DOCKER_3", "sub/Dockerfile", 1), ("checkov/CKV_DOCKER_2", "sub/Dockerfile", 1)]
    suppressed = dict(findings[1].properties)["checkov-suppressed-by-repository"]
    assert "::" not in suppressed
    assert [(g.kind, g.path) for g in run.gaps] == [(GapKind.FORMAT_UNKNOWN, "sub/Dockerfile")]
    _, opted = checkov.scan(root, 30, repo_config=True)
    assert [g.kind for g in opted.gaps] == [GapKind.ALLOW_RULE, GapKind.FORMAT_UNKNOWN]


@pytest.mark.parametrize("output", ["{}", "[]x", '[{"check_type": "x"}]', '{"check_type": "x", "results": []}',
                                    '[{"check_type": "x", "results": {"failed_checks": {}}}]'])
def test_output_that_is_not_a_report_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  output: str) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "Dockerfile").write_text("FROM scratch\n")
    fake = tmp_path / "fake"
    fake.write_text(f"#!/bin/sh\necho '{output}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MLSEC_CHECKOV_BIN", str(fake))
    findings, run = checkov.scan(tmp_path / "r", 30)
    assert findings == [] and run.status is ToolStatus.FAILED


def test_summary_only_report_is_a_clean_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "Dockerfile").write_text("FROM scratch\n")
    fake = tmp_path / "fake"
    fake.write_text('#!/bin/sh\necho \'{"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}\'\n')
    fake.chmod(0o755)
    monkeypatch.setenv("MLSEC_CHECKOV_BIN", str(fake))
    findings, run = checkov.scan(tmp_path / "r", 30)
    assert findings == [] and run.status is ToolStatus.OK


def _finding(rid: str, line: int | None, severity: Severity = Severity.MEDIUM):  # type: ignore[no-untyped-def]
    from mlsec_actions.findings import Finding

    rule = Rule(id=rid, name="R", short_description="s", full_description="f", help_text="h")
    return Finding(rule=rule, severity=severity, message="m", location=Location("Dockerfile", line, line and line + 2))


def test_file_level_trivy_result_joins_checkov_result_of_the_same_check() -> None:
    merged = merge([_finding("trivy/misconfig/DS-0002", None, Severity.HIGH), _finding("checkov/CKV_DOCKER_3", 1),
                    _finding("checkov/CKV_DOCKER_2", 1), _finding("trivy/misconfig/DS-0099", None)])
    by_ids = {dict(f.properties)["mlsec-rule-ids"]: f for f in merged}
    assert set(by_ids) == {"trivy/misconfig/DS-0002, checkov/CKV_DOCKER_3", "checkov/CKV_DOCKER_2",
                           "trivy/misconfig/DS-0099"}
    one = by_ids["trivy/misconfig/DS-0002, checkov/CKV_DOCKER_3"]
    assert one.rule.id == "trivy/misconfig/DS-0002" and one.severity is Severity.HIGH
    assert one.location.start_line == 1 and dict(one.properties)["mlsec-tools"] == "trivy, checkov"


def test_older_trivy_ids_and_unrelated_checks_merge_correctly() -> None:
    merged = merge([_finding("trivy/misconfig/AVD-DS-0002", 1), _finding("checkov/CKV_DOCKER_3", 2),
                    _finding("checkov/CKV_DOCKER_4", 2)])
    assert sorted(dict(f.properties)["mlsec-rule-ids"] for f in merged) == [
        "checkov/CKV_DOCKER_4", "trivy/misconfig/AVD-DS-0002, checkov/CKV_DOCKER_3"]


@pytest.mark.parametrize("args", [["-d", "x", "--framework", "dockerfile"], ["--skip-download", "-d", "x"],
                                  ["--skip-download", "--framework", "x", "--bc-api-key", "k"],
                                  ["--skip-download", "--framework", "x", "--bc-api-key=k"]])
def test_a_command_that_could_go_online_is_refused(args: list[str]) -> None:
    with pytest.raises(ValueError, match="skip-download"):
        checkov._check(args)
