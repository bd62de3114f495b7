"""Issue 9 acceptance: `mlsec run` on the hostile repository, started in it, with a signing key given.

On the pre-fix main every stage process imported the tree's own `mlsec_actions/__main__.py` (cwd first
on sys.path), which exited 0: the run was green, with no scanner run at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.adversarial import observe
from tests.adversarial.hostile_repo import HostileRepo, key_pair

pytestmark = pytest.mark.integration


def test_run_on_the_hostile_tree_is_red_unsigned_and_contained(hostile: HostileRepo, work: Path,
                                                                tmp_path: Path) -> None:
    key = key_pair(tmp_path)
    out = work / "out"
    obs = observe.run(hostile, work, "run", str(hostile.root), "--out", str(out), "--sign-key", str(key),
                      "--model", str(hostile.root / "models" / "model.pkl"), timeout=1200)
    problems = observe.all_problems(hostile, obs)
    assert problems == [], "\n".join(problems) + "\n\n" + obs.describe()
    assert obs.returncode not in (0,), obs.describe()
    assert not [p for p in obs.files if p.name.endswith(".sigstore.json")], "signed a hostile tree"
    verdicts = [p for p in obs.files if p.name == "verdict.json"]
    assert verdicts, obs.describe()
    assert json.loads(verdicts[0].read_text())["verdict"] == "fail"
    # Both scanners really ran on the tree: their SARIF is this run's, with results.
    for stage in ("code-scan", "model-scan"):
        sarif = [p for p in obs.files if p.name == f"{stage}.sarif"]
        assert sarif, f"no {stage} SARIF\n{obs.describe()}"
        run = json.loads(sarif[0].read_text())["runs"][0]
        assert run.get("results"), f"{stage}: no results on a tree full of findings"
    # The report of a hostile run: every name and message from the tree is text, nothing loads or runs.
    reports = [p for p in obs.files if p.name == "report.html"]
    assert reports, obs.describe()
    body = reports[0].read_text().split("<body>", 1)[1]
    assert body.count("<script") == 2 and "<img" not in body and "<iframe" not in body
