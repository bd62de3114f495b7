from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from mlsec_actions import sarif
from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus

RULE = Rule(id="demo/hard-coded-key", name="HardCodedKey", short_description="A key in the code",
            tags=("secret",))


def _finding(path: str, line: int | None, sev: Severity = Severity.HIGH, logical: str | None = None) -> Finding:
    return Finding(RULE, "a key", sev, Location(path, line, logical=logical))


def _results(log: dict) -> list[dict]:  # type: ignore[type-arg]
    return log["runs"][0]["results"]  # type: ignore[no-any-return]


def test_log_shape_and_rule_metadata(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\nkey = 'abc'\n")
    result = StageResult("code-scan", (_finding("a.py", 2),), (ToolRun("demo", ToolStatus.OK, version="1.2"),))
    out = sarif.write_sarif(result, tmp_path / "out" / "code-scan.sarif", root=tmp_path)
    log = json.loads(out.read_text())
    run = log["runs"][0]
    assert log["version"] == "2.1.0"
    assert run["automationDetails"]["id"] == "mlsec/code-scan/"
    rule = run["tool"]["driver"]["rules"][0]
    assert rule["id"] == "demo/hard-coded-key"
    assert rule["properties"]["security-severity"] == "8.0"
    assert "security" in rule["properties"]["tags"] and "secret" in rule["properties"]["tags"]
    assert rule["help"]["text"] and rule["fullDescription"]["text"]
    assert run["tool"]["extensions"] == [{"name": "demo", "version": "1.2"}]
    res = _results(log)[0]
    assert res["level"] == "error"
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "a.py"
    assert res["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    assert run["invocations"][0]["executionSuccessful"] is True


def test_fingerprint_survives_lines_inserted_above(tmp_path: Path) -> None:
    src = tmp_path / "a.py"
    src.write_text("import os\nkey = 'abc'\n")
    before = sarif.fingerprints([_finding("a.py", 2)], tmp_path)
    src.write_text("import os\n\n# a comment\nimport sys\nkey = 'abc'\n")
    after = sarif.fingerprints([_finding("a.py", 5)], tmp_path)
    assert before == after
    # A different line content is a different finding.
    src.write_text("import os\nkey = 'xyz'\n")
    assert sarif.fingerprints([_finding("a.py", 2)], tmp_path) != before


def test_identical_lines_get_distinct_occurrences(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("key = 'abc'\nkey = 'abc'\n")
    fps = sarif.fingerprints([_finding("a.py", 1), _finding("a.py", 2)], tmp_path)
    assert fps[0].endswith(":1") and fps[1].endswith(":2")
    assert fps[0].split(":")[0] == fps[1].split(":")[0]


def test_lineless_findings_get_stable_distinct_fingerprints() -> None:
    a = sarif.fingerprints([_finding("model.pkl", None, logical="data.pkl::posix.system")], None)
    b = sarif.fingerprints([_finding("model.pkl", None, logical="data.pkl::builtins.eval")], None)
    assert a == sarif.fingerprints([_finding("model.pkl", None, logical="data.pkl::posix.system")], None)
    assert a != b
    log = sarif.to_sarif(StageResult("model-scan", (_finding("model.pkl", None),)))
    physical = _results(log)[0]["locations"][0]["physicalLocation"]
    assert "region" not in physical  # a binary file has no line: no made-up startLine 1 (issue 8, seen 10)
    assert physical["artifactLocation"]["uri"] == "model.pkl"


def test_lineless_finding_sarif_is_valid_for_github(tmp_path: Path) -> None:
    # Written under tmp_path: the session hook runs the schema and the Multitool's Ghas rules on it.
    out = sarif.write_sarif(StageResult("model-scan", (_finding("m.pkl", None, logical="m.pkl::os.system"),)),
                            tmp_path / "lineless.sarif")
    assert json.loads(out.read_text())["runs"][0]["results"][0]["partialFingerprints"]


# A POSIX file name is bytes: b"w\xe9ights.pkl" arrives from os.walk as the surrogate-escaped "w\udce9ights.pkl".
NON_UTF8 = "p/w\udce9ights.pkl"


def test_non_utf8_file_name_fingerprints_and_encodes_without_raising(tmp_path: Path) -> None:
    # Issue 8, seen 1: this raised UnicodeEncodeError in fingerprints, no SARIF was written and the gate passed.
    findings = [_finding(NON_UTF8, None, logical="w.pkl::os.system"), _finding(NON_UTF8, 3)]
    fps = sarif.fingerprints(findings, tmp_path)
    assert len(set(fps)) == 2
    assert fps == sarif.fingerprints(findings, tmp_path)  # stable
    # Distinct from the name with a different undecodable byte: the real bytes are hashed, not a placeholder.
    other = sarif.fingerprints([_finding("p/w\udceaights.pkl", None, logical="w.pkl::os.system")], tmp_path)
    assert other[0] != fps[0]
    out = sarif.write_sarif(StageResult("model-scan", tuple(findings)), tmp_path / "nonutf8.sarif", root=tmp_path)
    log = json.loads(out.read_bytes().decode("utf-8"))  # strictly valid UTF-8
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]}
    assert uris == {"p/w%E9ights.pkl"}  # the file's real bytes, percent-encoded


def test_lone_surrogate_that_is_not_a_file_byte_does_not_raise(tmp_path: Path) -> None:
    f = Finding(RULE, "message \ud800 with a lone surrogate", Severity.LOW, Location("a\ud800b.txt", None))
    out = sarif.write_sarif(StageResult("code-scan", (f,)), tmp_path / "surrogate.sarif")
    res = json.loads(out.read_text(encoding="utf-8"))["runs"][0]["results"][0]
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "a%ED%A0%80b.txt"
    assert res["message"]["text"] == "message \\ud800 with a lone surrogate"  # escaped visibly (sarif_text)


def test_write_sarif_is_atomic_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    from mlsec_actions.errors import OutputError

    target = tmp_path / "out.sarif"
    sarif.write_sarif(StageResult("code-scan"), target)
    before = target.read_bytes()
    (tmp_path / "folder.sarif").mkdir()  # replacing a folder fails after the temporary file was written
    with pytest.raises(OutputError, match=r"folder\.sarif: cannot write"):
        sarif.write_sarif(StageResult("code-scan"), tmp_path / "folder.sarif")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.sarif", "out.sarif"]  # no *.tmp left
    assert list((tmp_path / "folder.sarif").iterdir()) == []


def test_tool_failure_is_never_silent() -> None:
    result = StageResult("code-scan", (), (ToolRun("trivy", ToolStatus.MISSING, message="trivy not found"),))
    run = sarif.to_sarif(result)["runs"][0]
    inv = run["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert inv["toolExecutionNotifications"][0]["level"] == "error"
    assert "trivy not found" in inv["toolExecutionNotifications"][0]["message"]["text"]
    assert inv["properties"]["status"] == "missing"


def test_tool_notes_become_warnings() -> None:
    result = StageResult("code-scan", (), (ToolRun("trivy", ToolStatus.OK, notes=("no vuln DB",)),))
    notes = sarif.to_sarif(result)["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert notes == [{"level": "warning", "message": {"text": "trivy: no vuln DB"},
                      "descriptor": {"id": "trivy/notice"}}]


def test_result_limit_keeps_most_severe_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sarif, "MAX_RESULTS_PER_RUN", 10)
    findings = [_finding(f"f{i}.py", 1, Severity.LOW) for i in range(20)] + [_finding("crit.py", 1, Severity.CRITICAL)]
    log = sarif.to_sarif(StageResult("code-scan", tuple(findings)))
    results = _results(log)
    assert len(results) == 10
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "crit.py"
    texts = [n["message"]["text"] for n in log["runs"][0]["invocations"][0]["toolExecutionNotifications"]]
    assert any("21 results exceed" in t for t in texts)


