"""Provenance and coverage verdict texts in full, at the function level (fast; for the mutation sweep):
each violation names the file, the stage and what was expected, and the coverage section adds up."""

from __future__ import annotations

import pytest

from mlsec_actions.errors import InputError
from mlsec_actions.gate import coverage as cov
from mlsec_actions.gate import provenance as prov
from mlsec_actions.gate.input import InputFile, RunInput
from mlsec_actions.gate.rules import Violation


def _run(props: dict[str, object]) -> RunInput:
    return RunInput(source="out/c.sarif", stage="code-scan", tools=(), properties=props, hits=[])


def test_digest_status() -> None:
    assert prov.DigestCheck("n", "a", None).status == "missing"
    assert prov.DigestCheck("n", "a", "a").status == "ok"
    assert prov.DigestCheck("n", "a", "b").status == "mismatch"


def test_freshness_needs_exactly_this_string() -> None:
    assert prov.is_fresh({}, None) and prov.is_fresh({"mlsec-run-id": "old"}, None)
    assert prov.is_fresh({"mlsec-run-id": "r1"}, "r1")
    assert not prov.is_fresh({"mlsec-run-id": "r2"}, "r1") and not prov.is_fresh({}, "r1")


def test_stale_names_the_file_the_stage_and_both_ids() -> None:
    assert prov.stale(_run({"mlsec-run-id": "x" * 100}), "now") == Violation(
        "sarif-stale", f"out/c.sarif: stage code-scan: SARIF carries run id {'x' * 80!r}, this run is 'now'; "
        "a file from another run is not evidence of this one", "run-id", "code-scan", "out/c.sarif")
    assert "SARIF carries no run id, this run" in prov.stale(_run({}), "now").message
    assert "SARIF carries run id '7', this run" in prov.stale(_run({"mlsec-run-id": 7}), "now").message


def test_missing_stages_say_where_the_other_run_s_files_are() -> None:
    seen = {"a": ["1.sarif", "2.sarif", "3.sarif", "4.sarif"], "c": []}
    assert prov.missing_stages(("a", "b", "c", "d"), {"d"}, seen, "r") == [
        Violation("stage-missing", "expected stage a: only SARIF from another run (1.sarif, 2.sarif, 3.sarif; "
                  "this run is 'r')", "expect-stage", "a"),
        Violation("stage-missing", "expected stage b: no SARIF run at all", "expect-stage", "b"),
        Violation("stage-missing", "expected stage c: no SARIF run at all", "expect-stage", "c")]


def test_digest_checks_name_file_stage_and_both_digests() -> None:
    files = [InputFile("root/a.sarif", "aa", "a.sarif"), InputFile("root/s/b.sarif", "", "s/b.sarif"),
             InputFile("root/c.sarif", "cc", "c.sarif")]
    stages = {"root/a.sarif": ["code-scan"], "root/s/b.sarif": ["x", "y"]}
    checks, violations = prov.check_digests(
        [("a.sarif", "00"), ("s/b.sarif", "11"), ("gone.sarif", "22"), ("c.sarif", "cc")], "root", files, stages)
    assert checks == [prov.DigestCheck("a.sarif", "00", "aa"), prov.DigestCheck("s/b.sarif", "11", ""),
                      prov.DigestCheck("gone.sarif", "22", None), prov.DigestCheck("c.sarif", "cc", "cc")]
    tail = "; it was changed or replaced after the stage ran"
    assert violations == [
        Violation("sarif-tampered", "root/a.sarif (stage code-scan): sha256 aa differs from the 00 its stage recorded"
                  + tail, "sarif-digest", "code-scan", "root/a.sarif"),
        Violation("sarif-tampered", "root/s/b.sarif (stage x, y): sha256 (unreadable) differs from the 11 its stage "
                  "recorded" + tail, "sarif-digest", None, "root/s/b.sarif"),
        Violation("sarif-tampered", "root/gone.sarif: no such SARIF file under root, but a stage recorded sha256 22"
                  + tail, "sarif-digest", None, "")]


