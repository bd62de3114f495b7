"""`mlsec train` around a real scikit-learn training script on a dataset the test writes: the provenance lists
exactly its inputs and outputs with digests recomputed here; hostile commands (writing outside the output
folder, forging our results, a background writer, failing, hanging) are reported or fail closed."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlsec_actions.signing import statements
from mlsec_actions.training import provenance

pytestmark = pytest.mark.integration
PYTHON = sys.executable
TRAIN_SCRIPT = """\
import csv, json, pathlib, sys
import joblib
from sklearn.linear_model import LogisticRegression
rows = list(csv.reader(open("data.csv")))
X = [[float(a), float(b)] for a, b, _ in rows]
y = [int(c) for *_, c in rows]
model = LogisticRegression(random_state=0).fit(X, y)
out = pathlib.Path(sys.argv[1])
joblib.dump(model, out / "model.joblib")
(out / "metrics.json").write_text(json.dumps({"accuracy": model.score(X, y)}))
"""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_dataset(path: Path, n: int = 120) -> None:
    rng = random.Random(7)  # noqa: S311 -- a reproducible fixture dataset, not a secret
    lines = []
    for _ in range(n):
        a, b = rng.random(), rng.random()
        lines.append(f"{a:.6f},{b:.6f},{int(a + b > 1)}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    _write_dataset(proj / "data.csv")
    (proj / "train.py").write_text(TRAIN_SCRIPT)
    return proj


def _train(proj: Path, *command: str, extra: tuple[str, ...] = (), timeout: float = 120,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "mlsec")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_"))}
    base.update(env or {})
    args = [exe, "train", "--output", "model", "--sarif", str(proj.parent / "out" / "train.sarif"),
            "--provenance", str(proj.parent / "out" / "train.provenance.json"),
            "--log", str(proj.parent / "out" / "train.log"), *extra, "--", *command]
    return subprocess.run(args, cwd=proj, env=base, capture_output=True, text=True, timeout=timeout, check=False)


def _results(proj: Path) -> tuple[dict[str, object], dict[str, object]]:
    out = proj.parent / "out"
    return (json.loads((out / "train.provenance.json").read_text()), json.loads((out / "train.sarif").read_text()))


def test_real_training_run_records_exact_inputs_and_outputs(project: Path) -> None:
    proc = _train(project, PYTHON, "train.py", "model", extra=("--input", "data.csv", "--input", "train.py",
                                                                "--param", "seed=0"),
                  env={"MLSEC_RUN_ID": "run-1", "GITHUB_TOKEN": "ghs_secret", "MY_API_KEY": "k",
                       "GITHUB_SHA": "a" * 40})
    assert proc.returncode == 0, proc.stderr
    doc, sarif = _results(project)
    assert provenance.check(doc) == []
    assert doc["predicateType"] == statements.Kind.TRAIN_PROVENANCE.value
    expected = {f"model/{p.name}": _sha(p) for p in (project / "model").iterdir()}
    assert set(expected) == {"model/model.joblib", "model/metrics.json"}
    assert provenance.subjects(doc) == expected
    definition = doc["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["command"] == [PYTHON, "train.py", "model"]
    assert definition["externalParameters"]["parameters"] == {"seed": "0"}
    inputs = {d["name"]: d["digest"]["sha256"] for d in definition["resolvedDependencies"]
              if d.get("annotations", {}).get("role") == "input"}
    assert inputs == {"data.csv": _sha(project / "data.csv"), "train.py": _sha(project / "train.py")}
    deps = definition["resolvedDependencies"]
    assert {"digest": {"gitCommit": "a" * 40}, "name": "source"} in deps
    assert any(d.get("uri", "").startswith("pkg:pypi/scikit-learn@") for d in deps)
    withheld = definition["internalParameters"]["withheldEnvironment"]
    assert "GITHUB_TOKEN" in withheld and "MY_API_KEY" in withheld
    run = doc["predicate"]["runDetails"]
    assert run["metadata"]["invocationId"] == "run-1"
    assert run["byproducts"][0]["annotations"]["exitCode"] == 0
    log = project.parent / "out" / "train.log"
    assert run["byproducts"][1] == {"name": "train.log", "digest": {"sha256": _sha(log)}}
    assert sarif["runs"][0]["results"] == []
    assert all(i["executionSuccessful"] for i in sarif["runs"][0]["invocations"])
    # The bytes are canonical: re-encoding the parsed statement gives them back.
    raw = (project.parent / "out" / "train.provenance.json").read_bytes()
    assert provenance.encode(doc) == raw
    statements.require_typed(raw)


def test_credentials_never_reach_the_command(project: Path) -> None:
    (project / "env.py").write_text("import os, pathlib\npathlib.Path('model/env.json').write_text("
                                    "__import__('json').dumps(dict(os.environ)))\n")
    proc = _train(project, PYTHON, "env.py", env={"GITHUB_TOKEN": "ghs_x", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t",
                                                  "MLSEC_SIGNING_KEY": "pem", "AWS_SECRET_ACCESS_KEY": "s",
                                                  "TOKENIZERS_PARALLELISM": "false"})
    assert proc.returncode == 0, proc.stderr
    seen = json.loads((project / "model" / "env.json").read_text())
    withheld = {"GITHUB_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "MLSEC_SIGNING_KEY", "AWS_SECRET_ACCESS_KEY"}
    assert not withheld & set(seen)
    assert seen["TOKENIZERS_PARALLELISM"] == "false"  # an ordinary setting that merely contains TOKEN survives
    assert str(Path(sys.executable).parent) not in seen["PATH"].split(os.pathsep)


def test_writes_outside_the_output_folder_and_forged_results_are_reported(project: Path) -> None:
    out = project.parent / "out"
    forged = json.dumps({"_type": statements.STATEMENT_TYPE, "subject": [
        {"name": "model/evil", "digest": {"sha256": "0" * 64}}]})
    target = str(out / "train.provenance.json")
    # A child left behind to overwrite the statement after we wrote it: killed with the process group.
    (project / "late.py").write_text(f"import time, pathlib\ntime.sleep(2)\n"
                                     f"pathlib.Path({target!r}).write_text('x')\n")
    (project / "hostile.py").write_text(
        "import pathlib, subprocess, sys\n"
        "pathlib.Path('model/model.bin').write_bytes(b'weights')\n"
        "pathlib.Path('planted.py').write_text('x = 1')\n"
        "pathlib.Path('train.py').write_text('changed')\n"
        f"pathlib.Path({target!r}).parent.mkdir(parents=True, exist_ok=True)\n"
        f"pathlib.Path({target!r}).write_text({forged!r})\n"
        "subprocess.Popen([sys.executable, 'late.py'])\n")
    proc = _train(project, PYTHON, "hostile.py", extra=("--input", "train.py"))
    assert proc.returncode == 0, proc.stderr
    doc, sarif = _results(project)
    assert provenance.subjects(doc) == {"model/model.bin": _sha(project / "model" / "model.bin")}
    results = sarif["runs"][0]["results"]
    rules = {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) for r in results}
    assert ("train/write-outside-output", "planted.py") in rules
    assert ("train/write-outside-output", "train.py") in rules
    assert ("train/input-changed", "train.py") in rules
    time.sleep(2.5)
    assert provenance.check(json.loads((out / "train.provenance.json").read_text())) == []  # not forged late


def test_output_links_are_findings_not_subjects(project: Path) -> None:
    (project / "link.py").write_text("import os, pathlib\npathlib.Path('model/m.bin').write_bytes(b'1')\n"
                                     "os.symlink('/etc/passwd', 'model/passwd')\n")
    proc = _train(project, PYTHON, "link.py")
    assert proc.returncode == 0, proc.stderr
    doc, sarif = _results(project)
    assert set(provenance.subjects(doc)) == {"model/m.bin"}
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["train/output-not-regular"]


@pytest.mark.parametrize(("script", "status"), [("import sys; sys.exit(3)", "exited 3"),
                                                 ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
                                                  "killed by signal 9"),
                                                 ("import time; time.sleep(60)", "timed out")])
def test_failed_or_hung_training_fails_closed(project: Path, script: str, status: str) -> None:
    (project / "bad.py").write_text(script + "\n")
    proc = _train(project, PYTHON, "bad.py", extra=("--timeout", "2"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    doc, sarif = _results(project)
    failed = [i for i in sarif["runs"][0]["invocations"] if not i["executionSuccessful"]]
    assert failed and status in json.dumps(failed)
    exit_code = doc["predicate"]["runDetails"]["byproducts"][0]["annotations"]["exitCode"]
    assert exit_code == (None if status == "timed out" else 3 if status == "exited 3" else -9)


def test_no_outputs_and_reproducibility(project: Path) -> None:
    (project / "noop.py").write_text("pass\n")
    proc = _train(project, PYTHON, "noop.py")
    assert proc.returncode == 0
    assert [r["ruleId"] for r in _results(project)[1]["runs"][0]["results"]] == ["train/no-outputs"]
    (project / "model").rmdir()
    (project / "rand.py").write_text("import os, pathlib\npathlib.Path('model/w').write_bytes(os.urandom(8))\n")
    proc = _train(project, PYTHON, "rand.py", extra=("--check-reproducible",))
    assert proc.returncode == 0, proc.stderr
    doc, sarif = _results(project)
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["train/not-reproducible"]
    assert doc["predicate"]["runDetails"]["byproducts"][-1]["annotations"] == {"sameOutputs": False}


@pytest.mark.parametrize(("extra", "command", "problem"), [
    ((), (), "no training command"),
    (("--input", "missing.csv"), (PYTHON, "-c", "pass"), "missing.csv"),
    (("--sarif", "model/train.sarif"), (PYTHON, "-c", "pass"), "must not be inside --output"),
])
def test_bad_usage_is_exit_2_and_runs_nothing(project: Path, extra: tuple[str, ...], command: tuple[str, ...],
                                              problem: str) -> None:
    proc = _train(project, *command, extra=extra)
    assert proc.returncode == 2, proc.stderr
    assert problem in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (project.parent / "out" / "train.provenance.json").exists()


def test_output_folder_must_start_empty(project: Path) -> None:
    (project / "model").mkdir()
    (project / "model" / "stale.bin").write_bytes(b"old")
    proc = _train(project, PYTHON, "-c", "pass")
    assert proc.returncode == 2 and "not empty" in proc.stderr


def test_a_results_folder_replaced_by_a_link_is_never_written_through(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (proj / "swap.py").write_text("import os, pathlib\npathlib.Path('model/m').write_bytes(b'1')\n"
                                  f"os.symlink({str(elsewhere)!r}, 'mlsec-results')\n")
    exe = str(Path(sys.executable).parent / "mlsec")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_"))}
    proc = subprocess.run([exe, "train", "--output", "model", "--", PYTHON, "swap.py"], cwd=proj, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "replaced it with a link" in proc.stderr
    assert list(elsewhere.iterdir()) == []
