"""The tool-venv cache under act: a restored venv is used when faithful, and a poisoned entry never runs.

One job plays the jobs of a run on hosted runners (each job gets the same runner temp path there; act gives every
job its own, so the jobs here are phases of one job, and "a new job" removes the venv and the job's own records):
a trusted phase installs fresh and saves the venv (actions/_setup, save-venv), a warm phase restores it with the
digest and uses it, then one byte of a venv file in the saved entry is changed (the entry a job running the
repository's code wrote first under the same key: it imports a canary), and a last phase restores that entry, is
refused, installs fresh and runs a real stage from the venv. The step times in act's log are install times cold
and warm (reported, never asserted).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.act_harness import git_init, run_workflow

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(name="e2e-act")]

SETUP = "mlsec-actions/mlsec-actions/actions/_setup@v1  # zizmor: ignore[unpinned-uses] test consumer"
WORKFLOW = f"""\
name: venv-cache
on: push
permissions: {{}}
jobs:
  venv:
    runs-on: ubuntu-latest
    steps:
      - name: Check out
        uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
        with:
          persist-credentials: false
      - name: Cold install (trusted, saves)
        id: trusted
        uses: {SETUP}
        with:
          extras: ${{{{ env.VENV_EXTRAS }}}}
          save-venv: "true"
      - name: A new job
        run: rm -rf -- "$RUNNER_TEMP/mlsec-venv" "$RUNNER_TEMP/mlsec-setup/trusted-venv"
      - name: Warm install (restored)
        id: warm
        uses: {SETUP}
        with:
          extras: ${{{{ env.VENV_EXTRAS }}}}
          venv-digest: ${{{{ steps.trusted.outputs.venv-digest }}}}
      - name: Poison the entry
        env:
          KEY: ${{{{ steps.trusted.outputs.cache-key }}}}
        run: |
          entry="$E2E_CACHE_DIR/$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)/data"
          init="$(ls "$entry"/lib/python3*/site-packages/mlsec_actions/__init__.py)"
          echo "import pathlib; pathlib.Path('$E2E_RECORD_DIR/PWNED').write_text('ran')" >> "$init"
      - name: Another new job
        run: rm -rf -- "$RUNNER_TEMP/mlsec-venv" "$RUNNER_TEMP/mlsec-setup/trusted-venv"
      - name: Install over a poisoned entry
        id: poisoned
        uses: {SETUP}
        with:
          extras: ${{{{ env.VENV_EXTRAS }}}}
          venv-digest: ${{{{ steps.trusted.outputs.venv-digest }}}}
      - name: Run a stage
        env:
          PY: ${{{{ steps.poisoned.outputs.python }}}}
          DIGEST: ${{{{ steps.trusted.outputs.venv-digest }}}}
          WARM: ${{{{ steps.warm.outputs.python }}}}
        run: |
          sarif="$E2E_RECORD_DIR/notebook-scan.sarif"
          "$PY" -I -m mlsec_actions notebook-scan --sarif "$sarif" nb.ipynb || test $? -eq 1
          {{ echo "digest=$DIGEST"; echo "warm=$WARM"; echo "python=$PY"; }} > "$E2E_RECORD_DIR/outputs.txt"
"""
# A notebook with an AWS access key in a cell: notebook-scan reports it.
NOTEBOOK = {"cells": [{"cell_type": "code", "execution_count": None, "id": "a1", "metadata": {}, "outputs": [],
                       "source": ["aws_access_key_id = 'AKIAIOSFODNN7EXAMPLF'\n"]}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _step_seconds(log: str, name: str) -> float | None:
    found = re.findall(rf"Success - Main {re.escape(name)} \[([0-9.]+)(ms|s|m[0-9.]*s)?\]", log)
    if not found:
        return None
    value, unit = found[-1]
    return float(value) / 1000 if unit == "ms" else float(value)


@pytest.mark.parametrize("extras", ["", "trivy,secrets,sast,iac"], ids=["notebook-scan", "code-scan"])
def test_a_restored_venv_is_used_and_a_poisoned_one_is_not(tmp_path: Path, extras: str) -> None:
    consumer = tmp_path / "consumer"
    (consumer / ".github" / "workflows").mkdir(parents=True)
    (consumer / ".github" / "workflows" / "venv-cache.yml").write_text(WORKFLOW, encoding="utf-8")
    (consumer / "nb.ipynb").write_text(json.dumps(NOTEBOOK), encoding="utf-8")
    git_init(consumer)
    work = tmp_path / "work"
    work.mkdir()
    run = run_workflow(consumer, consumer / ".github" / "workflows" / "venv-cache.yml", work,
                       env={"VENV_EXTRAS": extras})
    assert run.returncode == 0, run.log[-6000:]
    record = run.record_dir
    assert not (record / "PWNED").exists(), "a file of the poisoned cache entry ran"
    calls = [json.loads(line) for line in (record / "cache.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(c["op"], c["result"]) for c in calls] == [("save", "saved"), ("restore", "hit"), ("restore", "hit")]
    key = calls[0]["key"]
    assert all(c["key"] == key for c in calls)
    outputs = dict(line.split("=", 1) for line in (record / "outputs.txt").read_text(encoding="utf-8").splitlines())
    assert key.endswith("-" + outputs["digest"])
    # The warm phase used the restored files; the poisoned phase refused them and installed fresh.
    assert "restored from the tool-venv cache" in run.log
    assert run.log.count("tool-venv cache entry not used, installing fresh") >= 1
    assert "differ from the ones installed" in run.log
    sarif = json.loads((record / "notebook-scan.sarif").read_text(encoding="utf-8"))
    assert sum(len(r["results"]) for r in sarif["runs"]) >= 1
    cold = _step_seconds(run.log, "Cold install (trusted, saves)")
    warm = _step_seconds(run.log, "Warm install (restored)")
    refused = _step_seconds(run.log, "Install over a poisoned entry")
    print(f"tool-venv install, extras {extras!r}: cold {cold} s, warm {warm} s, poisoned entry refused {refused} s")
    shutil.rmtree(work / "cache", ignore_errors=True)
