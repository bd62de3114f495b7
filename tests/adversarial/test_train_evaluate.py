"""train and evaluate on the hostile repository, each as its own `python -I -m mlsec_actions` process in the
hostile root under strace: nothing of the tree runs (train runs only the command we give it), nothing outside
the root is opened through it, and hostile metrics text (workflow commands, Markdown, NaN) stays inert."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.adversarial import observe
from tests.adversarial.hostile_repo import HostileRepo

pytestmark = pytest.mark.integration


def test_train_watches_the_hostile_tree_without_opening_it(hostile: HostileRepo, work: Path) -> None:
    # Our command, not the tree's: it writes one output. The snapshot walks the tree (FIFO, links out, a
    # ~1,000-deep folder) by lstat only; the 64-level limit is a coverage gap, not a crash. The output folder
    # must be inside the work tree: a fresh one, removed afterwards (the tree is otherwise left as built).
    obs = observe.run(hostile, work, "train", "--workdir", str(hostile.root), "--output", "mlsec-train-out",
                      "--sarif", str(work / "train.sarif"), "--provenance", str(work / "train.provenance.json"),
                      "--log", str(work / "train.log"), "--",
                      sys.executable, "-I", "-c", "import pathlib; pathlib.Path('mlsec-train-out/m.bin')"
                                                  ".write_bytes(b'w')")
    try:
        problems = observe.all_problems(hostile, obs)
        assert problems == [], "\n".join(problems) + "\n\n" + obs.describe()
        assert obs.returncode == 0, obs.describe()
        doc = json.loads((work / "train.provenance.json").read_text())
        assert [s["name"] for s in doc["subject"]] == ["mlsec-train-out/m.bin"]
        run = json.loads((work / "train.sarif").read_text())["runs"][0]
        assert run["properties"]["mlsec-coverage"]["total"] >= 1  # the deep folder was not watched: said so
    finally:
        shutil.rmtree(hostile.root / "mlsec-train-out", ignore_errors=True)


def test_evaluate_keeps_hostile_metrics_inert(hostile: HostileRepo, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    metrics = work / "metrics.json"
    metrics.write_text('{"accuracy": NaN, "::error title=x::pwned": 1, "[click](https://evil.example)": 2, '
                       '"f1": "0.99\\n::warning::x", "ok": 0.5}')
    policy = work / "policy.yml"
    policy.write_text("version: 1\nevaluate:\n  metrics:\n    accuracy: {min: 0.9}\n")
    obs = observe.run(hostile, work, "evaluate", str(hostile.root), "--policy", str(policy), "--metrics",
                      str(metrics), "--sarif", str(work / "evaluate.sarif"))
    problems = observe.all_problems(hostile, obs)
    assert problems == [], "\n".join(problems) + "\n\n" + obs.describe()
    assert obs.returncode == 0, obs.describe()
    run = json.loads((work / "evaluate.sarif").read_text())["runs"][0]
    assert sorted(r["ruleId"] for r in run["results"]) == ["evaluate/metric-invalid"] * 4 + ["evaluate/metric-missing"]
    assert run["properties"]["metrics"] == {"ok": 0.5}


def test_evaluate_refuses_the_trees_json_bombs(hostile: HostileRepo, work: Path) -> None:
    for i, bomb in enumerate(hostile.bomb_json):  # depth 100k, a FIFO: exit 2 at once, never a hang
        obs = observe.run(hostile, work / str(i), "evaluate", str(hostile.root), "--metrics", str(bomb),
                          "--sarif", str(work / str(i) / "evaluate.sarif"), timeout=120, trace=False)
        assert obs.returncode == 2, obs.describe()
        assert len(obs.stderr.strip().splitlines()) == 1 and "Traceback" not in obs.stderr
