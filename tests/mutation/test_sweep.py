"""The sweep's verdict: only survivors that equivalent.toml explains (by name and mutated line) pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.mutation import sweep

GROUP = sweep.Group("g", ("src/x.py",), ("tests/unit/test_x.py",))


def _results(folder: Path, *mutants: sweep.Mutant) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "g.json").write_text(json.dumps([m.__dict__ for m in mutants]))


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sweep, "SWEEP", tmp_path / "sweep")
    monkeypatch.setattr(sweep, "EQUIVALENT", tmp_path / "equivalent.toml")
    return tmp_path


def test_unexplained_and_stale_survivors_count_explained_ones_do_not(where: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _results(where / "sweep", sweep.Mutant("m.x__mutmut_1", "killed"),
             sweep.Mutant("m.x__mutmut_2", "survived", "a = None", "-a = b\n+a = None"),
             sweep.Mutant("m.x__mutmut_3", "survived", "c = 1", "-c = 0\n+c = 1"),
             sweep.Mutant("m.x__mutmut_4", "no tests", "d = 2", "-d = 3\n+d = 2"),
             sweep.Mutant("m.x__mutmut_5", "timeout"))
    (where / "equivalent.toml").write_text(
        '[[equivalent]]\nmutant = "m.x__mutmut_2"\nmutated = "a = None"\nwhy = "cache"\n'
        '[[equivalent]]\nmutant = "m.x__mutmut_3"\nmutated = "c = 2"\nwhy = "the code changed since"\n'
        '[[equivalent]]\nmutant = "m.x__mutmut_5"\nmutated = "e = 1"\nwhy = "renumbered since"\n')
    assert sweep.report((GROUP,)) == 2
    out = capsys.readouterr().out
    assert "g             5        2       3         1           2" in out
    assert "STALE equivalent.toml entry m.x__mutmut_3" in out
    assert "UNUSED equivalent.toml entry m.x__mutmut_5: the mutant is timeout ('e = 1')" in out
    assert "UNUSED equivalent.toml entry m.x__mutmut_1" not in out
    assert "SURVIVED (no tests) m.x__mutmut_4" in out and "SURVIVED (survived) m.x__mutmut_2" not in out


def test_all_explained_is_zero_and_a_group_not_run_is_shown(where: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _results(where / "sweep", sweep.Mutant("m.x__mutmut_1", "killed"))
    other = sweep.Group("h", ("src/y.py",), ())
    assert sweep.report((GROUP, other)) == 0
    assert "not run" in capsys.readouterr().out


def test_every_group_names_files_that_exist() -> None:
    for group in sweep.GROUPS:
        for rel in (*group.paths, *group.tests):
            assert (sweep.REPO / rel).exists(), f"{group.name}: {rel}"
    assert sweep.load_equivalent()  # the checked-in list parses


def test_the_ci_mutation_job_runs_every_group_once() -> None:
    import yaml

    workflow = yaml.safe_load((sweep.REPO / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
    job = workflow["jobs"]["mutation"]
    assert job["strategy"]["matrix"]["group"] == [g.name for g in sweep.GROUPS]
    assert job["strategy"]["fail-fast"] is False  # one group's survivors must not hide another's
    assert job["permissions"] == {"contents": "read"}


def test_a_report_of_named_groups_shows_only_those(where: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _results(where / "sweep", sweep.Mutant("m.x__mutmut_1", "killed"))
    assert sweep.main(["--report", "xml-safe"]) == 0
    out = capsys.readouterr().out
    assert "xml-safe" in out and "gate-rules" not in out


def test_a_group_sets_its_own_timeout() -> None:
    assert "timeout_multiplier = 15.0" in sweep._pyproject(GROUP)  # mutmut's own default, written out
    quick = sweep.Group("q", ("src/x.py",), (), timeout_multiplier=3.0)
    text = sweep._pyproject(quick)
    assert text.count("[tool.mutmut]") == 1 and "timeout_multiplier = 3.0" in text
