"""Per-job wall times of the MLSecOps pipeline under act, as the e2e tests run it, and its critical path.

The run is tests/e2e's own (`prepare_consumer` + `run_workflow`: examples/ml-project's workflow, which calls
`.github/workflows/mlsecops.yml` of this working tree, host mode, offline, `vuln-db: skip`), so what is timed is
what the e2e suite waits for. act is started through a small stamping process that prefixes every line act
prints with the seconds since act started; a job starts at its first line and ends at its `Job succeeded` /
`Job failed` line. The critical path is the chain that set the end: from the job that finished last, back
through the need that finished last each time; each step shows the wait between a need's end and the job's
start (act's scheduling and set-up) apart from the job's own time.

Fair because it is one whole act process per run (no in-process shortcut), a run whose jobs did not end the
way the e2e test expects (every scan job succeeded; the example's gate fails by design) is a failed run and
has no times, and the machine and the load average are printed with the table. With `--runs N` each job's
figure is the median of N runs with min-max; there is no peer to alternate with (compare two checkouts by
running each in turn, and read the table's ranges before believing a difference).

Run: .venv/bin/python benchmarks/workflow.py [--runs 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

REPO = Path(__file__).resolve().parent.parent
PIPELINE = REPO / ".github" / "workflows" / "mlsecops.yml"
EXPECT = {"code-scan": "succeeded", "model-scan": "succeeded", "gate-4": "failed"}
"""How the shipped example ends (tests/e2e/test_gate_workflow.py): its deliberate findings fail the first gate."""

# Prefixes each line with the seconds since act started (monotonic), then passes act's exit code on.
_STAMP = """
import subprocess, sys, time
start = time.monotonic()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
for line in proc.stdout:
    sys.stdout.buffer.write(b"%.3f " % (time.monotonic() - start) + line)
sys.exit(proc.wait())
"""
_LINE = re.compile(r"^(\d+\.\d+) \[([^\]]+)\] ?(.*)$")
_END = re.compile(r"Job (succeeded|failed)\s*$")


@dataclass(frozen=True)
class Job:
    """One job as act ran it."""

    id: str
    """The job id in mlsecops.yml (`code-scan`), or act's label when it maps to none."""
    start: float
    """Seconds after act started: the job's first line."""
    end: float
    """Seconds after act started: its `Job succeeded/failed` line."""
    result: str
    """succeeded or failed."""

    @property
    def seconds(self) -> float:
        return self.end - self.start


def pipeline_jobs(workflow: Path = PIPELINE) -> dict[str, tuple[str, tuple[str, ...]]]:
    """job id -> (display name, needs) from the reusable workflow."""
    import yaml

    doc = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for job_id, job in doc["jobs"].items():
        needs = job.get("needs") or ()
        out[job_id] = (str(job.get("name") or job_id), tuple([needs] if isinstance(needs, str) else needs))
    return out


def _job_id(label: str, names: Mapping[str, str]) -> str:
    """act labels a job of a called workflow `<workflow>/<caller job>/<display name>`: back to its job id."""
    shown = label.rsplit("/", 1)[-1].strip()
    for job_id, name in names.items():
        if shown in (name, job_id):
            return job_id
    for job_id, name in names.items():  # a display name built from an expression: match its literal head
        head = name.split("${{", 1)[0].strip()
        if "${{" in name and head and shown.startswith(head):
            return job_id
    return shown


def parse(log: str, names: Mapping[str, str]) -> dict[str, Job]:
    """Jobs from act's stamped output: first line = start, `Job succeeded/failed` = end."""
    first: dict[str, float] = {}
    done: dict[str, tuple[float, str]] = {}
    for line in log.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        t, label, rest = float(m.group(1)), m.group(2), m.group(3)
        first.setdefault(label, t)
        if end := _END.search(rest):
            done[label] = (t, end.group(1))
    jobs: dict[str, Job] = {}
    for label, (t, result) in done.items():
        job_id = _job_id(label, names)
        jobs[job_id] = Job(job_id, first[label], t, result)
    return jobs