def test_size_limit_truncates_until_gzipped_log_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sarif, "MAX_GZIPPED_BYTES", 4000)
    findings = [Finding(RULE, f"message {i} " + "x" * (i % 97), Severity.MEDIUM, Location(f"p{i}/f.py", i + 1))
                for i in range(2000)]
    log = sarif.to_sarif(StageResult("code-scan", tuple(findings)))
    assert len(gzip.compress(json.dumps(log).encode())) <= 4000
    assert 0 < len(_results(log)) < 2000


def test_uris_are_relative_and_encoded() -> None:
    log = sarif.to_sarif(StageResult("s", (_finding("dir with space/ü.py", 1),)), uri_prefix="sub")
    uri = _results(log)[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "sub/dir%20with%20space/%C3%BC.py"


def test_rule_tags_capped_at_github_limit() -> None:
    rule = Rule(id="t/many", name="Many", short_description="m", tags=tuple(f"t{i}" for i in range(40)))
    log = sarif.to_sarif(StageResult("s", (Finding(rule, "m", Severity.LOW, Location("a")),)))
    assert len(log["runs"][0]["tool"]["driver"]["rules"][0]["properties"]["tags"]) == sarif.MAX_TAGS_PER_RULE


def test_a_tool_run_several_times_is_one_extension() -> None:
    tools = (ToolRun("trivy", ToolStatus.OK, version="0.76.0"), ToolRun("trivy", ToolStatus.OK, version="0.76.0"))
    run = sarif.to_sarif(StageResult("code-scan", (), tools))["runs"][0]
    assert run["tool"]["extensions"] == [{"name": "trivy", "version": "0.76.0"}]
    assert len(run["invocations"]) == 2


def test_coverage_gaps_counts_and_run_id_are_in_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlsec_actions.findings import CoverageGap, GapKind

    gap = CoverageGap(GapKind.VULNERABILITIES_NOT_SCANNED, "no vulnerability DB", "")
    tools = (ToolRun("demo", ToolStatus.OK, gaps=(gap,)),)
    result = StageResult("code-scan", (_finding("a.py", 1), _finding("b.py", 1, Severity.LOW)), tools)
    monkeypatch.setenv(sarif.RUN_ID_ENV, "run-123")
    log = sarif.to_sarif(result)
    props = log["runs"][0]["properties"]
    assert props["mlsec-run-id"] == "run-123"
    assert props["mlsec-result-counts"] == {"total": 2, "info": 0, "low": 1, "medium": 0, "high": 1, "critical": 0}
    assert props["mlsec-coverage"] == {"total": 1, "gaps": [
        {"tool": "demo", "kind": "vulnerabilities-not-scanned", "detail": "no vulnerability DB"}]}
    notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert [n["descriptor"]["id"] for n in notes] == ["mlsec/coverage/vulnerabilities-not-scanned"]
    monkeypatch.delenv(sarif.RUN_ID_ENV)
    assert "mlsec-run-id" not in sarif.to_sarif(result)["runs"][0]["properties"]


def test_true_counts_survive_truncation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sarif, "MAX_RESULTS_PER_RUN", 3)
    result = StageResult("code-scan", tuple(_finding(f"f{i}.py", 1) for i in range(5)), ())
    run = sarif.to_sarif(result)["runs"][0]
    assert len(run["results"]) == 3
    assert run["properties"]["mlsec-result-counts"]["total"] == 5
    assert run["properties"]["mlsec-truncated"] is True


