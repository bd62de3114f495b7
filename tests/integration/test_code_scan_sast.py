"""code-scan end to end on a Flask handler: bandit, semgrep's taint rules and the in-house ML rules report the
unsafe loads (one result each, naming every tool), the safe forms are not reported, and a missing bandit is a
failed tool while the ML rules still report."""

from __future__ import annotations

import json
from pathlib import Path

HANDLER = '''import pickle, yaml, torch
from flask import Flask, request
app = Flask(__name__)

@app.route("/load")
def load():
    return pickle.load(open(request.args["path"], "rb"))

@app.route("/parse")
def parse():
    return yaml.load(request.data)

def safe(data):
    cfg = yaml.safe_load(data)
    w = torch.load("w.pt", weights_only=True)
    return cfg, yaml.load(data, Loader=yaml.SafeLoader), w
'''


def _scan(tmp_path: Path, run_mlsec, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    root = tmp_path / "svc"
    root.mkdir()
    (root / "app.py").write_text(HANDLER)
    out = tmp_path / "code-scan.sarif"
    proc = run_mlsec("code-scan", str(root), "--sarif", str(out), "--vuln-db", "skip", "--semgrep", env=env)
    return proc, json.loads(out.read_text())["runs"][0]


def _by_line(run: dict) -> dict[int, dict]:  # type: ignore[type-arg]
    return {r["locations"][0]["physicalLocation"]["region"]["startLine"]: r for r in run["results"]}


def test_flask_handler_unsafe_loads_are_one_result_each_from_both_tools(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    proc, run = _scan(tmp_path, run_mlsec)
    assert proc.returncode == 0, proc.stderr
    lines = _by_line(run)
    assert lines[7]["ruleId"] == "ml/pickle-load"
    assert lines[7]["properties"]["mlsec-tools"] == "mlsec-ml-sast, bandit, semgrep"
    assert "bandit/B301" in lines[7]["properties"]["mlsec-rule-ids"]
    assert "semgrep/pickle-untrusted" in lines[7]["properties"]["mlsec-rule-ids"]
    assert lines[7]["properties"]["mlsec-severity"] == "critical"  # semgrep saw the request reach it
    assert lines[11]["ruleId"] == "ml/yaml-unsafe-load" and "bandit/B506" in lines[11]["properties"]["mlsec-rule-ids"]
    assert not {14, 15, 16} & set(lines)  # safe_load, weights_only=True, SafeLoader
    assert [r["ruleId"] for r in run["results"]].count("ml/pickle-load") == 1


def test_without_bandit_the_ml_rules_still_report(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    proc, run = _scan(tmp_path, run_mlsec, env={"MLSEC_BANDIT_BIN": str(tmp_path / "gone")})
    assert proc.returncode == 1
    status = {i["properties"]["tool"]: i["properties"]["status"] for i in run["invocations"]}
    assert status["bandit"] == "missing" and status["mlsec-ml-sast"] == "ok"
    assert {7, 11} <= set(_by_line(run))
