"""An audit's model legs (actions/_audit/model-leg.sh, the script the audit workflow's scan-model job runs) against
a real loopback HTTP server and real clamscan with a sigtool-made database, then audit-merge over their results:
a clean model passes, a malicious pickle (tests/pickle_corpus.py), a wrong pin and a missing ClamAV database
each fail their row (fail closed), and the audit fails naming them."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from mlsec_actions import audit_models, cli
from tests.pickle_corpus import CMD, call
from tests.supply_servers import HttpServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LEG = ROOT / "actions" / "_audit" / "model-leg.sh"


def _serve(http: HttpServer, name: str, data: bytes) -> str:
    (http.root / "audit").mkdir(exist_ok=True)
    (http.root / "audit" / name).write_bytes(data)
    return f"{http.base}/audit/{name}"


def _interpreter(tmp: Path) -> Path:
    """MLSEC_VENV_PYTHON for the leg: this venv's Python running this checkout's src/ (or the mutation harness's
    copy) as `-I -m mlsec_actions` would; isolated mode alone would run whatever the venv has installed."""
    src = os.environ.get("MLSEC_MUTATION_SRC", str(ROOT / "src"))
    runner = tmp / "venv-python.py"
    runner.write_text(f"import sys\nsys.path.insert(0, {src!r})\nfrom mlsec_actions import cli\n"
                      "sys.exit(cli.main(sys.argv[1:]))\n")
    exe = tmp / "venv-python"
    exe.write_text(f"""#!/bin/sh
[ "$1 $2 $3" = "-I -m mlsec_actions" ] || {{ echo "not an isolated mlsec_actions call: $*" >&2; exit 97; }}
shift 3
exec {sys.executable} -I {runner} "$@"
""")
    exe.chmod(0o755)
    return exe


def _leg(tmp: Path, model: str, db: Path, results: Path, policy: str = "default") -> tuple[int, str, str]:
    """Run the leg as the action runs it; (its exit code, the exit-code output, its log)."""
    entry = audit_models.parse_models(model)[0]
    work = tmp / entry.slot
    (work / "runner-temp").mkdir(parents=True)
    output = work / "github-output"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_", "PYTHON"))}
    env.update({"MLSEC_VENV_PYTHON": str(_interpreter(work)), "MODEL": model, "POLICY": policy,
                "RUNNER_TEMP": str(work / "runner-temp"), "MLSEC_CLAMAV_DB": str(db),
                "OUT": str(results / entry.artifact), "GITHUB_OUTPUT": str(output)})
    got = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(LEG)], cwd=work, env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    lines = output.read_text().splitlines() if output.exists() else []
    code = next((line for line in reversed(lines) if line.startswith("exit-code=")), "")
    assert not list((work / "runner-temp").iterdir()), "the quarantine was not removed"
    return got.returncode, code, got.stdout + got.stderr


def _rules(results: Path, artifact: str) -> set[str]:
    found = set()
    for sarif in (results / artifact / "sarif").glob("*.sarif"):
        for run in json.loads(sarif.read_text())["runs"]:
            found |= {r["ruleId"] for r in run.get("results", [])}
    return found


def test_model_legs_then_merge_fail_closed(tmp_path: Path, http_server: HttpServer, clamav_db: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS"):
        monkeypatch.delenv(var, raising=False)
    clean = pickle.dumps({"weights": [0.5, 1.5]}, protocol=4)
    evil = call("os", "system", CMD)
    models = {
        "clean": f"{_serve(http_server, 'clean.pkl', clean)}#sha256={hashlib.sha256(clean).hexdigest()}",
        "evil": f"{_serve(http_server, 'evil.pkl', evil)}#sha256={hashlib.sha256(evil).hexdigest()}",
        "repinned": f"{_serve(http_server, 'other.pkl', clean)}#sha256={'0' * 64}",
    }
    results = tmp_path / "results"
    legs = {name: _leg(tmp_path, entry, clamav_db, results) for name, entry in models.items()}
    no_db = tmp_path / "empty-db"
    no_db.mkdir()
    clean_again = models["clean"].replace("clean.pkl", "clean-again.pkl")
    _serve(http_server, "clean-again.pkl", clean)
    legs["no-clamav-db"] = _leg(tmp_path, clean_again, no_db, results)
    assert {n: (rc, code) for n, (rc, code, _) in legs.items()} == {
        "clean": (0, "exit-code=0"), "evil": (0, "exit-code=3"), "repinned": (0, "exit-code=3"),
        "no-clamav-db": (0, "exit-code=3")}, legs
    [clean_t, evil_t, repinned_t, again_t] = audit_models.parse_models(" ".join([*models.values(), clean_again]))
    # fetch's own model-scan pass found os.system and withheld the file: model-scan then had nothing to read.
    assert {"pickle/dangerous-global", "fetch/withheld"} <= _rules(results, evil_t.artifact)
    assert {"fetch/digest-mismatch", "fetch/withheld"} <= _rules(results, repinned_t.artifact)
    assert "fetch/withheld" in _rules(results, again_t.artifact)  # ClamAV could not run: nothing placed
    assert not _rules(results, clean_t.artifact)

    out = tmp_path / "merged"
    entries = "\n".join([*models.values(), clean_again])
    assert cli.main(["audit-merge", str(results), "--models", entries, "--out", str(out)]) == 3
    doc = json.loads((out / "audit-verdict.json").read_text())
    assert doc["verdict"] == "fail" and doc["repositories"] == []
    rows = {r["model"].rsplit("/", 1)[1]: r for r in doc["models"]}
    assert {n: r["verdict"] for n, r in rows.items()} == {"clean.pkl": "pass", "evil.pkl": "fail",
                                                         "other.pkl": "fail", "clean-again.pkl": "fail"}
    assert rows["evil.pkl"]["counts"]["critical"] + rows["evil.pkl"]["counts"]["high"] > 0
    page = (out / "audit-report.html").read_text()
    assert page.count('<tr class="fail">') == 3 and page.count('<tr class="pass">') == 1


def test_a_leg_refuses_a_policy_that_is_not_builtin_and_a_bad_entry(tmp_path: Path, clamav_db: Path) -> None:
    entry = f"https://models.example.com/m.pkl#sha256={'a' * 64}"
    rc, _, log = _leg(tmp_path / "p", entry, clamav_db, tmp_path / "r", policy="policies/mine.yml")
    assert rc == 2 and "policy must be a builtin" in log
    work = tmp_path / "bad"
    (work / "rt").mkdir(parents=True)
    got = subprocess.run(["bash", str(LEG)], cwd=work, capture_output=True, text=True, check=False, env={
        "PATH": os.environ["PATH"], "MLSEC_VENV_PYTHON": str(_interpreter(work)),
        "MODEL": f"file:///etc/passwd#sha256={'a' * 64}", "POLICY": "default", "RUNNER_TEMP": str(work / "rt")})
    assert got.returncode == 2 and "URL scheme 'file' is not allowed" in got.stderr
    assert not (work / "mlsec-audit-results" / "sarif" / "fetch.sarif").exists()