def test_colon_in_a_file_name_is_encoded(tmp_path: Path) -> None:
    # A relative URI whose first segment holds ':' reads as a scheme (found by the Hypothesis file names).
    out = sarif.write_sarif(StageResult("model-scan", (_finding("a::b/c:d.pkl", None, logical="x"),)),
                            tmp_path / "colon.sarif")
    uri = json.loads(out.read_text())["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert uri["artifactLocation"]["uri"] == "a%3A%3Ab/c%3Ad.pkl"


def test_in_house_analyzers_report_the_package_version() -> None:
    # Issue 8, seen 10: in-house analyzers reported version 'unknown'.
    from mlsec_actions import __version__

    tools = (ToolRun("mlsec-model-scan", ToolStatus.OK),
             ToolRun("trivy", ToolStatus.FAILED, command=("trivy", "fs"), message="not found"))
    run = sarif.to_sarif(StageResult("model-scan", (), tools))["runs"][0]
    versions = {i["properties"]["tool"]: i["properties"]["version"] for i in run["invocations"]}
    assert versions == {"mlsec-model-scan": __version__, "trivy": "unknown"}
    assert {"name": "mlsec-model-scan", "version": __version__} in run["tool"]["extensions"]


def test_fingerprint_separates_rules_on_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("key = 'abc'\n")
    other = Rule(id="demo/other", name="Other", short_description="another check")
    found = [_finding("a.py", 1), Finding(other, "x", Severity.HIGH, Location("a.py", 1))]
    first, second = sarif.fingerprints(found, tmp_path)
    assert first.split(":")[0] != second.split(":")[0]


def test_fingerprint_keeps_line_numbers_when_nothing_else_tells_findings_apart() -> None:
    # No readable source (root None) and no logical location: the line number is all there is.
    a, b = sarif.fingerprints([_finding("gone.py", 3), _finding("gone.py", 9)], None)
    assert a.split(":")[0] != b.split(":")[0]


def test_fingerprint_survives_reindentation(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("key = 'abc'\n")
    before = sarif.fingerprints([_finding("a.py", 1)], tmp_path)
    (tmp_path / "a.py").write_text("if True:\n        key  =  'abc'\n")
    after = sarif.fingerprints([_finding("a.py", 2)], tmp_path)
    assert before == after


HOSTILE = "names/[pwned](https://evil.example) ![i](https://evil.example/i.png)\n::error::x.pkl"


def _texts(log: dict) -> list[str]:  # type: ignore[type-arg]
    run = log["runs"][0]
    return [r["message"]["text"] for r in run["results"]] + [
        n["message"]["text"] for inv in run["invocations"] for n in inv["toolExecutionNotifications"]]


def test_every_message_text_is_one_line_without_a_link(tmp_path: Path) -> None:
    """File names and contents from the tree reach messages: no viewer may render a link or image from
    them (SARIF 2.1.0 3.11.6: `[text](n)` in plain text is a link), and no line break or `::` reaches logs."""
    from mlsec_actions import sanitize
    from mlsec_actions.findings import CoverageGap, GapKind
    from mlsec_actions.gate.coverage import read_run_gaps
    from mlsec_actions.gate.input import read_bytes

    gap = CoverageGap(GapKind.FILE_SKIPPED, f"{HOSTILE}: not read", HOSTILE)
    tools = (ToolRun("demo", ToolStatus.FAILED, message=HOSTILE, notes=(HOSTILE,), gaps=(gap,)),)
    result = StageResult("code-scan", (Finding(RULE, f"Pickle imports {HOSTILE}", Severity.HIGH,
                                               Location("a.py", 1)),), tools)
    log = sarif.to_sarif(result)
    texts = _texts(log)
    assert len(texts) == 4  # the result, the failure, the note, the gap
    for text in texts:
        assert "\n" not in text and "::" not in text
        assert re.search(r"(?<!\\)[\[\]]", text) is None, text  # every bracket escaped: no link, no image
    assert texts[0] == sanitize.sarif_text(f"Pickle imports {HOSTILE}")
    # The gate reads the gap once: the property's detail matches its notification.
    path = tmp_path / "code-scan.sarif"
    sarif.write_sarif(result, path)
    (run,) = read_bytes(str(path), path.read_bytes())
    assert [(g.kind, g.path) for g in run.gaps] == [("file-skipped", HOSTILE)]
    listed, total = read_run_gaps(log["runs"][0]["properties"], [], str(path))
    assert total == 1 and listed[0].detail == sanitize.sarif_text(gap.detail)
