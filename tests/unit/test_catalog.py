"""The stage catalog is the one source of truth: these fail when the CLI registry, the action folders, the
README's stage table, the docs or the reusable workflows disagree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mlsec_actions import catalog, pipeline, stages
from mlsec_actions.stages import COMMANDS, PLANNED, STAGES

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = {name: REPO / ".github" / "workflows" / f"{name}.yml" for name in catalog.PIPELINES}
_USES = re.compile(r"^(?:\$|\.)/actions/([a-z0-9-]+)$")

# Jobs that run no stage but serve the pipeline (the workflows' run-id job makes the run's id). Actions whose
# folder starts with "_" (_setup, _trusted) are such helpers too.
HELPER_JOBS = frozenset({"run-id"})
# Built stages of a pipeline that its reusable workflow does not run yet (the "workflows" helper's to add).
# A test below fails if a pair here is no longer missing, so this list can only shrink.
NOT_YET_IN_WORKFLOW = frozenset({("mlsecops", "verify")})


def test_catalog_rows_are_well_formed() -> None:
    ids = [s.id for s in catalog.CATALOG]
    assert len(ids) == len(set(ids))
    for s in catalog.CATALOG:
        assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", s.id), s.id
        assert s.summary and s.tools
        assert set(s.needs) <= set(ids) and s.id not in s.needs, s.id
        assert s.category == f"mlsec/{s.id}"
    for name in catalog.PIPELINES:
        rows = catalog.pipeline(name)
        order = [min(s.numbers(name)) for s in rows]
        assert order == sorted(order)
        # A stage's needs that are in the same pipeline come before it.
        for s in rows:
            for need in s.needs:
                row = catalog.by_id(need)
                assert row is not None
                if row.numbers(name):
                    assert min(row.numbers(name)) <= min(s.numbers(name)), (name, s.id, need)
    with pytest.raises(ValueError, match="unknown pipeline"):
        catalog.pipeline("nope")


def test_cli_registry_is_the_catalog() -> None:
    stage_ids = [s.id for s in STAGES if s not in COMMANDS]
    assert stage_ids == [s.id for s in catalog.implemented()]
    assert list(PLANNED) == [s.id for s in catalog.planned()]
    assert not {c.id for c in COMMANDS} & catalog.stage_ids()  # helper commands are not stages
    assert all(not c.listed for c in COMMANDS)
    assert [s.id for s in STAGES] == list(stages.STAGE_IDS)  # every module defines the STAGE it is registered as
    assert all(stages.summary(c.id) == c.summary for c in COMMANDS)
    assert all(stages.summary(s.id) == catalog.by_id(s.id).summary for s in STAGES if s not in COMMANDS)  # type: ignore[union-attr]


def test_registry_disagreeing_with_the_catalog_fails_on_import(monkeypatch: pytest.MonkeyPatch) -> None:
    first = stages._IMPLEMENTATIONS[0].replace("_", "-")
    monkeypatch.setattr(stages, "_IMPLEMENTATIONS", (*stages._IMPLEMENTATIONS, "no_such_stage"))
    with pytest.raises(RuntimeError, match=r"not implemented in the catalog \['no-such-stage'\]"):
        stages._stage_modules()
    monkeypatch.setattr(stages, "_IMPLEMENTATIONS", stages._IMPLEMENTATIONS[1:-1])
    with pytest.raises(RuntimeError, match=rf"without a module \['{first}'\]"):
        stages._stage_modules()


def test_action_folders_are_the_implemented_stages() -> None:
    folders = {p.name for p in (REPO / "actions").iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert folders == {s.id for s in catalog.implemented()}
    for name in folders:
        assert (REPO / "actions" / name / "action.yml").is_file(), name


def _readme_stage_rows() -> list[list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Stages\n", 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in section.splitlines() if ln.startswith("| `")]


def _numbers(n: tuple[int, ...]) -> str:
    return ", ".join(map(str, n)) or "–"


def test_readme_stage_table_is_the_catalog() -> None:
    rows = _readme_stage_rows()
    assert [r[0].strip("`") for r in rows] == [s.id for s in catalog.implemented()]
    for row in rows:
        info = catalog.by_id(row[0].strip("`"))
        assert info is not None
        assert row[1] == f"{_numbers(info.ml)} / {_numbers(info.dev)}", row
        for tool in info.tools:
            if tool != "in-house":
                assert tool.lower() in row[3].lower(), (info.id, tool, row[3])
    text = (REPO / "README.md").read_text(encoding="utf-8")
    listed = re.search(r"not listed here \(([^)]*)\)", text)
    if not PLANNED:  # every stage built: the README says so instead of listing none
        assert listed is None and "Every stage of the design's stage map is built" in text
        return
    assert listed is not None
    assert [p.strip() for p in listed.group(1).split(",")] == list(PLANNED)


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _headings(path: Path) -> list[str]:
    return [_slug(m.group(2)) for m in re.finditer(r"^(#+) (.+)$", path.read_text(encoding="utf-8"), re.M)]


def test_docs_stage_headings_are_catalog_ids() -> None:
    stages_md = REPO / "docs" / "stages.md"
    level2 = [_slug(m.group(1)) for m in re.finditer(r"^## (.+)$", stages_md.read_text(encoding="utf-8"), re.M)]
    known = catalog.stage_ids() | {c.id for c in COMMANDS}
    assert level2 and set(level2) <= known, set(level2) - known
    # Every built stage is documented: a heading whose anchor is its id, or a page of its own.
    docs = list((REPO / "docs").glob("*.md"))
    anchors = {h for d in docs for h in _headings(d)}
    for s in catalog.implemented():
        assert s.id in anchors or (REPO / "docs" / f"{s.id}.md").is_file(), s.id


def _workflow_jobs(name: str) -> dict[str, dict[str, object]]:
    doc = yaml.safe_load(WORKFLOWS[name].read_text(encoding="utf-8"))
    jobs = doc["jobs"]
    assert isinstance(jobs, dict)
    return jobs


def _job_stages(job: dict[str, object]) -> list[str]:
    out = []
    for step in job.get("steps") or []:  # type: ignore[attr-defined]
        match = _USES.match(str(step.get("uses", "")))
        if match:
            out.append(match.group(1))
    return out


def _needs(job: dict[str, object]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)  # type: ignore[call-overload]


@pytest.mark.parametrize("name", catalog.PIPELINES)
def test_workflow_jobs_map_to_catalog_stages(name: str) -> None:
    jobs = _workflow_jobs(name)
    in_pipeline = {s.id for s in catalog.pipeline(name)}
    ran: dict[str, str] = {}
    for job_id, job in jobs.items():
        stages = _job_stages(job)
        if job_id in HELPER_JOBS:
            assert not stages, f"{name}.yml helper job {job_id} runs a stage"
            continue
        # Convention: a job runs catalog stages through their actions, and is named after one of them
        # (`code-scan`, `gate-4` or `gate-pre-train` for a stage in several positions, `sbom-sign` for two).
        assert stages, f"{name}.yml job {job_id} runs no stage action"
        for stage in stages:
            info = catalog.by_id(stage)
            assert info is not None and info.implemented, f"{name}.yml {job_id}: {stage} is not a built stage"
            # A stage of every pipeline (notify: "all" in the stage map) has no stage numbers and may run in any.
            assert stage in in_pipeline or not (info.ml or info.dev), \
                f"{name}.yml {job_id}: {stage} is not in the {name} pipeline"
            ran.setdefault(stage, job_id)
        assert any(job_id == s or job_id.startswith(f"{s}-") for s in stages), (name, job_id, stages)
    implemented = {s.id for s in catalog.pipeline(name) if s.implemented}
    missing = {(name, s) for s in implemented - set(ran)}
    assert missing <= NOT_YET_IN_WORKFLOW, f"built stages without a job or step in {name}.yml: {missing}"
    assert not {p for p in NOT_YET_IN_WORKFLOW if p[0] == name} - missing, "now in the workflow: shrink the list"
    # What a stage needs runs before it: in an earlier step of its job, or in a job it (transitively) needs.
    for job_id, job in jobs.items():
        before = _upstream(jobs, job_id)
        stages = _job_stages(job)
        for i, stage in enumerate(stages):
            for need in catalog.by_id(stage).needs:  # type: ignore[union-attr]
                if need in ran:
                    assert need in stages[:i] or ran[need] in before, (name, job_id, stage, need)


def _upstream(jobs: dict[str, dict[str, object]], job_id: str) -> set[str]:
    seen: set[str] = set()
    todo = _needs(jobs[job_id])
    while todo:
        j = todo.pop()
        if j not in seen:
            seen.add(j)
            todo.extend(_needs(jobs[j]))
    return seen


@pytest.mark.parametrize("name", catalog.PIPELINES)
def test_workflow_gate_waits_for_every_scan_job(name: str) -> None:
    jobs = _workflow_jobs(name)
    scans = {s.id for s in catalog.pipeline(name) if s.implemented and s.kind is catalog.Kind.SCAN}
    for job_id, job in jobs.items():
        if any(catalog.by_id(s).kind is catalog.Kind.GATE for s in _job_stages(job)):  # type: ignore[union-attr]
            # A gate job gate-<N> waits for every scan that can run before it: not one that needs a stage at N or
            # later (gate-4 cannot wait for evaluate, which needs train, stage 5).
            checkpoint = int(job_id.rsplit("-", 1)[1]) if re.fullmatch(r"gate-\d+", job_id) else 99
            before = {s for s in scans if not any(min(catalog.by_id(n).numbers(name) or (0,)) >= checkpoint  # type: ignore[union-attr]
                                                   for n in catalog.by_id(s).needs)}  # type: ignore[union-attr]
            scan_jobs = {j for j, other in jobs.items() if set(_job_stages(other)) & before}
            assert scan_jobs <= _upstream(jobs, job_id), (name, job_id)


def test_run_plan_and_catalog_agree_for_every_pipeline() -> None:
    for name in catalog.PIPELINES:
        p = pipeline.plan(Path("/p"), Path("/o"), name)
        implemented = {s.id for s in catalog.pipeline(name) if s.implemented}
        assert set(p.scans) | {p.gate, p.sbom, p.sign} | set(p.not_local) == implemented
        assert set(p.unavailable) == {s.id for s in catalog.pipeline(name)} - implemented
