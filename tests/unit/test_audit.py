"""Org-wide audit planning and merging (src/mlsec_actions/audit.py, docs/audit.md); hostile names and results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions import audit, cli
from mlsec_actions.errors import UsageError


def test_a_list_becomes_targets_in_order_without_duplicates() -> None:
    got = audit.parse_targets("acme/models, acme/service@release\nacme/models\n  other-org/x.y_z  ")
    assert got == [audit.Target("acme/models"), audit.Target("acme/service", "release"),
                   audit.Target("other-org/x.y_z")]
    assert [t.slot for t in got] == ["acme--models", "acme--service--release", "other-org--x.y_z"]
    assert got[1].artifact == "mlsec-audit-acme--service--release"


@pytest.mark.parametrize("entry", ["acme", "acme/", "/x", "acme/x/y", "-acme/x", "acme-/x", "ac--me/x", "a/..", "a/.",
                                   "acme/x;rm", "acme/$(id)", "a" * 40 + "/x", "acme/" + "x" * 101, "acme/x@",
                                   "acme/x@../../etc", "acme/x@-rf", "acme/x@a b", "acme/x@/abs", "acme/x@v1/",
                                   "acme/x\u200b", "::error::x/y"])
def test_a_bad_entry_is_refused_naming_it(entry: str) -> None:
    with pytest.raises(UsageError) as err:
        audit.parse_targets(f"acme/ok, {entry}")
    assert "--repositories" in str(err.value)


def test_names_that_differ_only_in_case_are_refused() -> None:
    with pytest.raises(UsageError, match="share the results name acme--x"):
        audit.parse_targets("acme/x Acme/X")


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(UsageError, match="no repository"):
        audit.parse_targets(" ,\n ")


def test_chunks_split_evenly_and_a_matrix_holds_at_most_256() -> None:
    targets = [audit.Target(f"acme/r{i}") for i in range(600)]
    parts = [audit.chunk(targets, i, 3) for i in (1, 2, 3)]
    assert [len(p) for p in parts] == [200, 200, 200] and [t for p in parts for t in p] == targets
    assert len(audit.chunk(targets[:256], 1, 1)) == 256
    with pytest.raises(UsageError, match="at most 256 jobs per matrix; split the list over at least 3 runs"):
        audit.chunk(targets, 1, 2)
    with pytest.raises(UsageError, match="between 1 and 3"):
        audit.chunk(targets, 4, 3)
    assert audit.chunk(targets[:5], 2, 2) == targets[3:5]


def test_plan_prints_the_matrix(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    assert cli.main(["audit-plan", "--repositories", "acme/a acme/b@v2"]) == 0
    matrix = json.loads(capsys.readouterr().out)
    assert matrix == {"include": [{"repository": "acme/a", "ref": "", "slot": "acme--a",
                                   "artifact": "mlsec-audit-acme--a"},
                                  {"repository": "acme/b", "ref": "v2", "slot": "acme--b--v2",
                                   "artifact": "mlsec-audit-acme--b--v2"}]}
    assert "count=2" in out.read_text(encoding="utf-8")
    assert cli.main(["audit-plan", "--repositories", "acme/a@.."]) == 2


def _verdict(folder: Path, doc: object) -> None:
    folder.mkdir(parents=True)
    (folder / "verdict.json").write_text(json.dumps(doc), encoding="utf-8")


HOSTILE = "<img src=x onerror=alert(1)> | ::set-output name=x::y [link](https://evil.example)"


def test_merge_fails_closed_on_missing_and_unreadable_results(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _verdict(results / "mlsec-audit-acme--ok", {"verdict": "pass", "violations": [], "counts": {
        "code-scan": {"critical": 0, "high": 0, "medium": 2, "low": 1, "info": 0}}, "coverage": {"total": 3}})
    _verdict(results / "mlsec-audit-acme--bad", {"verdict": "fail", "violations": [{"kind": "threshold"}] * 2,
                                                  "counts": {"a": {"high": 4, "low": True}, "b": {"high": -5}}})
    _verdict(results / "mlsec-audit-acme--odd", {"verdict": HOSTILE})
    (results / "mlsec-audit-acme--junk").mkdir()
    (results / "mlsec-audit-acme--junk" / "verdict.json").write_text("{not json", encoding="utf-8")
    _verdict(results / "mlsec-audit-acme--unplanned", {"verdict": "pass"})
    targets = audit.parse_targets("acme/ok acme/bad acme/odd acme/junk acme/gone")
    rows = audit.merge(targets, results)
    assert [(r.target.repository, r.verdict) for r in rows] == [
        ("acme/ok", "pass"), ("acme/bad", "fail"), ("acme/odd", "missing"), ("acme/junk", "missing"),
        ("acme/gone", "missing")]
    assert rows[0].counts == (0, 0, 2, 1, 0) and rows[0].gaps == 3
    assert rows[1].counts == (0, 4, 0, 0, 0) and rows[1].violations == 2  # booleans and negatives are not counts
    assert "not valid JSON" in rows[3].problem and "no results" in rows[4].problem
    assert not audit.passed(rows) and audit.to_json(rows)["verdict"] == "fail"
    assert audit.passed(rows[:1]) and not audit.passed([])


def test_hostile_text_is_escaped_in_the_summary_and_the_page(tmp_path: Path) -> None:
    target = audit.Target("acme/x")
    row = audit.Row(target, "missing", problem=HOSTILE)
    md = audit.markdown([row])
    note = md.splitlines()[-1]
    assert "<img" not in note and "::set-output" not in note and "](https://evil.example)" not in note
    assert note.count(" | ") == 9  # the finding's pipe is escaped: the row keeps its columns
    page = audit.page([row])
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page and "default-src 'none'" in page


def test_merge_command_writes_everything_then_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "results"
    _verdict(results / "mlsec-audit-acme--a", {"verdict": "pass"})
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    out = tmp_path / "merged"
    assert cli.main(["audit-merge", str(results), "--repositories", "acme/a", "--out", str(out)]) == 0
    assert cli.main(["audit-merge", str(results), "--repositories", "acme/a acme/b", "--out", str(out)]) == 3
    assert json.loads((out / "audit-verdict.json").read_text(encoding="utf-8"))["verdict"] == "fail"
    assert (out / "audit-summary.md").is_file() and (out / "audit-report.html").is_file()
    assert cli.main(["audit-merge", str(tmp_path / "nope"), "--repositories", "acme/a", "--out", str(out)]) == 2
    # With chunks, only this chunk's repositories must have results.
    assert cli.main(["audit-merge", str(results), "--repositories", "acme/a acme/b", "--chunks", "2", "--chunk", "1",
                     "--out", str(out)]) == 0
