"""code-scan against a hostile repository, with the real trivy: nothing in the tree steers the scan,
no path hides a secret, and no secret value reaches any output (issue 8 seen 3, issue 9 seen 4 and 7)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from mlsec_actions.tools.decoys import base62

# Real-shaped, made-up credentials (not AWS's documented examples, so trivy and our decoy list keep them).
KEYS = {f"AKIA{c * 4}QWERTYUIOPAS"[:20] for c in "BCDEFGHJKLMNPQRSTUV"}
ALLOW_RULE_PATHS = ("tests/settings.py", "examples/demo/settings.py", "services/test-api/settings.py",
                    "app_test/conf.py", "vendor/lib/conf.py", "web/locales/en/conf.py", "docs/SETUP.md",
                    "usr/share/app/conf.py", "usr/local/go/conf.go", "usr/local/lib/python3.11/conf.py",
                    "opt/yarn-v1.22.0/conf.js", "usr/lib/gems/conf.rb", "usr/src/wordpress/conf.php",
                    "var/log/anaconda/conf.log")
_GH_BODY = "Zq3Xw9Lm2Np8Rt4Vy6Bc1Df5Gh7Jk0"
GH_TOKEN = "ghp_" + _GH_BODY + base62(zlib.crc32(_GH_BODY.encode()))  # a valid checksum: not a decoy


def _results(sarif: Path) -> list[dict]:  # type: ignore[type-arg]
    return json.loads(sarif.read_text())["runs"][0]["results"]  # type: ignore[no-any-return]


def _coverage(sarif: Path) -> list[dict]:  # type: ignore[type-arg]
    return json.loads(sarif.read_text())["runs"][0]["properties"]["mlsec-coverage"]["gaps"]  # type: ignore[no-any-return]


def _uri(result: dict) -> str:  # type: ignore[type-arg]
    return result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]  # type: ignore[no-any-return]


def _write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def test_no_path_allow_rule_hides_a_secret(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    for rel, key in zip(ALLOW_RULE_PATHS, sorted(KEYS), strict=False):
        _write(root, rel, f'AWS_ACCESS_KEY_ID = "{key}"\n')
    out = tmp_path / "allow.sarif"
    assert run_mlsec("code-scan", str(root), "--sarif", str(out), "--vuln-db", "skip").returncode == 0
    found = {_uri(r) for r in _results(out) if r["ruleId"] == "trivy/secret/aws-access-key-id"}
    assert found == set(ALLOW_RULE_PATHS)


def test_placeholders_are_dropped_and_counted(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    _write(root, "examples/demo/config.py", 'AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"\n')
    _write(root, "tests/real.py", f'AWS_ACCESS_KEY_ID = "{min(KEYS)}"\n')
    out = tmp_path / "decoy.sarif"
    assert run_mlsec("code-scan", str(root), "--sarif", str(out), "--vuln-db", "skip").returncode == 0
    assert {_uri(r) for r in _results(out)} == {"tests/real.py"}
    dropped = [g for g in _coverage(out) if g["kind"] == "allow-rule" and g["tool"] == "trivy"]
    assert [(g["tool"], g["path"]) for g in dropped] == [("trivy", "examples/demo/config.py")]
    assert "placeholder" in dropped[0]["detail"]


def _steering_repo(root: Path) -> Path:
    """A repository that tries to switch off what would make its gate red."""
    _write(root, "Dockerfile", f"FROM python:3.11\nENV GITHUB_TOKEN={GH_TOKEN}\nCMD [\"python\"]\n")
    _write(root, ".trivyignore", "github-pat\nDS-0002\nAVD-DS-0002\nDS-0031\n")
    _write(root, "trivy-secret.yaml", "disable-rules:\n  - github-pat\n  - aws-access-key-id\n")
    _write(root, "trivy.yaml", "severity:\n  - LOW\nscan:\n  skip-files:\n    - Dockerfile\n")
    return root


def test_repository_trivy_files_and_trivy_env_do_not_steer_the_scan(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    root = _steering_repo(tmp_path / "repo")
    out = tmp_path / "steer.sarif"
    hostile_env = {"TRIVY_SEVERITY": "LOW", "TRIVY_SKIP_FILES": "Dockerfile",
                   "TRIVY_IGNOREFILE": str(root / ".trivyignore")}
    proc = run_mlsec("code-scan", ".", "--sarif", str(out), "--vuln-db", "skip", cwd=root, env=hostile_env)
    assert proc.returncode == 0, proc.stderr
    rules = {r["ruleId"] for r in _results(out)}
    assert {"trivy/secret/github-pat", "trivy/misconfig/DS-0002", "trivy/misconfig/DS-0031"} <= rules
    assert not [g for g in _coverage(out) if g["kind"] == "allow-rule" and g["tool"] == "trivy"]


def test_repository_files_apply_only_when_opted_in_and_are_listed(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    root = _steering_repo(tmp_path / "repo")
    out = tmp_path / "optin.sarif"
    proc = run_mlsec("code-scan", str(root), "--sarif", str(out), "--vuln-db", "skip", "--repo-ignore-files")
    assert proc.returncode == 0, proc.stderr
    rules = {r["ruleId"] for r in _results(out)}
    assert not {"trivy/secret/github-pat", "trivy/misconfig/DS-0002"} & rules
    listed = {g["path"] for g in _coverage(out) if g["kind"] == "allow-rule" and g["tool"] == "trivy"}
    assert listed == {".trivyignore", "trivy-secret.yaml", "trivy.yaml"}


PLANTED = {
    "Dockerfile": ("FROM python:3.11\nENV GITHUB_TOKEN={gh}\nENV DB_PASSWORD hunter2SuperSecretValue9\n"
                   'USER nobody\nCMD ["python"]\n'),
    "infra/db.tf": ('resource "aws_db_instance" "db" {{\n  engine   = "mysql"\n  username = "admin"\n'
                    '  password = "Tf-Planted-' 'Pass-9f8e7d6c"\n  storage_encrypted = false\n}}\n'),
    "k8s/pod.yaml": ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  containers:\n    - name: app\n"
                     "      image: nginx:1.25\n      env:\n        - name: API_SECRET\n"
                     '          value: "K8sPlantedSecretValue77aa"\n'),
}
VALUES = (GH_TOKEN, "hunter2SuperSecretValue9", "Tf-Planted-Pass-9f8e7d6c", "K8sPlantedSecretValue77aa")


@pytest.mark.integration
def test_no_planted_secret_value_reaches_any_output(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    for rel, text in PLANTED.items():
        _write(root, rel, text.format(gh=GH_TOKEN))
    outdir = tmp_path / "out"
    outdir.mkdir()
    actions = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outdir / "output"),
               "GITHUB_STEP_SUMMARY": str(outdir / "summary.md")}
    proc = run_mlsec("code-scan", str(root), "--sarif", str(outdir / "code-scan.sarif"), "--vuln-db", "skip",
                     env=actions)
    assert proc.returncode == 0, proc.stderr
    rules = {r["ruleId"] for r in _results(outdir / "code-scan.sarif")}
    assert {"trivy/secret/github-pat", "trivy/misconfig/DS-0031"} <= rules  # the values were there to leak
    snippets = [r["locations"][0]["physicalLocation"].get("region", {}).get("snippet", {}).get("text", "")
                for r in _results(outdir / "code-scan.sarif")]
    assert any("ENV GITHUB_TOKEN=***" in s for s in snippets)
    outputs = {p.name: p.read_text(errors="replace") for p in outdir.iterdir()}
    outputs |= {"stdout": proc.stdout, "stderr": proc.stderr}
    for value in VALUES:
        for i in range(len(value) - 11):
            window = value[i:i + 12]
            leaked = [name for name, text in outputs.items() if window in text]
            assert not leaked, f"{window!r} of a planted value is in {leaked}"


def test_inline_ignore_comments_in_the_tree_are_refused(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    """trivy honours `#trivy:ignore:*` and cannot be told not to: without --repo-ignore-files the resource
    under the comment is reported all the same (judged on a copy of the IaC files without the comments)."""
    root = tmp_path / "repo"
    bucket = 'resource "aws_s3_bucket" "data" {\n  bucket = "training-data"\n  acl    = "public-read"\n}\n'
    _write(root, "infra/hidden.tf", "#trivy:ignore:*\n" + bucket)
    _write(root, "infra/shown.tf", bucket.replace('"data"', '"logs"'))
    out = tmp_path / "inline.sarif"
    assert run_mlsec("code-scan", str(root), "--sarif", str(out), "--vuln-db", "skip").returncode == 0
    rules = {}
    for r in _results(out):
        rules.setdefault(_uri(r), set()).add(r["ruleId"])
    assert set(rules) == {"infra/shown.tf", "infra/hidden.tf"}
    assert rules["infra/hidden.tf"] == rules["infra/shown.tf"]
    assert "trivy/misconfig/AWS-0086" in rules["infra/hidden.tf"]  # S3 public ACL block
    hidden = [r for r in _results(out) if _uri(r) == "infra/hidden.tf"]
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 2 for r in hidden)
    assert not [g for g in _coverage(out) if g["kind"] == "allow-rule"]


def test_a_thousand_levels_deep_is_a_gap_for_every_tool_not_a_crash(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    """Issue 9 item 9: os.walk and rglob recurse per level (Python < 3.12); each walk of ours is iterative
    and stops at `tree.MAX_DEPTH` with a gap, and trivy itself still walks the whole tree."""
    from mlsec_actions.analyzers import tree

    root = tmp_path / "repo"
    deep = root / "src"
    deep.mkdir(parents=True)
    _write(root, "src/settings.py", f'GITHUB_TOKEN = "{GH_TOKEN}"\n')
    for _ in range(1000):  # not os.makedirs: it recurses too
        deep = deep / "d"
        deep.mkdir()
    (deep / "bottom.py").write_text("import os\nos.system(input())\n")
    out = tmp_path / "deep.sarif"
    try:
        got = run_mlsec("code-scan", str(root), "--sarif", str(out), "--vuln-db", "skip")
    finally:  # bottom-up: rmtree and the SARIF session hook's rglob recurse per level
        (deep / "bottom.py").unlink()
        while deep != root / "src":
            deep.rmdir()
            deep = deep.parent
    assert got.returncode == 0, got.stderr
    assert "RecursionError" not in got.stdout + got.stderr
    run = json.loads(out.read_text())["runs"][0]
    status = {i["properties"]["tool"]: i["properties"]["status"] for i in run["invocations"]}
    assert status == {**dict.fromkeys(("trivy", "gitleaks", "bandit", "mlsec-secrets", "mlsec-ml-sast"), "ok"),
                      "checkov": "skipped"}  # no IaC file in the tree
    cut = "/".join(["src", *["d"] * tree.MAX_DEPTH])
    limits = {g["tool"]: g["path"] for g in _coverage(out) if g["kind"] == "limit-reached"}
    assert limits == dict.fromkeys(status, cut)
    assert "src/settings.py" in {_uri(r) for r in _results(out)}
