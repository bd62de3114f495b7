"""Issue 9 acceptance, under act: the hostile repository as the consumer of both reusable workflows.

The tree of `hostile_repo.py` is committed as the consumer repository and runs through
examples/two-pipelines' workflow (mlsecops and devsecops side by side, as test_two_pipelines does), offline,
with a signing key, under `strace -f` over act and every process of every job. Checked over the act log,
the step summaries, the outputs, every file the jobs wrote (workspaces, runner temp) and every artifact:
no canary file is created, nothing outside the root is opened through a root (the consumer or a job's
workspace) and neither the outside file nor /etc/shadow is opened at all, no workflow command but our own
annotations appears in any log line, no planted secret or token appears in any output, and both gates are red.

Payloads git cannot carry: the FIFOs (`models/stuck.pkl`, `requirements-dev.txt`, `bombs/fifo.*`) and a file
with mode 000 are in the consumer's working folder, which the checkout stand-in copies into each job's
workspace with `cp -a` (FIFOs stay FIFOs, modes stay). The jobs run as root here, so mode 000 binds no reader:
it only shows that such a file changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlsec_actions.signing.key import generate
from tests.adversarial import observe
from tests.adversarial.hostile_repo import MARKER, HostileRepo, _pickle_global
from tests.adversarial.workflow_commands import commands_in
from tests.e2e.act_harness import ROOT, ActRun, git_init, run_workflow

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(name="e2e-act-b")]

TWO = ROOT / "examples" / "two-pipelines" / ".github" / "workflows" / "mlsec.yml"
WORKFLOW = Path(".github") / "workflows" / "mlsec.yml"
GATES = {"mlsecops": "gate before training", "devsecops": "gate before build"}
# act's log: `[workflow/job] ` then `  | text` for a line a step printed, or an icon and the command act read.
_PREFIX = re.compile(r"^\[[^\]]*\] ?")
_FILE_COMMANDS = ("::set-output:: ", "::add-path:: ", "::save-state:: ", "::set-env:: ")


@dataclass(frozen=True)
class HostileAct:
    """One act run of the hostile consumer and what it left."""

    repo: HostileRepo
    """The tree, its outside folder and the planted values."""
    run: ActRun
    """act's exit code, log and the stand-ins' records."""
    observed: observe.Observed
    """The log as the runner would read it, the outputs, summaries, written files and every open."""
    workspaces: tuple[Path, ...]
    """Each job's workspace (removed after the run; its paths are what the opens are judged against)."""
    pwned: tuple[Path, ...]
    """`PWNED` files any process opened (the tree's pre-commit hook and install payloads create one)."""


@dataclass(frozen=True)
class RunnerView:
    """act's log taken apart into what the runner would have read from each stream."""

    printed: str
    """What the steps printed, one line each as the runner reads them."""
    file_commands: str
    """What the steps wrote to GITHUB_OUTPUT and GITHUB_PATH (`name=value`, one a line)."""
    summaries: str
    """Every step summary (GITHUB_STEP_SUMMARY), one after the other."""


def runner_view(log: str) -> RunnerView:
    """act prints a plain line as `| text` and a workflow command it recognised with an icon before the command
    (`❗  ::error title=...::...`); file commands as `⚙  ::set-output:: k=v`; a step summary as `⚙  Summary - `
    and its first line. Lines without act's prefix continue the entry before (a summary, a step's script): they
    count as printed lines too (stricter than the runner, which never logs a summary)."""
    printed, files, summaries = [], [], []
    in_summary = False
    for line in log.splitlines():
        m = _PREFIX.match(line)
        if not m:
            printed.append(line)
            if in_summary:
                summaries.append(line)
            continue
        in_summary = False
        rest = line[m.end():].lstrip(" ")
        if rest.startswith("| "):
            printed.append(rest[2:])
            continue
        icon, _, after = rest.partition(" ")
        after = after.lstrip(" ")
        if after.startswith(_FILE_COMMANDS):
            files.append(after.split(" ", 1)[1])
        elif after.startswith("Summary - "):
            in_summary = True
            summaries.append(after.removeprefix("Summary - "))
            printed.append(summaries[-1])
        elif after.startswith("::") and icon and not icon.isascii():
            printed.append(after)
    return RunnerView("\n".join(printed), "\n".join(files), "\n".join(summaries))


_COPIED = re.compile(r"\| checkout stand-in: copied \S+ to (\S+)$", re.M)


def workspaces(log: str) -> tuple[Path, ...]:
    """Each job's workspace, as the checkout stand-in reported it."""
    return tuple(sorted({Path(os.path.normpath(dest)) for dest in _COPIED.findall(log)}))


