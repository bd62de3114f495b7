"""The fault matrix for the reusable workflows under act, generated from the stage catalog and the workflows.

Every scan stage that is a job of a reusable workflow, times every fault kind, in ONE act run: a test-only
consumer workflow calls each reusable workflow several times (`instance: f<n>`, so each call keeps its own
artifacts and gate), each stage job of each call with its own fault (`plan()`): every (stage, fault) pair in the
first workflow that runs the stage, and in each later workflow every stage job once more with each violation
kind, so each gate's wiring is exercised for every job it reads. A new stage job (or fault) is in the matrix
without a line here.

How a job learns its fault: each call passes its own config file (`.github/mlsec-faults/<call>.yml`, a real
mlsec config: it also gives the hung stage its short timeout), and `E2E_FAULT_PLAN` (act `--env`, the caller's
environment) names a plan file outside the tree: `<call> <job> <fault>` lines. The injection itself lives only in
the copy of this project that the act harness stages for this run: each stage module gets a wrapper around its
`scan` (appended to the copy, never to the source) that looks up (config stem, `GITHUB_JOB`) in the plan and then
points `MLSEC_<TOOL>_BIN` at a fake scanner, raises, kills the stage, or deletes its SARIF at exit. The workflows,
actions, install, stand-ins and gate are the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlsec_actions import catalog
from mlsec_actions.findings import StageResult
from mlsec_actions.sarif import write_sarif
from tests.faults.conftest import SCANNER_FAULTS, external_tools, make_fake, tool_env

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = {name: ROOT / ".github" / "workflows" / f"{name}.yml" for name in catalog.PIPELINES}
STALE_RUN_ID = "1-1-0123456789abcdef01234567"
HANG_TIMEOUT = 3


@dataclass(frozen=True)
class ActFault:
    """One fault kind as the gate of a reusable workflow must report it."""

    name: str
    """Fault id (also the fake scanner's file name)."""
    kind: str
    """The gate's violation kind for the faulted stage."""
    causes: tuple[str, ...]
    """Words one of which the violation's message must contain."""
    scanner: bool
    """Needs an external tool to fake (a stage with in-house analyzers only sits this one out)."""


FAULTS: tuple[ActFault, ...] = (
    *(ActFault(f.name, "tool-failed", f.causes, True) for f in SCANNER_FAULTS),
    ActFault("raises", "tool-failed", ("internal error",), False),
    ActFault("deleted", "stage-missing", ("no SARIF", "produced no", "missing"), False),
    ActFault("stale", "sarif-stale", ("not from this run", "stale", "run id"), False),
    # Not in issue 8's list, but a workflow-only fault: the SARIF swapped between the stage job and the gate.
    ActFault("swapped", "sarif-tampered", ("SHA-256", "sha256", "digest", "tampered", "changed"), False),
)


@dataclass(frozen=True)
class StageJob:
    """A scan stage's job in a reusable workflow."""

    workflow: str
    """Pipeline (workflow file stem)."""
    stage: catalog.StageInfo
    """The catalog row (job id == stage id)."""


@dataclass(frozen=True)
class Assignment:
    """One stage job of one call, and its fault (None: this stage cannot take the fault; it runs clean)."""

    call: str
    """Caller job id and config stem, `<workflow>-f<n>`."""
    job: StageJob
    """Which job."""
    fault: ActFault | None
    """What goes wrong in it."""

    @property
    def artifact(self) -> str:
        """The name the stage job keeps its SARIF under (mlsec-sarif-<ns>-<stage>)."""
        return f"mlsec-sarif-{self.call}-{self.job.stage.id}"


def _jobs(workflow: str) -> dict[str, Any]:
    doc = yaml.safe_load(WORKFLOWS[workflow].read_text(encoding="utf-8"))
    jobs: dict[str, Any] = doc["jobs"]
    return jobs


def _after_a_gate(stage: catalog.StageInfo) -> bool:
    """True when the stage needs a gate, directly or through what it needs (evaluate needs train, which needs the
    first gate): under act it runs only after a green first gate, which a faulted call never has. Those stages are
    faulted at stage level and through `mlsec run` (tests/faults/test_stage_faults.py, test_train_faults.py)."""
    todo, seen = list(stage.needs), set()
    while todo:
        need = todo.pop()
        if need == "gate":
            return True
        row = catalog.by_id(need)
        if need not in seen and row is not None:
            seen.add(need)
            todo.extend(row.needs)
    return False


def stage_jobs(workflow: str) -> tuple[StageJob, ...]:
    """The workflow's jobs that are implemented scan stages before the first gate, in file order."""
    scans = {s.id: s for s in catalog.implemented() if s.kind is catalog.Kind.SCAN and not _after_a_gate(s)}
    return tuple(StageJob(workflow, scans[j]) for j in _jobs(workflow) if j in scans)


def gate_job(workflow: str, stage_id: str) -> tuple[str, str]:
    """(job id, display name) of the first gate job that needs the stage's job (the one that must go red)."""
    for job_id, job in _jobs(workflow).items():
        needs = job.get("needs") or []
        if any(str(s.get("uses", "")).endswith("/actions/gate") for s in job.get("steps") or []) and (
                stage_id in ([needs] if isinstance(needs, str) else needs)):
            return job_id, str(job.get("name", job_id))
    raise AssertionError(f"{workflow}.yml: no gate job needs {stage_id}")


def _applies(fault: ActFault, job: StageJob) -> bool:
    return not fault.scanner or bool(external_tools(job.stage))


def plan() -> tuple[Assignment, ...]:
    """Every (scan stage, fault) once, in the first workflow that runs the stage as a job; and in every workflow,
    every stage job once with each violation kind (its gate's wiring for that job: digests, expected stages,
    artifact names). A workflow gets as many calls as its busiest job has faults; in call n the k-th job takes
    the ((n + k) mod len)-th of its own list, so no job idles while another still has faults to take."""
    out: list[Assignment] = []
    covered: set[tuple[str, str]] = set()
    first_call = 0  # instance numbers run on across workflows: code-scan's category suffix is the instance
    for workflow in catalog.PIPELINES:
        jobs = stage_jobs(workflow)
        todo: dict[StageJob, list[ActFault]] = {}
        for job in jobs:
            kinds_seen: set[str] = set()
            mine = []
            for fault in FAULTS:
                if not _applies(fault, job):
                    continue
                if (job.stage.id, fault.name) not in covered or fault.kind not in kinds_seen:
                    mine.append(fault)
                    kinds_seen.add(fault.kind)
            todo[job] = mine
        rounds = max((len(v) for v in todo.values()), default=0)
        for n in range(rounds):
            for k, job in enumerate(jobs):
                mine = todo[job]  # n runs over at least len(mine) consecutive values: every entry comes up
                fault = mine[(n + k) % len(mine)] if mine else None
                if fault is not None:
                    covered.add((job.stage.id, fault.name))
                out.append(Assignment(f"{workflow}-f{first_call + n}", job, fault))
        first_call += rounds
    return tuple(out)


def calls(assignments: tuple[Assignment, ...]) -> dict[str, list[Assignment]]:
    got: dict[str, list[Assignment]] = {}
    for a in assignments:
        got.setdefault(a.call, []).append(a)
    return got


def consumer_workflow(assignments: tuple[Assignment, ...]) -> str:
    """The test-only caller: each reusable workflow once per fault kind, each call with its own config."""
    lines = ["name: mlsec-faults", "on: push", "permissions: {}", "jobs:"]
    for call, members in calls(assignments).items():
        workflow, instance = members[0].job.workflow, call.rsplit("-", 1)[1]
        lines += [f"  {call}:",
                  f"    uses: mlsec-actions/mlsec-actions/.github/workflows/{workflow}.yml@v1",
                  "    permissions: {contents: read, security-events: write, actions: read, id-token: write}",
                  "    with:",
                  "      path: .",
                  "      vuln-db: skip",
                  f"      instance: {instance}",
                  f"      config: .github/mlsec-faults/{call}.yml",
                  "      policy: .github/mlsec-faults/policy.yml"]
    return "\n".join(lines) + "\n"


def consumer_files(assignments: tuple[Assignment, ...]) -> dict[str, str]:
    """The consumer repository's files besides its workflow: configs, a lenient policy, a tiny project."""
    files = {".github/mlsec-faults/policy.yml": "version: 1\nthresholds: []\n", "app.py": "print('hello')\n"}
    for call, members in calls(assignments).items():
        files[f".github/mlsec-faults/{call}.yml"] = "".join(
            f"{a.job.stage.id}:\n  timeout: {HANG_TIMEOUT if a.fault and a.fault.name == 'hangs' else 300}\n"
            for a in members)
    return files


def write_stale_sarifs(consumer: Path, assignments: tuple[Assignment, ...]) -> None:
    """A clean SARIF of an earlier run where each stage job writes its own, committed as a careless (or hostile)
    repository could: a stage that runs overwrites it, one that dies before writing leaves it for the gate."""
    for stage in {a.job.stage.id for a in assignments}:
        write_sarif(StageResult(stage), consumer / "mlsec-results" / f"{stage}.sarif", run_id=STALE_RUN_ID)


def write_plan(folder: Path, assignments: tuple[Assignment, ...]) -> tuple[Path, Path]:
    """The plan file and the fake scanners' folder (both outside the consumer's tree)."""
    fakes = folder / "fakes"
    fakes.mkdir(parents=True)
    for fault in SCANNER_FAULTS:
        make_fake(fakes, fault.name, fault.body)  # fakes/fake-<fault>; "missing" is never created
    path = folder / "plan.txt"
    path.write_text("".join(f"{a.call} {a.job.stage.id} {a.fault.name if a.fault else 'none'}\n"
                            for a in assignments), encoding="utf-8")
    return path, fakes


_INJECTION = '''

# ---- e2e fault injection: appended by tests/faults/act_matrix.py to the act harness's staged copy only ----
def _e2e_faulted(real_scan):  # type: ignore[no-untyped-def]
    import atexit
    import os
    import signal
    from pathlib import Path

    tools = {tools!r}
    chosen: list[str] = []

    def wrapper(ctx):  # type: ignore[no-untyped-def]
        if not chosen:
            key = (Path(os.environ.get("MLSEC_CONFIG", "")).stem, os.environ.get("GITHUB_JOB", ""))
            lines = Path(os.environ["E2E_FAULT_PLAN"]).read_text().splitlines()
            chosen.extend(f for c, j, f in (line.split() for line in lines) if (c, j) == key)
            chosen.append("none")
            fakes = Path(os.environ["E2E_FAULT_BIN"])
            for tool in tools:
                os.environ.pop(tool, None)
                if chosen[0] in {scanner!r}:
                    os.environ[tool] = str(fakes / f"fake-{{chosen[0]}}")
            if chosen[0] == "deleted":
                sarif = Path(ctx.args.sarif)
                atexit.register(lambda: sarif.unlink(missing_ok=True))
        if chosen[0] == "raises":
            raise RuntimeError("injected fault: the stage raises")
        if chosen[0] == "stale":
            os.kill(os.getpid(), signal.SIGKILL)
        return real_scan(ctx)
    return wrapper


scan = _e2e_faulted(scan)
'''


def inject(staged: Path) -> None:
    """Append the fault wrapper to every scan stage module of the staged copy (the act run installs that)."""
    scanner = sorted(f.name for f in SCANNER_FAULTS)
    for stage in (s for s in catalog.implemented() if s.kind is catalog.Kind.SCAN):
        module = staged / "src" / "mlsec_actions" / "stages" / f"{stage.id.replace('-', '_')}.py"
        tools = [tool_env(t) for t in external_tools(stage)]
        module.write_text(module.read_text(encoding="utf-8") + _INJECTION.format(tools=tools, scanner=scanner),
                          encoding="utf-8")
