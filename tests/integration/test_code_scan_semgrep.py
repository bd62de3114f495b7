"""semgrep with the shipped taint rules, the real semgrep on trees the tests write: untrusted data from Flask,
FastAPI, Django, the command line and the terminal reaching a loader, eval or a shell is found; the safe forms
and constant data are not; and nothing the tree ships (.semgrep.yml, .semgrep/, .semgrepignore, .gitignore,
# nosemgrep, git configuration, links) or the caller's SEMGREP_* variables steer or silence it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlsec_actions.findings import GapKind, ToolStatus
from mlsec_actions.tools import semgrep

FLASK = '''import pickle, shlex, subprocess, tarfile, requests, torch, yaml
from flask import Flask, request

app = Flask(__name__)


@app.route("/load")
def load():
    model = pickle.load(open(request.args["path"], "rb"))
    cfg = yaml.load(request.data)
    fine = yaml.safe_load(request.data)
    also_fine = yaml.load(request.data, Loader=yaml.SafeLoader)
    weights = torch.load(request.args["w"], weights_only=True)
    ckpt = torch.load(request.args["w"])
    subprocess.run("ls " + request.args["d"], shell=True)
    tarfile.open(request.files["t"].filename).extractall("/srv")
    tarfile.open(request.files["t"].filename).extractall("/srv", filter="data")
    requests.get("https://models.example/x", verify=False)
    count = int(request.args["n"])
    eval(count)
    return model, cfg, fine, also_fine, weights, ckpt


def offline():
    return pickle.loads(b"constant"), yaml.load(open("settings.yml")), eval("1 + 1")
'''
FASTAPI = '''import pickle
from fastapi import FastAPI

api = FastAPI()


@api.post("/predict")
async def predict(blob: bytes):
    return pickle.loads(blob)
'''
DJANGO = '''import yaml


def upload(request):
    return yaml.load(request.body, Loader=yaml.Loader)


def upload_safe(request):
    return yaml.load(request.body, Loader=yaml.SafeLoader)
'''
CLI = '''import os, sys, joblib


def main():
    model = joblib.load(sys.argv[1])
    exec(input("code> "))
    os.system("convert " + sys.argv[2])
    return model
'''
EXPECTED = {
    ("svc/app.py", 9, "semgrep/pickle-untrusted"), ("svc/app.py", 10, "semgrep/yaml-load-untrusted"),
    ("svc/app.py", 14, "semgrep/torch-load-untrusted"), ("svc/app.py", 15, "semgrep/shell-injection"),
    ("svc/app.py", 16, "semgrep/tar-extract-untrusted"), ("svc/app.py", 18, "semgrep/requests-no-verify"),
    ("svc/api.py", 9, "semgrep/pickle-untrusted"), ("svc/views.py", 5, "semgrep/yaml-load-untrusted"),
    ("tools/cli.py", 5, "semgrep/pickle-untrusted"), ("tools/cli.py", 6, "semgrep/eval-untrusted"),
    ("tools/cli.py", 7, "semgrep/shell-injection"),
}
"""Not there: safe_load, SafeLoader, weights_only=True, extractall(filter=), int() of request data, and every
call of `offline()` on constant data (bandit and the ML rules report those without data-flow)."""


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _tree(root: Path) -> Path:
    _write(root, "svc/app.py", FLASK)
    _write(root, "svc/api.py", FASTAPI)
    _write(root, "svc/views.py", DJANGO)
    _write(root, "tools/cli.py", CLI)
    return root


def test_untrusted_data_into_sinks_is_found_and_safe_forms_are_not(tmp_path: Path) -> None:
    findings, run = semgrep.scan(_tree(tmp_path / "repo"), timeout=300)
    assert run.status is ToolStatus.OK, run.message
    assert run.version == "1.185.0"
    assert {(f.location.path, f.location.start_line, f.rule.id) for f in findings} == EXPECTED
    pickled = next(f for f in findings if f.location.path == "svc/app.py" and f.location.start_line == 9)
    assert pickled.severity.name == "CRITICAL" and "external/cwe/cwe-502" in pickled.rule.tags
    assert not [g for g in run.gaps if g.kind is not GapKind.ALLOW_RULE], run.gaps


def _hostile(root: Path, outside: Path) -> Path:
    """Every way a tree could try to switch semgrep off, around the same handlers."""
    _tree(root)
    quiet = FLASK.replace('request.args["path"], "rb"))', 'request.args["path"], "rb"))  # nosemgrep')
    _write(root, "svc/app.py", quiet.replace("cfg = yaml.load(request.data)",
                                             "cfg = yaml.load(request.data)  # nosemgrep"))
    silencer = "rules:\n  - id: tree-rule\n    message: from the tree\n    severity: INFO\n    languages: [python]\n" \
               "    pattern: print(...)\n"
    _write(root, ".semgrep.yml", silencer)
    _write(root, ".semgrep/rules.yml", silencer)
    _write(root, ".semgrep/settings.yml", "has_shown_metrics_notification: true\n")
    _write(root, ".semgrepignore", "*\n")
    _write(root, "svc/.semgrepignore", "*.py\n")
    _write(root, ".gitignore", "*.py\n")
    _write(root, "svc/greet.py", 'print("hello")\n')
    canary = outside / "git-ran"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    # A hostile .git/config: any git command semgrep ran in the tree would run this program.
    subprocess.run(["git", "-C", str(root), "config", "core.fsmonitor", f"touch {canary}; false"], check=True)
    _write(outside, "evil.py", FASTAPI)
    (root / "svc" / "linked.py").symlink_to(outside / "evil.py")
    return canary


def test_tree_settings_and_caller_variables_do_not_steer_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    canary = _hostile(root, outside)
    monkeypatch.setenv("SEMGREP_RULES", str(root / ".semgrep.yml"))
    monkeypatch.setenv("SEMGREP_SEND_METRICS", "on")
    monkeypatch.chdir(root)  # even started from inside the tree
    findings, run = semgrep.scan(root, timeout=300)
    assert run.status is ToolStatus.OK, run.message
    found = {(f.location.path, f.location.start_line, f.rule.id) for f in findings}
    assert found == EXPECTED  # nosemgrep lines, ignored files and .gitignore'd files included
    assert not canary.exists(), "semgrep ran git in the scanned tree"
    assert "--config" in run.command and run.command.count("--config") == 1
    assert run.command[run.command.index("--config") + 1] == str(semgrep.RULES)
    assert {"--metrics=off", "--disable-nosem", "--x-ignore-semgrepignore-files", "--no-git-ignore"} <= set(run.command)
    assert not any("linked.py" in a for a in run.command)  # links are never given to it


def test_repo_ignore_files_honours_nosemgrep_and_lists_it(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _hostile(root, tmp_path / "outside")
    findings, run = semgrep.scan(root, timeout=300, repo_config=True)
    assert run.status is ToolStatus.OK, run.message
    found = {(f.location.path, f.location.start_line, f.rule.id) for f in findings}
    assert found == EXPECTED - {("svc/app.py", 9, "semgrep/pickle-untrusted"),
                                ("svc/app.py", 10, "semgrep/yaml-load-untrusted")}
    assert not any(f.rule.id == "semgrep/tree-rule" or "tree-rule" in f.rule.id for f in findings)
    assert [g.kind for g in run.gaps] == [GapKind.ALLOW_RULE] and "nosemgrep" in run.gaps[0].detail


def _where(result: dict) -> tuple[str, int]:  # type: ignore[type-arg]
    region = result["locations"][0]["physicalLocation"]
    return region["artifactLocation"]["uri"], region["region"]["startLine"]


def test_code_scan_merges_semgrep_with_bandit_and_ml_rules_from_inside_a_hostile_tree(
        tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    _hostile(root, tmp_path / "outside")
    out = tmp_path / "code-scan.sarif"
    proc = run_mlsec("code-scan", ".", "--sarif", str(out), "--vuln-db", "skip", "--semgrep", cwd=root,
                     env={"SEMGREP_RULES": str(root / ".semgrep.yml")})
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())["runs"][0]
    status = {i["properties"]["tool"]: i["properties"]["status"] for i in doc["invocations"]}
    assert status["semgrep"] == "ok"
    at = {_where(r): r for r in doc["results"] if r["ruleId"] in ("ml/pickle-load", "ml/subprocess-shell")}
    pickled = at[("svc/app.py", 9)]  # one result for three tools, at semgrep's severity
    assert pickled["ruleId"] == "ml/pickle-load"
    assert pickled["properties"]["mlsec-tools"] == "mlsec-ml-sast, bandit, semgrep"
    assert pickled["properties"]["mlsec-severity"] == "critical"
    pickle_at = [_where(r) for r in doc["results"] if r["ruleId"] == "ml/pickle-load"]
    assert len(pickle_at) == len(set(pickle_at)) == 4  # app.py 9 and 25, api.py 9, cli.py 5: once each
    assert "semgrep/shell-injection" in at[("tools/cli.py", 7)]["properties"]["mlsec-rule-ids"]
    assert not any("tree-rule" in r["ruleId"] for r in doc["results"])


def test_semgrep_runs_only_when_asked_for(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    root = _tree(tmp_path / "repo")
    out = tmp_path / "code-scan.sarif"
    proc = run_mlsec("code-scan", str(root), "--sarif", str(out), "--vuln-db", "skip",
                     env={"MLSEC_SEMGREP_BIN": str(tmp_path / "no-such-semgrep")})
    assert proc.returncode == 0, proc.stderr  # not asked for: a missing semgrep is no failure, and it is not run
    tools = {i["properties"]["tool"] for i in json.loads(out.read_text())["runs"][0]["invocations"]}
    assert "semgrep" not in tools and "bandit" in tools
    asked = run_mlsec("code-scan", str(root), "--sarif", str(out), "--vuln-db", "skip",
                      env={"MLSEC_SEMGREP_BIN": str(tmp_path / "no-such-semgrep"), "MLSEC_SEMGREP": "true"})
    assert asked.returncode == 1  # asked for and missing: a failed tool, fail closed
    run = json.loads(out.read_text())["runs"][0]
    assert any(i["properties"]["tool"] == "semgrep" and not i["executionSuccessful"] for i in run["invocations"])
