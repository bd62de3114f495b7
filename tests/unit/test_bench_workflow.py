"""benchmarks/workflow.py: act's stamped lines -> jobs, the critical path, and a run that did not end as expected."""

from __future__ import annotations

from benchmarks import workflow as w

LOG = """\
0.100 [mlsecops/mlsecops/run id] \u2b50 Run Main id
0.309 [mlsecops/mlsecops/run id] \U0001f3c1  Job succeeded
0.320 [mlsecops/mlsecops/code-scan (ML stage 3)    ] \u2b50 Run Main code-scan
0.330 [mlsecops/mlsecops/data-scan (ML stage 3)    ] \u2b50 Run Main data-scan
10.349 [mlsecops/mlsecops/data-scan (ML stage 3)    ] \U0001f3c1  Job succeeded
10.400 [mlsecops/mlsecops/model-scan (ML stage 7)   ] \u2b50 Run Main
28.827 [mlsecops/mlsecops/model-scan (ML stage 7)   ] \U0001f3c1  Job succeeded
not a job line
81.693 [mlsecops/mlsecops/code-scan (ML stage 3)    ] \U0001f3c1  Job succeeded
81.700 [mlsecops/mlsecops/gate before training (ML stage 4)] \u2b50 Run Main gate
96.987 [mlsecops/mlsecops/gate before training (ML stage 4)] \U0001f3c1  Job failed
"""


def test_jobs_map_to_the_pipeline_ids_and_their_times() -> None:
    pipeline = w.pipeline_jobs()
    jobs = w.parse(LOG, {k: name for k, (name, _) in pipeline.items()})
    assert set(jobs) == {"run-id", "code-scan", "data-scan", "model-scan", "gate-4"}
    assert jobs["code-scan"].start == 0.32 and jobs["code-scan"].end == 81.693
    assert jobs["gate-4"].result == "failed" and round(jobs["data-scan"].seconds, 3) == 10.019
    path = w.critical_path(jobs, {k: needs for k, (_, needs) in pipeline.items()})
    assert [j.id for j in path] == ["run-id", "code-scan", "gate-4"]
    assert w.check(jobs, returncode=1) is None


def test_a_run_not_ending_as_expected_is_failed() -> None:
    pipeline = w.pipeline_jobs()
    jobs = w.parse(LOG, {k: name for k, (name, _) in pipeline.items()})
    assert w.check(jobs, returncode=0) is not None                      # a green gate is not the shipped example
    del jobs["model-scan"]
    assert "model-scan: did not run" in (w.check(jobs, returncode=1) or "")
