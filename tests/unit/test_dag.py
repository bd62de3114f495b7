"""`mlsec run`'s scheduler: independent stages really run at the same time (proved by behaviour: each waits
for the other), needs are respected, at most `workers` at once, the costliest ready job first."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from mlsec_actions import dag, pipeline

# Marks itself started, then waits (bounded) for the other's mark: exit 0 only if both ran at the same time.
_MEET = ("import pathlib, sys, time\n"
         "mine, other, wait = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), float(sys.argv[3])\n"
         "mine.touch()\n"
         "end = time.monotonic() + wait\n"
         "while not other.exists():\n"
         "    if time.monotonic() > end: sys.exit(1)\n"
         "    time.sleep(0.01)\n"
         "(mine.parent / (mine.name + '.done')).touch()\n")
# Exit 0 only if both others had finished (their .done marks) before it started.
_AFTER = "import pathlib, sys; sys.exit(0 if all(pathlib.Path(a + '.done').exists() for a in sys.argv[1:]) else 1)"


def _processes(tmp_path: Path, workers: int, wait: float) -> dict[str, int]:
    marks = {n: str(tmp_path / n) for n in ("a", "b")}
    commands = {"a": [sys.executable, "-c", _MEET, marks["a"], marks["b"], str(wait)],
                "b": [sys.executable, "-c", _MEET, marks["b"], marks["a"], str(wait)],
                "c": [sys.executable, "-c", _AFTER, marks["a"], marks["b"]]}
    jobs = [dag.Job("a"), dag.Job("b"), dag.Job("c", frozenset({"a", "b"}))]
    results = dag.run(jobs, workers, lambda j: pipeline._step(j.name, commands[j.name], tmp_path, {}, 60.0))
    return {name: r.exit_code for name, r in results.items()}


def test_independent_stages_run_at_the_same_time_and_a_dependent_one_after(tmp_path: Path) -> None:
    # Each of a and b exits 0 only after seeing the other started: impossible one after the other.
    assert _processes(tmp_path, workers=2, wait=30.0) == {"a": 0, "b": 0, "c": 0}


def test_no_more_than_workers_at_once(tmp_path: Path) -> None:
    # One worker: a waits for b, which cannot start until a gives up; b then finds a's mark.
    assert _processes(tmp_path, workers=1, wait=1.0) == {"a": 1, "b": 0, "c": 1}


def test_the_costliest_ready_job_starts_first_and_needs_hold() -> None:
    started: list[str] = []
    lock = threading.Lock()

    def execute(job: dag.Job) -> str:
        with lock:
            started.append(job.name)
        return job.name.upper()

    jobs = [dag.Job("cheap", cost=1), dag.Job("dear", cost=9), dag.Job("after", frozenset({"cheap"}), cost=99),
            dag.Job("unknown-cost")]
    assert dag.run(jobs, 1, execute) == {"dear": "DEAR", "cheap": "CHEAP", "after": "AFTER",
                                         "unknown-cost": "UNKNOWN-COST"}
    assert started == ["dear", "cheap", "after", "unknown-cost"]


@pytest.mark.parametrize(("jobs", "problem"), [
    ([dag.Job("a", frozenset({"b"})), dag.Job("b", frozenset({"a"}))], "need each other"),
    ([dag.Job("a", frozenset({"nope"}))], "not jobs"),
    ([dag.Job("a"), dag.Job("a")], "repeat"),
])
def test_a_bad_graph_is_refused_before_anything_runs(jobs: list[dag.Job], problem: str) -> None:
    ran: list[str] = []
    with pytest.raises(ValueError, match=problem):
        dag.run(jobs, 2, lambda j: ran.append(j.name))
    assert ran == []


def test_the_pipeline_graph_comes_from_the_catalog(tmp_path: Path) -> None:
    plan = pipeline.plan(tmp_path, tmp_path / "out", "mlsecops", sign_key=tmp_path / "k.pem")
    needs = {j.name: j.needs for j in pipeline.jobs(plan, {"model-scan": 5.0})}
    scans = frozenset(plan.scans)
    assert {s: needs[s] for s in plan.scans} == dict.fromkeys(plan.scans, frozenset())
    assert needs["gate"] == scans and needs["sbom"] == {"gate"}
    assert needs["sign"] == scans | {"gate", "sbom"}
    assert {j.name: j.cost for j in pipeline.jobs(plan, {"model-scan": 5.0})}["model-scan"] == 5.0
    unsigned = pipeline.plan(tmp_path, tmp_path / "out", "mlsecops")
    assert "sign" not in {j.name for j in pipeline.jobs(unsigned)}


def test_previous_seconds_reads_the_last_record_and_ignores_junk(tmp_path: Path) -> None:
    assert pipeline.previous_seconds(tmp_path) == {}
    record = {"stages": [{"stage": "code-scan", "seconds": 4.5}, {"stage": "x", "seconds": "slow"}, 7]}
    (tmp_path / "run.json").write_text(json.dumps(record))
    assert pipeline.previous_seconds(tmp_path) == {"code-scan": 4.5}
    (tmp_path / "run.json").write_text("[not json")
    assert pipeline.previous_seconds(tmp_path) == {}
