"""notify's pure parts: the URL check, the Pushgateway text format, the reduced SARIF sent to DefectDojo, the
Slack fallback text, hostile results folders, and the channel registry against the docs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlsec_actions.errors import InputError, UsageError
from mlsec_actions.findings import StageResult, ToolRun, ToolStatus
from mlsec_actions.notify import defectdojo, pushgateway, registry, results, slack
from mlsec_actions.notify.http import check_url
from mlsec_actions.notify.model import SEVERITIES, StageSummary, Summary
from mlsec_actions.sarif import write_sarif

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("url", ["https://hooks.example.com/x", "http://127.0.0.1:9091", "http://localhost/x",
                                 "http://[::1]:8080/p", "http://127.8.9.10/"])
def test_https_or_loopback_urls_pass(url: str) -> None:
    assert check_url(url, "--x") == url


@pytest.mark.parametrize(("url", "problem"), [
    ("http://example.com/", "http:// only to a loopback host"),
    ("http://127.0.0.1.example.com/", "http:// only to a loopback host"),
    ("http://[::ffff:8.8.8.8]/", "http:// only to a loopback host"),
    ("ftp://example.com/", "not an absolute http(s) URL"),
    ("file:///etc/passwd", "not an absolute http(s) URL"),
    ("//example.com/x", "not an absolute http(s) URL"),
    ("https://example.com:99999/", "not a valid URL"),
    ("https://example.com/a b", "whitespace"),
    ("https://example.com/\r\nX-Evil: 1", "whitespace"),
    ("https://example.com/#frag", "fragment"),
    ("https://user:pw@example.com/", "a user or password in the URL"),
])
def test_bad_urls_are_usage_errors_that_do_not_repeat_the_url(url: str, problem: str) -> None:
    with pytest.raises(UsageError, match=re.escape(problem)) as err:
        check_url(url, "--webhook-url")
    assert "--webhook-url" in str(err.value) and "pw@" not in str(err.value) and "/etc/passwd" not in str(err.value)


def _summary(stage: str = "code-scan", **counts: int) -> Summary:
    row = StageSummary(stage, {s: counts.get(s, 0) for s in SEVERITIES}, seconds=1.5)
    return Summary(verdict="fail", violations=1, stages=(row,), titles=())


@given(st.text(max_size=80))
def test_exposition_has_a_fixed_shape_whatever_the_stage_name(stage: str) -> None:
    text = pushgateway.exposition(_summary(results.stage_name(stage), high=2), now=0)
    lines = text.splitlines()
    assert len(lines) == 2 * 8 + len(SEVERITIES) + 7  # HELP+TYPE per family, then the samples
    assert sum(1 for ln in lines if ln.startswith("mlsec_gate_passed ")) == 1


def test_label_values_are_escaped() -> None:
    assert pushgateway.label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert results.stage_name('x"} 1\nmlsec_gate_passed 1') == "x_1_mlsec_gate_passed_1"


def test_grouping_key_is_base64_so_no_value_adds_a_path_segment() -> None:
    s = Summary("pass", 0, (), (), repository="../../evil/x", pipeline="mlsecops")
    url = pushgateway.group_url("http://127.0.0.1:9091", "mlsec", s)
    assert url.startswith("http://127.0.0.1:9091/metrics/job@base64/")
    assert "../" not in url and url.count("/") == 3 + 6


def test_reduced_sarif_keeps_rules_and_fingerprints_but_no_finding_text() -> None:
    doc = {"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "mlsec", "rules": [{"id": "r/1", "shortDescription": {"text": "AWS key"}}]}},
        "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": [{"message": {"text": "SECRET"}}]}],
        "properties": {"mlsec-stage": "code-scan", "mlsec-coverage": [{"path": "SECRET"}]},
        "results": [{"ruleId": "r/1", "level": "error", "message": {"text": "SECRET AKIA..."},
                     "locations": [{"physicalLocation": {"artifactLocation": {"uri": "SECRET.py"},
                                                         "region": {"startLine": 1, "snippet": {"text": "SECRET"}}}}],
                     "partialFingerprints": {"primaryLocationLineHash": "abc"},
                     "codeFlows": [{"message": {"text": "SECRET"}}], "properties": {"security-severity": "8.0",
                                                                                    "snippet": "SECRET"}}]}]}
    out = defectdojo.reduced(doc)
    assert "SECRET" not in json.dumps(out)
    result = out["runs"][0]["results"][0]
    assert result["message"] == {"text": "AWS key"}
    assert result["partialFingerprints"] == {"primaryLocationLineHash": "abc"}
    assert result["properties"] == {"security-severity": "8.0"}


@pytest.mark.parametrize("junk", [{"runs": "x"}, {"runs": [1, {"tool": 3, "results": [2]}]}, {}])
def test_reduced_sarif_survives_junk(junk: dict[str, object]) -> None:
    assert isinstance(defectdojo.reduced(junk)["runs"], list)


def test_slack_fallback_text_cannot_mention_or_link() -> None:
    text = slack.fallback("FAIL on acme (<!channel> <https://evil|x> *bold* & more)")
    assert "<" not in text and ">" not in text and "&amp;" in text and "*bold*" not in text


def test_a_malformed_verdict_is_bad_input_and_a_missing_one_is_none(tmp_path: Path) -> None:
    (tmp_path / "verdict.json").write_text('{"verdict": "maybe"}')
    with pytest.raises(InputError, match=r"verdict\.json: not a gate verdict"):
        results.read(tmp_path)
    (tmp_path / "verdict.json").unlink()
    assert results.read(tmp_path).verdict == "none"
    with pytest.raises(UsageError, match="results folder not found"):
        results.read(tmp_path / "absent")


def test_hostile_run_record_and_sarif_shapes_are_warnings_not_crashes(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"pipeline": "x\\n::error::y", "stages": [{"stage": "a", "seconds": NaN},'
                                       ' {"stage": "b", "seconds": true}, {"stage": "c", "seconds": -1}]}')
    sarif = tmp_path / "sarif"
    sarif.mkdir()
    (sarif / "a.sarif").write_text('{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}, "results": '
                                   '[{"message": "not an object", "properties": {"mlsec-severity": "bogus"}}]}]}')
    (sarif / "link.sarif").symlink_to("/etc/passwd")
    s = results.read(tmp_path)
    assert s.pipeline == "x_error_y" and all(st.seconds is None for st in s.stages)
    assert [w for w in s.warnings if w.startswith("a.sarif: not read")] and len(s.stages) == 1
    (sarif / "a.sarif").rename(sarif / "a.sarif.bad")  # broken on purpose: the session's SARIF check skips .bad
    (sarif / "link.sarif").unlink()


def test_at_most_max_sarif_files_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "MAX_SARIF_FILES", 3)
    for i in range(5):
        write_sarif(StageResult(f"stage-{i}", (), (ToolRun("t", ToolStatus.OK),)), tmp_path / f"s{i}.sarif",
                    root=tmp_path)
    s = results.read(tmp_path)
    assert "more than 3 SARIF files: the rest not read" in s.warnings and len(s.stages) == 3


def test_every_channel_has_a_docs_section_and_a_unique_id() -> None:
    text = (REPO / "docs" / "notify.md").read_text()
    assert len(set(registry.CHANNEL_IDS)) == len(registry.CHANNELS)
    for channel in registry.CHANNELS:
        assert f"\n## {channel.id}\n" in text, channel.id
        for name in channel.secrets:
            assert name in text