def critical_path(jobs: Mapping[str, Job], needs: Mapping[str, Sequence[str]]) -> list[Job]:
    """From the job that ended last, back through the need that ended last: the chain that set the run's end."""
    if not jobs:
        return []
    path = [max(jobs.values(), key=lambda j: j.end)]
    while True:
        before = [jobs[n] for n in needs.get(path[-1].id, ()) if n in jobs]
        if not before:
            return path[::-1]
        path.append(max(before, key=lambda j: j.end))


def check(jobs: Mapping[str, Job], returncode: int) -> str | None:
    """Why the run did not end the way the e2e test expects, or None."""
    for job_id, want in EXPECT.items():
        got = jobs.get(job_id)
        if got is None or got.result != want:
            return f"{job_id}: {got.result if got else 'did not run'}, expected {want}"
    return None if returncode != 0 else "act exited 0, but the example's gate must fail"


def run_once(work: Path) -> tuple[float, dict[str, Job], str | None]:
    """One act run of the example; (act's wall seconds, jobs, why it failed or None)."""
    from tests.e2e.act_harness import run_workflow
    from tests.e2e.conftest import OFFLINE, WORKFLOW, prepare_consumer

    consumer = prepare_consumer(work)
    run = run_workflow(consumer, consumer / WORKFLOW, work, variables=dict(OFFLINE), timeout=1800,
                       wrapper=(sys.executable, "-I", "-c", _STAMP))
    names = {job_id: name for job_id, (name, _) in pipeline_jobs().items()}
    jobs = parse(run.log, names)
    return run.seconds, jobs, check(jobs, run.returncode)


def _span(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:7.1f}"
    return f"{statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})"


def report(runs: Sequence[tuple[float, dict[str, Job]]], needs: Mapping[str, Sequence[str]]) -> str:
    """The per-job table (medians over runs) and the critical path of the median run."""
    lines = [f"act run, whole process: {_span([w for w, _ in runs])} s"]
    order = sorted(runs[0][1].values(), key=lambda j: (j.start, j.id))
    lines.append(f"{'job':<16} {'start s':>9} {'wall s':>9}  result")
    for job in order:
        starts = [r[1][job.id].start for r in runs if job.id in r[1]]
        walls = [r[1][job.id].seconds for r in runs if job.id in r[1]]
        lines.append(f"{job.id:<16} {_span(starts):>9} {_span(walls):>9}  {job.result}")
    median_run = sorted(runs, key=lambda r: r[0])[(len(runs) - 1) // 2]
    path = critical_path(median_run[1], needs)
    lines.append("critical path (the need that ended last, back from the job that ended last):")
    previous_end = 0.0
    for job in path:
        lines.append(f"  {job.id:<16} waits {job.start - previous_end:6.1f} s, runs {job.seconds:6.1f} s, "
                     f"ends at {job.end:6.1f} s")
        previous_end = job.end
    own = sum(j.seconds for j in path)
    lines.append(f"  jobs on it: {own:.1f} s of {path[-1].end:.1f} s; the rest is waiting between jobs"
                 if path else "  (no jobs)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=1, help="act runs (default 1; each takes minutes)")
    ap.add_argument("--keep", type=Path, default=None, help="keep each run's folder (act.log) under DIR")
    args = ap.parse_args(argv)
    print(h.machine())
    print(f"examples/ml-project under act, mlsecops.yml of {REPO}; {args.runs} run(s); "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    needs = {job_id: deps for job_id, (_, deps) in pipeline_jobs().items()}
    good: list[tuple[float, dict[str, Job]]] = []
    for i in range(args.runs):
        base = args.keep or Path(tempfile.mkdtemp(prefix="mlsec-workflow-bench-"))
        work = base / f"run-{i}"
        work.mkdir(parents=True)
        seconds, jobs, error = run_once(work)
        if error is not None:
            print(f"run {i + 1}: FAILED ({error}); log: {work / 'act.log'}", flush=True)
            continue
        print(f"run {i + 1}: {seconds:.1f} s, {len(jobs)} jobs", flush=True)
        good.append((seconds, jobs))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if not good:
        print("no run ended as expected: no figures")
        return 1
    print(report(good, needs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
