"""The SARIF we write, field by field: what GitHub and the gate read from it (found by the mutation sweep)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions import __version__, sarif
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Rule, Severity, StageResult, ToolRun
from mlsec_actions.findings import ToolStatus as St

RULE = Rule(id="demo/key", name="Key", short_description="A key", full_description="A key in the code.",
            help_text="Remove it.", help_uri="https://example.invalid/docs#demo-key", tags=("secret",),
            precision="medium")


def _run(log: dict) -> dict:  # type: ignore[type-arg]
    return log["runs"][0]  # type: ignore[no-any-return]


def test_the_whole_run_as_github_and_the_gate_read_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sarif.RUN_ID_ENV, "from-env")
    finding = Finding(RULE, "a key", Severity.HIGH, Location("src/a.py", 3, 3, "key = 1", "a.key", "variable"),
                      properties=(("cwe", "CWE-798"),))
    tools = (ToolRun("demo", St.OK, version="1.0", message="read 3 files", notes=("slow",),
                     command=("demo", "scan"), exit_code=0,
                     gaps=(CoverageGap(GapKind.FILE_SKIPPED, "big.bin: too large", "big.bin"),)),
             ToolRun("other", St.FAILED, command=("other",), exit_code=0),
             ToolRun("third", St.TIMEOUT, message="after 5s"))
    run = _run(sarif.to_sarif(StageResult("code-scan", (finding,), tools), run_id="explicit"))
    (fp,) = sarif.fingerprints([finding], None)
    assert run == {
        "tool": {"driver": {"name": "mlsec-actions", "version": __version__, "semanticVersion": __version__,
                            "informationUri": sarif.INFORMATION_URI,
                            "rules": [{"id": "demo/key", "name": "Key", "shortDescription": {"text": "A key"},
                                       "fullDescription": {"text": "A key in the code."},
                                       "help": {"text": "Remove it.", "markdown": "Remove it."},
                                       "defaultConfiguration": {"level": "error"},
                                       "properties": {"security-severity": "8.0", "tags": ["security", "secret"],
                                                      "precision": "medium"},
                                       "helpUri": "https://example.invalid/docs#demo-key"}]},
                 "extensions": [{"name": "demo", "version": "1.0"}, {"name": "other"}, {"name": "third"}]},
        "automationDetails": {"id": "mlsec/code-scan/"},
        "invocations": [
            {"executionSuccessful": True, "toolExecutionNotifications": [
                {"level": "note", "message": {"text": "demo: read 3 files"}, "descriptor": {"id": "demo/execution"}},
                {"level": "warning", "message": {"text": "demo: slow"}, "descriptor": {"id": "demo/notice"}},
                {"level": "warning", "message": {"text": "demo: not covered: big.bin: too large"},
                 "descriptor": {"id": "mlsec/coverage/file-skipped"}}],
             "properties": {"tool": "demo", "status": "ok", "version": "1.0"},
             "commandLine": "demo scan", "exitCode": 0},
            {"executionSuccessful": False, "toolExecutionNotifications": [
                {"level": "error", "message": {"text": "other: failed"}, "descriptor": {"id": "other/execution"}}],
             "properties": {"tool": "other", "status": "failed", "version": "unknown"},
             "commandLine": "other", "exitCode": 0},
            {"executionSuccessful": False, "toolExecutionNotifications": [
                {"level": "error", "message": {"text": "third: after 5s"}, "descriptor": {"id": "third/execution"}}],
             "properties": {"tool": "third", "status": "timeout", "version": "unknown"}}],
        "results": [{"ruleId": "demo/key", "ruleIndex": 0, "level": "error", "message": {"text": "a key"},
                     "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/a.py"},
                                                         "region": {"startLine": 3, "endLine": 3,
                                                                    "snippet": {"text": "key = 1"}}},
                                    "logicalLocations": [{"fullyQualifiedName": "a.key", "kind": "variable"}]}],
                     "partialFingerprints": {"primaryLocationLineHash": fp},
                     "properties": {"security-severity": "8.0", "mlsec-severity": "high", "cwe": "CWE-798"}}],
        "columnKind": "utf16CodeUnits",
        "properties": {"mlsec-stage": "code-scan",
                       "mlsec-result-counts": {"total": 1, "info": 0, "low": 0, "medium": 0, "high": 1, "critical": 0},
                       "mlsec-truncated": False,
                       "mlsec-coverage": {"total": 1, "gaps": [{"tool": "demo", "kind": "file-skipped",
                                                                "detail": "big.bin: too large", "path": "big.bin"}]},
                       "mlsec-run-id": "explicit"}}


def test_fingerprints_do_not_change_between_releases(tmp_path: Path) -> None:
    # GitHub matches alerts across runs by these values: a change reopens every alert of every user.
    (tmp_path / "a.py").write_text("x = 1\n  key = 'abc'\n")
    found = [Finding(RULE, "m", Severity.HIGH, Location("a.py", 2)),
             Finding(RULE, "m", Severity.HIGH, Location("m.pkl", None, logical="m.pkl::os.system")),
             Finding(RULE, "m", Severity.HIGH, Location("m.pkl", None))]
    assert sarif.fingerprints(found, tmp_path) == ["aeeb9c7ba8aba9b5:1", "bf786bba5163cca1:1",
                                                 "03e3f27cc13d02f6:1"]


def test_an_upper_case_rule_id_on_a_line_without_text_is_told_apart_from_none(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("\n")  # an empty line: nothing but the line number to go on
    a = sarif.fingerprints([Finding(RULE, "m", Severity.LOW, Location("a.py", 1))], tmp_path)
    b = sarif.fingerprints([Finding(RULE, "m", Severity.LOW, Location("a.py", 1, logical="x"))], tmp_path)
    assert a != b


def test_dumps_is_indented_utf8_with_raw_non_ascii() -> None:
    assert sarif.dumps({"a": "ü"}) == '{\n "a": "ü"\n}\n'.encode()
    # A lone surrogate (not a file-name byte) takes the fallback: shown as \\x.. escapes, the rest unchanged.
    expected = '{\n "a": "x\\\\xed\\\\xa0\\\\x80",\n "b": [\n  "ü"\n ]\n}\n'
    assert sarif.dumps({"a": "x\ud800", "b": ["ü"]}) == expected.encode()


def test_a_source_file_over_the_line_limit_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "big.py").write_text("key = 'abc'\n")  # 12 bytes
    (tmp_path / "ref.py").write_text("key = 'abc'\n")
    ref = sarif.fingerprints([Finding(RULE, "m", Severity.LOW, Location("ref.py", 1))], tmp_path)[0]
    unread = sarif.fingerprints([Finding(RULE, "m", Severity.LOW, Location("big.py", 1))], None)[0]
    monkeypatch.setattr(sarif, "_MAX_LINE_FILE_BYTES", 12)
    at_limit = sarif.fingerprints([Finding(RULE, "m", Severity.LOW, Location("big.py", 1))], tmp_path)[0]
    monkeypatch.setattr(sarif, "_MAX_LINE_FILE_BYTES", 11)
    over = sarif.fingerprints([Finding(RULE, "m", Severity.LOW, Location("big.py", 1))], tmp_path)[0]
    assert over == unread and at_limit != unread
    # The content counts, the path too: same content in another file is another finding.
    assert at_limit != ref


def test_a_source_line_that_is_not_utf8_is_read_with_replacement(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_bytes(b"key = '\xff\xfe'\n")
    (tmp_path / "b.py").write_bytes("key = '\ufffd\ufffd'\n".encode())
    a = sarif.fingerprints([Finding(RULE, "m", Severity.LOW, Location("a.py", 1))], tmp_path)
    b = sarif.fingerprints([Finding(RULE, "m", Severity.LOW, Location("a.py", 1))], None)
    assert a != b  # the line was read (no crash, no fallback to the line number)
    assert sarif.fingerprints([Finding(RULE, "m", Severity.LOW, Location("b.py", 1))], tmp_path) != a  # other path


@pytest.mark.parametrize(("prefix", "path", "uri"), [
    ("", "/abs/A.py", "abs/A.py"),
    (".", "a.py", "a.py"),
    ("out/X/", "X/a.py", "out/X/X/a.py"),
    ("sub", "/X.py", "sub/X.py"),
])
def test_uri_joins_prefix_and_path_once(prefix: str, path: str, uri: str) -> None:
    log = sarif.to_sarif(StageResult("s", (Finding(RULE, "m", Severity.LOW, Location(path, 1)),)), uri_prefix=prefix)
    assert _run(log)["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == uri


def test_counts_add_up_per_severity() -> None:
    found = tuple(Finding(RULE, "m", Severity.LOW, Location(f"{i}.py", 1)) for i in range(3))
    assert sarif.counts_property(found) == {"total": 3, "info": 0, "low": 3, "medium": 0, "high": 0, "critical": 0}


def test_an_explicit_run_id_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sarif.RUN_ID_ENV, "env-id")
    assert _run(sarif.to_sarif(StageResult("s"), run_id="mine"))["properties"]["mlsec-run-id"] == "mine"
    assert _run(sarif.to_sarif(StageResult("s")))["properties"]["mlsec-run-id"] == "env-id"


def test_a_stage_without_tools_and_a_preset_fingerprint() -> None:
    found = (Finding(RULE, "m", Severity.LOW, Location("a.py", 1), fingerprint="given:1"),
             Finding(RULE, "m", Severity.LOW, Location("b.py", 1)))
    log = sarif.to_sarif(StageResult("s", found))
    assert set(log) == {"$schema", "version", "runs"} and log["$schema"] == sarif.SCHEMA_URI
    run = _run(log)
    assert run["invocations"] == [{"executionSuccessful": True, "toolExecutionNotifications": []}]
    assert run["columnKind"] == "utf16CodeUnits"
    prints = [r["partialFingerprints"]["primaryLocationLineHash"] for r in run["results"]]
    assert prints == ["given:1", sarif.fingerprints(found[1:], None)[0]]
    assert sarif.fingerprints(found, None) == prints


def test_a_rule_takes_the_highest_score_and_level_of_its_findings() -> None:
    found = (Finding(RULE, "m", Severity.HIGH, Location("a.py", 1), score=7.5),
             Finding(RULE, "m", Severity.LOW, Location("b.py", 1), score=0.5),
             Finding(RULE, "m", Severity.INFO, Location("c.py", 1), score=0.2))
    (rule,) = _run(sarif.to_sarif(StageResult("s", found)))["tool"]["driver"]["rules"]
    assert rule["defaultConfiguration"] == {"level": "error"} and rule["properties"]["security-severity"] == "7.5"
    (low,) = _run(sarif.to_sarif(StageResult("s", found[2:])))["tool"]["driver"]["rules"]
    assert low["properties"]["security-severity"] == "0.2"


def _notes(log: dict) -> list[str]:  # type: ignore[type-arg]
    return [n["message"]["text"] for n in _run(log)["invocations"][0]["toolExecutionNotifications"]]


def test_result_limit_boundary_and_the_note_that_says_what_was_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    found = (Finding(RULE, "m", Severity.CRITICAL, Location("c.py", 1)),
             Finding(RULE, "m", Severity.MEDIUM, Location("m.py", 1)),
             Finding(RULE, "m", Severity.LOW, Location("l.py", 1)))
    monkeypatch.setattr(sarif, "MAX_RESULTS_PER_RUN", 3)
    log = sarif.to_sarif(StageResult("s", found))
    assert len(_run(log)["results"]) == 3 and _notes(log) == []
    monkeypatch.setattr(sarif, "MAX_RESULTS_PER_RUN", 2)
    assert _run(sarif.to_sarif(StageResult("s", found)))["invocations"][0]["toolExecutionNotifications"][0] == {
        "level": "warning", "message": {"text": sarif._text(_notes(sarif.to_sarif(StageResult("s", found)))[0])},
        "descriptor": {"id": "mlsec/truncated"}}
    assert _run(sarif.to_sarif(StageResult("s", found)))["properties"]["mlsec-truncated"] is True
    assert _notes(sarif.to_sarif(StageResult("s", found))) == [
        "3 results exceed GitHub's limits; kept the 2 most severe (down to medium). "
        "The full list is in the stage's artifacts and the gate counts all of them."]
    monkeypatch.setattr(sarif, "MAX_RESULTS_PER_RUN", 0)
    assert "kept the 0 most severe (down to none)" in _notes(sarif.to_sarif(StageResult("s", found)))[0]


def test_size_limit_boundary_keeps_at_least_one_result(monkeypatch: pytest.MonkeyPatch) -> None:
    one = (Finding(RULE, "m", Severity.HIGH, Location("a.py", 1)),)
    two = (*one, Finding(RULE, "m", Severity.LOW, Location("b.py", 1)))
    size = sarif._gzipped_size(sarif.to_sarif(StageResult("s", two)))
    monkeypatch.setattr(sarif, "MAX_GZIPPED_BYTES", size)
    assert len(_run(sarif.to_sarif(StageResult("s", two)))["results"]) == 2  # exactly at the limit fits
    monkeypatch.setattr(sarif, "MAX_GZIPPED_BYTES", 10)
    log = sarif.to_sarif(StageResult("s", two))
    assert [r["ruleId"] for r in _run(log)["results"]] == ["demo/key"]
    assert _run(log)["results"][0]["level"] == "error"  # the most severe one kept
    assert len(_run(sarif.to_sarif(StageResult("s", one)))["results"]) == 1  # never down to none


def test_size_truncation_keeps_three_quarters_each_round_and_the_run_s_facts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.py").write_text("key = 'abc'\n")
    import hashlib

    # Messages that do not compress: each finding adds ~600 gzipped bytes, more than the note does.
    found = tuple(Finding(RULE, "".join(hashlib.sha256(f"{i}{j}".encode()).hexdigest() for j in range(20)),
                          Severity.HIGH, Location("a.py", 1)) for i in range(8))
    size = sarif._gzipped_size(sarif.to_sarif(StageResult("s", found[:6]), root=tmp_path, uri_prefix="p",
                                              run_id="r"))
    monkeypatch.setattr(sarif, "MAX_GZIPPED_BYTES", size + 300)  # 8 (and 7) do not fit, 6 (8 * 3 // 4) do
    run = _run(sarif.to_sarif(StageResult("s", found), root=tmp_path, uri_prefix="p", run_id="r"))
    assert len(run["results"]) == 6
    assert _notes({"runs": [run]}) == [
        "8 results exceed GitHub's limits; kept the 6 most severe (down to high). "
        "The full list is in the stage's artifacts and the gate counts all of them."]
    res = run["results"][0]
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "p/a.py"
    assert res["partialFingerprints"] == {"primaryLocationLineHash": sarif.fingerprints(found, tmp_path)[0]}
    assert run["properties"]["mlsec-run-id"] == "r"


def test_write_sarif_passes_root_prefix_and_run_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sarif.RUN_ID_ENV, raising=False)
    (tmp_path / "a.py").write_text("key = 'abc'\n")
    found = (Finding(RULE, "m", Severity.HIGH, Location("a.py", 1)),)
    out = sarif.write_sarif(StageResult("s", found), tmp_path / "o" / "s.sarif", root=tmp_path, uri_prefix="pre",
                            run_id="rid")
    run = _run(json.loads(out.read_text()))
    assert run["properties"]["mlsec-run-id"] == "rid"
    res = run["results"][0]
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "pre/a.py"
    assert res["partialFingerprints"]["primaryLocationLineHash"] == sarif.fingerprints(found, tmp_path)[0]
    assert res["partialFingerprints"]["primaryLocationLineHash"] != sarif.fingerprints(found, None)[0]
    # to_sarif reads the same root
    direct = _run(sarif.to_sarif(StageResult("s", found), root=tmp_path))["results"][0]
    assert direct["partialFingerprints"] == res["partialFingerprints"]


def test_fingerprints_do_not_depend_on_the_locale(tmp_path: Path) -> None:
    """A runner with a POSIX (ASCII) locale reads source lines as UTF-8 too: alerts do not churn between machines."""
    import locale

    (tmp_path / "a.py").write_text("clé = 'abc'\n", encoding="utf-8")
    found = [Finding(RULE, "m", Severity.LOW, Location("a.py", 1))]
    here = sarif.fingerprints(found, tmp_path)
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # the default text encoding is now ASCII
    try:
        assert locale.getencoding() != "UTF-8"
        assert sarif.fingerprints(found, tmp_path) == here
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
