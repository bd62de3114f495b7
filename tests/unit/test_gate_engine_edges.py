"""Gate evaluation edges the mutation sweep found untested: every finding after a waiver check counts,
baseline files are reported by name, a score that is not a number falls back to the level."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlsec_actions.findings import Severity
from mlsec_actions.gate import input as gate_input
from tests.unit.test_gate import evaluate, hit, outside_basetemp, stage, waiver

__all__ = ["outside_basetemp"]  # a fixture: hand-made malformed SARIF stays out of the session hook's basetemp


def test_findings_after_a_kept_one_still_count_when_waivers_are_on(tmp_path: Path) -> None:
    found = [hit(path=f"f{i}.py") for i in range(4)]
    verdict = evaluate(tmp_path, "version: 1\n" + waiver("path: nothing/**"), stage("code-scan", *found))
    assert verdict.counted["code-scan"][Severity.HIGH] == 4
    (tmp_path / "w").mkdir()
    verdict = evaluate(tmp_path / "w", "version: 1\n" + waiver("path: f1.py"), stage("code-scan", *found))
    assert verdict.counted["code-scan"][Severity.HIGH] == 3 and verdict.waived == 1


def test_baseline_files_are_reported_with_their_digest(tmp_path: Path) -> None:
    verdict = evaluate(tmp_path, "version: 1\n", stage("code-scan", hit()), baseline=(stage("code-scan", hit()),))
    (base,) = verdict.baseline_inputs
    file = tmp_path / "baseline" / "code-scan.sarif"
    assert base.path == str(file) and base.sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
    assert verdict.in_baseline == 1


def test_a_score_that_is_not_a_number_is_as_if_absent(tmp_path: Path) -> None:
    log = {"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "x", "rules": [{"id": "x/r", "properties": {"security-severity": "high"}}]}},
        "invocations": [{"executionSuccessful": True}],
        "results": [{"ruleId": "x/r", "level": "note", "message": {"text": "m"},
                     "properties": {"security-severity": "high"}},
                    {"ruleId": "x/r", "level": "note", "message": {"text": "m"},
                     "properties": {"security-severity": "high"}}]}]}
    (run,) = gate_input.read_bytes("x.sarif", json.dumps(log).encode())
    assert [(h.severity, h.score) for h in run.hits] == [(Severity.LOW, 2.0), (Severity.LOW, 2.0)]


def _log(run: dict) -> bytes:  # type: ignore[type-arg]
    return json.dumps({"version": "2.1.0", "runs": [run]}).encode()


def test_the_reader_resolves_rule_tool_severity_location_and_message_of_each_result() -> None:
    from mlsec_actions.findings import ToolStatus
    from mlsec_actions.gate.input import Hit

    run = {
        "tool": {"driver": {"name": "drv", "version": "9", "rules": [
            {"id": "trivy/a", "defaultConfiguration": {"level": "note"}},
            {"id": "drv/b", "properties": {"security-severity": "9.1"}}]}},
        "invocations": [
            {"executionSuccessful": True, "properties": {"tool": "trivy", "status": "ok", "version": "0.1"}},
            {"executionSuccessful": False, "properties": {"tool": "grype", "status": "ok"},
             "toolExecutionNotifications": [{"level": "error", "message": {"text": "boom"}},
                                            {"level": "error", "message": {"text": ""}},
                                            {"level": "warning", "message": {"text": "meh"}},
                                            {"level": "error", "message": {"text": "bang"}}]},
            {"executionSuccessful": True, "properties": {"status": "no-such-status"}}],
        "automationDetails": {"id": "mlsec/code-scan/run-1"},
        "results": [
            {"ruleId": "trivy/a", "message": {"text": "t"}, "partialFingerprints": {"primaryLocationLineHash": "f:1"},
             "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a.py"}, "region": {"startLine": 4}}}]},
            {"ruleIndex": 1, "message": {"markdown": "md"}, "locations": [{"physicalLocation": {}}]},
            {"ruleIndex": 7, "level": "error"},
            {"ruleId": "drv/b", "kind": "pass"},
            {"ruleId": "drv/b", "kind": "fail", "properties": {"mlsec-severity": "low", "security-severity": "3.3"},
             "message": {}},
            {"ruleId": "grype/c", "properties": {"mlsec-severity": "bogus"}, "level": "none"}]}
    (got,) = gate_input.read_bytes("r.sarif", _log(run))
    assert got.source == "r.sarif" and got.stage == "code-scan"
    assert [(t.name, t.status, t.version, t.message) for t in got.tools] == [
        ("trivy", ToolStatus.OK, "0.1", ""), ("grype", ToolStatus.FAILED, "9", "boom; bang"),
        ("drv", ToolStatus.OK, "9", "")]
    assert got.hits == [
        Hit("trivy/a", "trivy", Severity.LOW, Severity.LOW.default_score, "f:1", "a.py", 4, "t"),
        Hit("drv/b", "drv", Severity.CRITICAL, 9.1, None, "", None, "md"),
        Hit("drv/unknown", "drv", Severity.HIGH, Severity.HIGH.default_score, None, "", None, "drv/unknown"),
        Hit("drv/b", "drv", Severity.LOW, 3.3, None, "", None, "drv/b"),
        Hit("grype/c", "grype", Severity.INFO, Severity.INFO.default_score, None, "", None, "grype/c")]
    assert got.dropped == {} and got.gaps == () and got.gap_total == 0


def test_stage_name_falls_back_to_the_category_then_the_driver() -> None:
    base = {"tool": {"driver": {"name": "drv"}}, "invocations": [{}]}
    assert gate_input.read_bytes("s", _log({**base, "automationDetails": {"id": "mlsec/x/1"},
                                            "properties": {"mlsec-stage": "given"}}))[0].stage == "given"
    assert gate_input.read_bytes("s", _log({**base, "automationDetails": {"id": "other/cat/"}}))[0].stage == "other/cat"
    assert gate_input.read_bytes("s", _log({**base, "automationDetails": {"id": "plain"}}))[0].stage == "plain"
    assert gate_input.read_bytes("s", _log(base))[0].stage == "drv"


def test_a_run_without_invocations_is_one_failed_driver_record() -> None:
    from mlsec_actions.findings import ToolStatus

    (got,) = gate_input.read_bytes("s", _log({"tool": {"driver": {"name": "drv", "version": "2"}}}))
    assert [(t.name, t.status, t.version, t.message) for t in got.tools] == [
        ("drv", ToolStatus.FAILED, "2", gate_input.NO_INVOCATIONS)]


def test_true_counts_add_only_what_the_file_lacks_per_severity() -> None:
    from mlsec_actions.sarif import to_sarif

    log = to_sarif(stage("code-scan", hit(), hit(path="b.py"), hit(severity=Severity.LOW)))
    log["runs"][0]["properties"]["mlsec-result-counts"] = {"total": 9, "high": 5, "low": 1, "critical": 3}
    (got,) = gate_input.read_bytes("s", json.dumps(log).encode())
    assert got.dropped == {Severity.HIGH: 3, Severity.CRITICAL: 3}


def test_malformed_logs_name_the_file_and_the_problem() -> None:

    from mlsec_actions.errors import InputError

    cases = [(b'{"version": "2.1.0", "runs": [{"tool": 3}]}',
              "s.sarif: not a SARIF log we can read: Expected `object`"),
             (b'{"version": "2.1.0", ', "s.sarif: not valid JSON ("),
             (b'{"version": "2.0.0", "runs": []}', "s.sarif: unsupported SARIF version '2.0.0' (need 2.1.0)")]
    for data, start in cases:
        with pytest.raises(InputError) as err:
            gate_input.read_bytes("s.sarif", data)
        assert str(err.value).startswith(start), str(err.value)
    with pytest.raises(InputError, match=r"^s\.sarif: not valid JSON \(.*\); truncated or corrupt SARIF$"):
        gate_input.read_bytes("s.sarif", b"{")
    with pytest.raises(InputError, match=r"^s\.sarif: SARIF is nested too deeply to be a SARIF log we write$"):
        gate_input.read_bytes("s.sarif", b'{"version": "2.1.0", "runs": [{"tool": {"driver": {"x": '
                              + b"[" * 100_000 + b"]" * 100_000 + b"}}}]}")


def test_the_folder_reader_names_each_file_and_why_it_was_not_read(outside_basetemp: Path) -> None:
    tmp_path = outside_basetemp

    from mlsec_actions.errors import InputError
    from mlsec_actions.sarif import write_sarif

    with pytest.raises(InputError, match=r"nope: no such folder$"):
        next(gate_input.iter_dir(tmp_path / "nope"))
    good = write_sarif(stage("code-scan", hit()), tmp_path / "sub" / "good.sarif")
    (tmp_path / "bad.sarif").write_text("{")
    (tmp_path / "link.sarif").symlink_to(good)
    (tmp_path / "skip.sarif").write_text("{")
    got = list(gate_input.iter_dir(tmp_path, frozenset({(tmp_path / "skip.sarif").resolve()})))
    assert [(f.path, f.name, f.sha256 != "", len(runs), e is not None) for f, runs, e in got] == [
        (str(tmp_path / "bad.sarif"), "bad.sarif", True, 0, True),
        (str(tmp_path / "link.sarif"), "link.sarif", False, 0, True),
        (str(good), "sub/good.sarif", True, 1, False)]
    assert got[0][0].sha256 == hashlib.sha256(b"{").hexdigest()
    assert str(got[1][2]).endswith("link.sarif: SARIF is a symbolic link, not a regular file")
    assert got[2][1][0].stage == "code-scan"
    big = list(gate_input.iter_dir(tmp_path / "sub", max_bytes=10))
    assert big[0][0].sha256 == "" and big[0][2] is not None and "good.sarif" in str(big[0][2])


def test_top_findings_are_the_most_severe_then_highest_scored_earlier_runs_first(tmp_path: Path) -> None:
    def at(path: str, severity: Severity, score: float) -> object:
        return hit(path=path, severity=severity, score=score)

    code = stage("code-scan", at("a.py", Severity.HIGH, 7.0), at("b.py", Severity.HIGH, 8.9),
                 at("c.py", Severity.LOW, 9.9), at("l.py", Severity.CRITICAL, 9.0),
                 *(at(f"{c}.py", Severity.MEDIUM, 5.0) for c in "defghijk"))  # type: ignore[arg-type]
    model = stage("model-scan", at("m.py", Severity.HIGH, 7.0))  # type: ignore[arg-type]
    verdict = evaluate(tmp_path, "version: 1\n", code, model)
    assert [(s, h.path) for s, h in verdict.top] == [
        ("code-scan", "l.py"), ("code-scan", "b.py"), ("code-scan", "a.py"), ("model-scan", "m.py"),
        *(("code-scan", f"{c}.py") for c in "defghi")]
    assert verdict.counted["code-scan"][Severity.HIGH] == 2 and verdict.counted["code-scan"][Severity.MEDIUM] == 8


def test_waived_and_baseline_counts_add_up_over_runs(tmp_path: Path) -> None:
    runs = (stage("code-scan", hit(path="w.py"), hit(path="x.py")), stage("model-scan", hit(path="w.py")))
    verdict = evaluate(tmp_path, "version: 1\n" + waiver("path: w.py"), *runs)
    assert verdict.waived == 2
    (tmp_path / "b").mkdir()
    verdict = evaluate(tmp_path / "b", "version: 1\n", *runs, baseline=runs)
    assert verdict.in_baseline == 3 and verdict.waived == 0
    (tmp_path / "n").mkdir()
    assert evaluate(tmp_path / "n", "version: 1\n", *runs).waived == 0


def test_dropped_findings_of_a_run_with_several_tools_belong_to_no_tool(tmp_path: Path) -> None:
    from mlsec_actions.findings import ToolRun, ToolStatus
    from mlsec_actions.sarif import to_sarif

    tools = (ToolRun("trivy", ToolStatus.OK), ToolRun("grype", ToolStatus.OK))
    log = to_sarif(stage("code-scan", hit(), tools=tools))
    log["runs"][0]["properties"]["mlsec-result-counts"] = {"total": 4, "high": 4}
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "c.sarif").write_text(json.dumps(log))
    from mlsec_actions.gate import policy
    from mlsec_actions.gate.engine import run_gate

    pol = tmp_path / "p.yml"
    pol.write_text("version: 1\nthresholds:\n  - tool: trivy\n    max: 1\n  - tool: unknown\n    max: 2\n")
    verdict = run_gate(policy.load(pol), folder)
    # trivy keeps its one finding (max 1 holds); the three dropped ones count for no tool (max 2 fails).
    assert [v.message for v in verdict.violations if v.kind == "threshold"] == [
        "3 findings at any severity (max 2; code-scan: 3)"]


def test_no_inputs_and_a_missing_required_stage_point_at_the_policy(tmp_path: Path) -> None:
    from mlsec_actions.gate import policy
    from mlsec_actions.gate.engine import run_gate
    from mlsec_actions.gate.rules import Violation

    pol = tmp_path / "p.yml"
    pol.write_text("version: 1\nrequired-stages:\n  - code-scan\n")
    empty = tmp_path / "s"
    empty.mkdir()
    verdict = run_gate(policy.load(pol), empty)
    assert verdict.violations == (
        Violation("no-inputs", f"no *.sarif files under {empty}: nothing was checked", path=str(pol), line=1),
        Violation("required-stage-missing", "required stage code-scan produced no SARIF", "required-stages",
                  "code-scan", str(pol), 2))


def test_a_tool_that_did_not_succeed_fails_or_warns_naming_stage_tool_status_and_message(tmp_path: Path) -> None:
    from mlsec_actions.findings import ToolRun, ToolStatus
    from mlsec_actions.gate.rules import Violation

    tools = (ToolRun("trivy", ToolStatus.TIMEOUT, message="after 60s"), ToolRun("grype", ToolStatus.MISSING),
             ToolRun("ok", ToolStatus.OK))
    verdict = evaluate(tmp_path, "version: 1\n", stage("code-scan", tools=tools))
    source = str(tmp_path / "sarif" / "code-scan.sarif")
    assert [v for v in verdict.violations if v.kind == "tool-failed"] == [
        Violation("tool-failed", "code-scan: trivy timeout: trivy: after 60s; its findings are incomplete",
                  "tool-errors", "code-scan", source),
        Violation("tool-failed", "code-scan: grype missing: grype: missing; its findings are incomplete",
                  "tool-errors", "code-scan", source)]
    (tmp_path / "w").mkdir()
    warned = evaluate(tmp_path / "w", "version: 1\ntool-errors: warn\n", stage("code-scan", tools=tools))
    assert "tool-failed" not in [v.kind for v in warned.violations]
    assert "code-scan: grype missing: grype: missing" in warned.warnings


def test_a_failed_tool_without_a_message_and_a_stale_required_stage(outside_basetemp: Path) -> None:
    from mlsec_actions.gate import policy
    from mlsec_actions.gate.engine import run_gate
    from mlsec_actions.gate.provenance import Expectations

    log = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "drv"}}, "invocations": [
        {"executionSuccessful": False}], "properties": {"mlsec-stage": "code-scan", "mlsec-run-id": "old"}}]}
    folder = outside_basetemp / "s"
    folder.mkdir()
    (folder / "c.sarif").write_text(json.dumps(log))
    pol = outside_basetemp / "p.yml"
    pol.write_text("version: 1\nrequired-stages: [code-scan]\n")
    verdict = run_gate(policy.load(pol), folder, expect=Expectations(run_id="now", stages=("code-scan",)))
    messages = {v.kind: v.message for v in verdict.violations}
    assert messages["tool-failed"] == "code-scan: drv failed; its findings are incomplete"
    assert messages["required-stage-missing"] == "required stage code-scan produced no SARIF in this run"
    where = folder / "c.sarif"
    assert messages["stage-missing"] == (f"expected stage code-scan: only SARIF from another run ({where}; "
                                         "this run is 'now')")


def test_a_bad_count_property_names_the_file() -> None:

    from mlsec_actions.errors import InputError

    log = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "d"}}, "invocations": [{}],
                                         "properties": {"mlsec-result-counts": {"high": 1.5}}}]}
    with pytest.raises(InputError) as err:
        gate_input.read_bytes("f.sarif", json.dumps(log).encode())
    assert str(err.value) == "f.sarif: run.properties.mlsec-result-counts is not a map of severity to count"


def test_the_reader_s_remaining_fallbacks() -> None:
    from mlsec_actions.findings import ToolStatus

    run = {"tool": {"driver": {"name": "drv", "rules": [{"id": "drv/r", "properties": {"security-severity": "9.1"}},
                                                        {"id": "drv/s"}]}},
           "invocations": [{}, {"toolExecutionNotifications": [
               {"descriptor": {"id": "mlsec/coverage/file-skipped"}},
               {"descriptor": {"id": "mlsec/coverage/file-unreadable"}, "message": {}}]}],
           "results": [{"ruleId": "drv/r", "properties": {"mlsec-severity": "low"}},
                       {"ruleId": "drv/r", "properties": {"security-severity": "3.0"}},
                       {"ruleIndex": 2, "level": "bogus"}]}
    (got,) = gate_input.read_bytes("s", _log(run))
    assert [(h.rule, h.severity, h.score) for h in got.hits] == [
        ("drv/r", Severity.LOW, 9.1), ("drv/r", Severity.LOW, 3.0), ("drv/unknown", Severity.MEDIUM, 5.5)]
    assert [t.status for t in got.tools] == [ToolStatus.OK, ToolStatus.OK]
    assert [(g.kind, g.detail) for g in got.gaps] == [("file-skipped", ""), ("file-unreadable", "")]


def test_a_file_that_cannot_be_read_does_not_stop_the_others(outside_basetemp: Path) -> None:
    (outside_basetemp / "a.sarif").write_text("{" * 50)
    (outside_basetemp / "b.sarif").write_text("{}")
    got = list(gate_input.iter_dir(outside_basetemp, max_bytes=10))
    first, second = got
    assert (first[0].path, first[0].sha256, first[0].name) == (str(outside_basetemp / "a.sarif"), "", "a.sarif")
    assert str(first[2]) == f"{outside_basetemp / 'a.sarif'}: SARIF is 50 bytes; the limit is 10"
    assert second[0].name == "b.sarif" and second[0].sha256 == hashlib.sha256(b"{}").hexdigest()


def test_a_folder_too_deep_is_an_unread_input_naming_its_path(outside_basetemp: Path) -> None:
    from mlsec_actions.analyzers import tree

    deep = outside_basetemp.joinpath(*["d"] * (tree.MAX_DEPTH + 2))
    deep.mkdir(parents=True)
    (deep / "x.sarif").write_text("{}")
    ((file, runs, error),) = list(gate_input.iter_dir(outside_basetemp))
    assert runs == [] and file.sha256 == "" and error is not None
    assert file.path == str(outside_basetemp / file.name) and file.name.startswith("d/d/")
    assert str(error).startswith(f"{outside_basetemp / file.name}: ")


def test_the_gate_s_own_output_is_not_read(tmp_path: Path) -> None:
    from mlsec_actions.gate import policy
    from mlsec_actions.gate.engine import run_gate
    from mlsec_actions.sarif import write_sarif

    folder = tmp_path / "s"
    write_sarif(stage("code-scan"), folder / "code-scan.sarif")
    own = write_sarif(stage("code-scan", hit()), folder / "gate.sarif")
    pol = tmp_path / "p.yml"
    pol.write_text("version: 1\n")
    verdict = run_gate(policy.load(pol), folder, exclude=frozenset({own.resolve()}))
    assert [f.name for f in verdict.inputs] == ["code-scan.sarif"]


def test_each_run_s_top_ten_is_chosen_by_severity_then_score(tmp_path: Path) -> None:
    low = stage("code-scan", *(hit(path=f"l{i}.py", severity=Severity.LOW, score=9.9) for i in range(10)),
                hit(path="h.py", score=7.0))
    high = stage("model-scan", *(hit(path=f"m{i}.py", score=7.0) for i in range(10)), hit(path="z.py", score=8.0))
    verdict = evaluate(tmp_path, "version: 1\n", low, high)
    assert [(s, h.path) for s, h in verdict.top] == [
        ("model-scan", "z.py"), ("code-scan", "h.py"), *(("model-scan", f"m{i}.py") for i in range(8))]


def test_an_expired_waiver_points_at_the_policy(tmp_path: Path) -> None:
    verdict = evaluate(tmp_path, "version: 1\n" + waiver("path: a.py", expires="2026-01-01"), stage("code-scan"))
    (expired,) = [v for v in verdict.violations if v.kind.startswith("waiver")]
    assert expired.path == str(tmp_path / "policy.yml")


def test_a_bad_coverage_property_names_the_file() -> None:
    from mlsec_actions.errors import InputError

    log = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "d"}}, "invocations": [{}],
                                         "properties": {"mlsec-coverage": []}}]}
    with pytest.raises(InputError) as err:
        gate_input.read_bytes("f.sarif", json.dumps(log).encode())
    assert str(err.value) == "f.sarif: run.properties.mlsec-coverage is not an object with a 'gaps' array"