def test_gaps_from_the_property_and_the_notifications_merge_once() -> None:
    props = {"mlsec-coverage": {"total": 5, "gaps": [
        {"tool": "t", "kind": "file-skipped", "detail": "a: big", "path": "a"},
        {"tool": "t", "kind": "file-skipped", "detail": "a: big"}]}}
    notes = [("t", "mlsec/coverage/file-skipped", "t: not covered: a: big"),
             ("t", "t/notice", "t: other"),
             ("t", "mlsec/coverage/", "t: not covered: what"),
             ("u", "mlsec/coverage/file-skipped", "u: not covered: a: big")]
    gaps, total = cov.read_run_gaps(props, notes, "s")
    assert gaps == (cov.Gap("t", "file-skipped", "a: big", "a"), cov.Gap("t", "file-skipped", "a: big"),
                    cov.Gap("t", "unknown", "what"), cov.Gap("u", "file-skipped", "a: big"))
    assert total == 5
    assert cov.read_run_gaps({}, notes, "s")[1] == 3  # no property: the notifications are the count


@pytest.mark.parametrize(("raw", "problem"), [
    ([], "run.properties.mlsec-coverage is not an object with a 'gaps' array"),
    ({"gaps": {}}, "run.properties.mlsec-coverage is not an object with a 'gaps' array"),
    ({"total": True}, "run.properties.mlsec-coverage.total is not a count"),
    ({"total": -1}, "run.properties.mlsec-coverage.total is not a count"),
    ({"total": "1"}, "run.properties.mlsec-coverage.total is not a count"),
    ({"gaps": [{"tool": "t", "kind": "k", "detail": "d"}, "x"]},
     "run.properties.mlsec-coverage.gaps[1] needs string 'tool', 'kind', 'detail' (and 'path')"),
    ({"gaps": [{"tool": "t", "kind": "k", "detail": 1}]},
     "run.properties.mlsec-coverage.gaps[0] needs string 'tool', 'kind', 'detail' (and 'path')"),
    ({"gaps": [{"tool": "t", "kind": "k", "detail": "d", "path": 1}]},
     "run.properties.mlsec-coverage.gaps[0] needs string 'tool', 'kind', 'detail' (and 'path')"),
])
def test_coverage_that_cannot_be_read_is_an_error_naming_the_file(raw: object, problem: str) -> None:
    with pytest.raises(InputError) as err:
        cov.read_run_gaps({"mlsec-coverage": raw}, [], "f.sarif")
    assert str(err.value) == f"f.sarif: {problem}"


def test_the_tally_caps_listed_gaps_but_judges_all_of_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cov, "MAX_GAPS_PER_STAGE", 2)
    tally = cov.CoverageTally()
    a, b, c = cov.Gap("t", "k", "1", "p"), cov.Gap("t", "k", "2"), cov.Gap("u", "j", "3")
    tally.add("s", (a, b), 4)
    tally.add("s", (c,), 1)
    tally.add("quiet", (), 0)
    tally.add("early", (c,), 1)
    (early, s) = tally.result()
    assert (s.stage, s.total, s.read, s.gaps, s.unlisted) == ("s", 5, 3, [a, b], 2)
    assert s.groups == {("t", "k"): [2, a], ("u", "j"): [1, c]}
    assert cov.to_json((early, s)) == {
        "total": 6, "by_kind": {"j": 2, "k": 2},
        "stages": {"early": {"total": 1, "unlisted": 0, "not_shown": 0,
                             "tools": {"u": [{"kind": "j", "detail": "3", "path": ""}]}},
                   "s": {"total": 5, "unlisted": 2, "not_shown": 1,
                         "tools": {"t": [{"kind": "k", "detail": "1", "path": "p"},
                                         {"kind": "k", "detail": "2", "path": ""}]}}}}