def _tree_files(root: Path) -> dict[str, bytes]:
    """Regular files of the consumer by relative path (what a checkout brings), skipping the deep tree."""
    found = {}
    for folder, dirs, names in os.walk(root):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d not in ("d", ".git")]
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def _written(job: Path, tree: dict[str, bytes]) -> dict[Path, bytes]:
    """Every regular file under one job's folder that the checkout did not bring: our results, the runner temp
    files, act's step summaries and file commands. The tool venv and the checkout's `.git` are skipped."""
    out = {}
    for folder, dirs, names in os.walk(job):
        here = Path(folder)
        # act/actions holds act's copies of our actions (our code, not the run's output).
        dirs[:] = [d for d in dirs if not (d in ("mlsec-venv", ".git") or (d == "d" and here.name == "hostexecutor")
                                           or (d == "actions" and here.name == "act"))]
        for name in names:
            path = here / name
            if not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes()
            rel = path.relative_to(job).as_posix()
            if rel.startswith("hostexecutor/") and tree.get(rel.removeprefix("hostexecutor/")) == data:
                continue
            out[path] = data
    return out


@pytest.fixture(scope="module")
def hostile_act(hostile: HostileRepo, tmp_path_factory: pytest.TempPathFactory) -> HostileAct:
    root = hostile.root
    (root / WORKFLOW).parent.mkdir(parents=True, exist_ok=True)
    (root / WORKFLOW).write_text(TWO.read_text(encoding="utf-8"), encoding="utf-8")
    git_init(root)
    # Not committed: git carries no mode 000 (and no FIFO); the checkout stand-in copies the working folder.
    locked = root / "models" / "locked.pkl"
    locked.write_bytes(_pickle_global("os", "system"))
    locked.chmod(0)
    work = tmp_path_factory.mktemp("e2e-hostile")
    keys = work / "keys"
    keys.mkdir()
    generate(keys / "signing.pem", keys / "signing.pub")
    tree = _tree_files(root)
    seen: dict[str, dict[Path, bytes]] = {}

    def inspect(cache: Path) -> None:
        # act removes most jobs' folders when they end; what is left (the last jobs') is read as well.
        jobs = sorted(p.parent for p in cache.glob("*/hostexecutor"))
        files: dict[Path, bytes] = {}
        for job in jobs:
            files.update(_written(job, tree))
        seen["files"] = files

    strace_log = work / "strace.log"
    variables = {"MLSEC_VULN_DB": "skip", "MLSEC_SIGNING_BACKEND": "key"}
    run = run_workflow(root, root / WORKFLOW, work, variables=variables,
                       env={"ACTIONS_ID_TOKEN_REQUEST_TOKEN": hostile.env_secret},
                       secrets={"MLSEC_SIGNING_KEY": (keys / "signing.pem").read_text(encoding="utf-8"),
                                "GITHUB_TOKEN": hostile.env_secret},
                       trace=strace_log, inspect=inspect, timeout=1500)
    view = runner_view(run.log)
    files = dict(seen.get("files", {}))
    for path in sorted(run.record_dir.rglob("*")):  # every artifact and every SARIF upload-sarif received
        if path.is_file() and not path.is_symlink():
            files[path] = path.read_bytes()
    obs = observe.Observed(["act", "push", str(WORKFLOW)], run.returncode, view.printed, "", view.file_commands,
                           view.summaries, files, observe._parse_strace(strace_log))
    strace_log.unlink()  # ~100 MB; what the tests need is parsed
    print(f"hostile act run: {run.seconds:.1f} s, {len(obs.opened)} opens, {len(files)} files written")
    jobs = workspaces(run.log)
    written = [o.got for o in obs.opened if Path(o.got).name == "PWNED"]
    return HostileAct(hostile, run, obs, jobs, tuple(Path(p) for p in written))


def test_every_stage_job_ran_and_both_gates_are_red(hostile_act: HostileAct) -> None:
    run = hostile_act.run
    assert run.returncode != 0, run.log[-4000:]
    kinds, counted = {}, {}
    for pipeline, gate in GATES.items():
        assert run.job_result(f"{pipeline}/{gate}") == "failed", (pipeline, run.log[-4000:])
        verdict = json.loads((run.artifact(f"mlsec-gate-{pipeline}-4") / "gate-verdict.json").read_text("utf-8"))
        assert verdict["verdict"] == "fail"
        kinds[pipeline] = {v["kind"] for v in verdict["violations"]}
        counted[pipeline] = " ".join(v["message"] for v in verdict["violations"] if v["kind"] == "threshold")
    # Every tool finished (code-scan's trivy too: test_code_scan_finishes_on_the_checkout), so the gates are red on
    # findings alone: code-scan's in both pipelines (the planted secrets), model-scan's on the pickles in mlsecops.
    # The threshold message counts by stage (`N findings at severity high or above (max 0; code-scan: 12, ...)`).
    assert kinds == {"mlsecops": {"threshold"}, "devsecops": {"threshold"}}, kinds
    assert re.search(r"\bcode-scan: [1-9]", counted["devsecops"]), counted
    assert re.search(r"\bcode-scan: [1-9]", counted["mlsecops"]), counted
    assert re.search(r"\bmodel-scan: [1-9]", counted["mlsecops"]), counted
    assert not run.artifact("mlsec-signatures-mlsecops").exists(), "signed a hostile tree"
    assert not [p for p in hostile_act.observed.files if p.name.endswith(".sigstore.json")]
    # model-scan really ran on the tree (a shadowed module or the tree's modelscan settings would have emptied it).
    kept = run.artifact("mlsec-sarif-mlsecops-model-scan") / "model-scan.sarif"
    model_run = json.loads(kept.read_text(encoding="utf-8"))["runs"][0]
    assert model_run["results"] and all(i["executionSuccessful"] for i in model_run["invocations"])
    checkouts = (run.record_dir / "checkout.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(c)["job"] for c in checkouts) == ["code-scan", "code-scan", "data-scan", "gate-4",
                                                               "gate-4", "model-scan", "notebook-scan"]


def test_code_scan_finishes_on_the_checkout(hostile_act: HostileAct) -> None:
    """trivy scans a view of the checkout without `.git` (tools/trivy_view.py): the ~1,000-deep commit no longer
    keeps it busy past the timeout."""
    kept = hostile_act.run.artifact("mlsec-sarif-mlsecops-code-scan") / "code-scan.sarif"
    scan = json.loads(kept.read_text(encoding="utf-8"))["runs"][0]
    assert all(i["executionSuccessful"] for i in scan["invocations"]), scan["invocations"]
    assert "trivy/secret/github-pat" in {r["ruleId"] for r in scan["results"]}


def test_the_fifos_and_the_mode_000_file_reached_every_job(hostile_act: HostileAct) -> None:
    # What git cannot carry was in every job's workspace (the stand-in counts them after copying), and no process
    # opened a FIFO (an open without a writer blocks; strace records only opens that returned).
    checkouts = [json.loads(c) for c in (hostile_act.run.record_dir / "checkout.jsonl").read_text("utf-8").splitlines()]
    assert {(c["fifos"], c["mode_000"]) for c in checkouts} == {(4, 1)}, checkouts
    fifos = ("models/stuck.pkl", "requirements-dev.txt", "bombs/fifo.yml", "bombs/fifo.json")
    opened = [o for o in hostile_act.observed.opened if o.got.endswith(fifos)]
    assert opened == [], opened[:3]
    assert hostile_act.run.job_result("mlsecops/model-scan") == "succeeded", hostile_act.run.log[-4000:]


def test_no_hostile_code_ran(hostile_act: HostileAct) -> None:
    assert observe.canaries(hostile_act.repo) == []
    assert hostile_act.pwned == ()


def test_nothing_outside_a_root_was_read(hostile_act: HostileAct) -> None:
    obs, repo = hostile_act.observed, hostile_act.repo
    assert obs.opened, "strace saw no open at all"
    # Each job's workspace is a root too: the same check with it in the consumer's place.
    problems = [p for root in (repo.root, *hostile_act.workspaces)
                for p in observe.outside_reads(dataclasses.replace(repo, root=root), obs)]
    assert problems == [], "\n".join(problems)


def test_no_workflow_command_from_the_tree(hostile_act: HostileAct, monkeypatch: pytest.MonkeyPatch) -> None:
    # Links we write to a file of the scanned repository at its commit are ours (observe._our_link): the
    # consumer's repository as act names it, from its origin remote.
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "example-org/ml-project")
    problems = [*observe.injected_commands(hostile_act.observed), *observe.active_markdown(hostile_act.observed),
                *observe.sarif_links(hostile_act.observed)]
    assert problems == [], "\n".join(problems)
    # Not vacuous: the tree's names reached the log and the summaries, and our own annotations were read back.
    assert MARKER in hostile_act.observed.stdout and MARKER in hostile_act.observed.gh_summary
    assert "error" in {cmd for _, cmd in commands_in(hostile_act.observed.stdout)}
    assert "pwned" not in hostile_act.observed.gh_output


def test_no_planted_value_in_any_output(hostile_act: HostileAct) -> None:
    problems = observe.leaked_values(hostile_act.repo, hostile_act.observed)
    assert problems == [], "\n".join(problems)


def test_runner_view_gives_back_what_the_steps_printed() -> None:
    # No act run: act's log format for each kind of line, and the check seeing a command the tree injected.
    log = ("[wf/job]   | p\n"
           "[wf/job]   ❗  ::error title=pwned::X\n"
           "[wf/job]   ❗  ::error title=mlsec gate%3A threshold::3 findings\n"
           "[wf/job]   ⚙  ::set-output:: findings=3\n"
           "[wf/job]   ⚙  Summary - ### mlsec gate\n"
           "| a | b |\n"
           "[wf/job]   ✅  Success - Main gate [1s]\n")
    view = runner_view(log)
    ours = "::error title=mlsec gate%3A threshold::3 findings"
    assert view.printed.splitlines() == ["p", "::error title=pwned::X", ours, "### mlsec gate", "| a | b |"]
    assert view.file_commands == "findings=3"
    assert view.summaries == "### mlsec gate\n| a | b |"
    obs = observe.Observed([], 0, view.printed, "", view.file_commands, view.summaries)
    assert observe.injected_commands(obs) == ["stdout:2: '::error title=pwned::X'"]  # ours (line 3) passes
