"""garak report import: eval lines become findings per probe family; bad lines are input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions.errors import InputError
from mlsec_actions.findings import Severity
from mlsec_actions.tools import garak
from tests.model_corpus_formats import assert_documented, garak_report


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "garak.report.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_failures_become_findings_per_family(tmp_path: Path) -> None:
    path = _write(tmp_path, garak_report(evals=[
        ("dan.Dan_11_0", "dan.DAN", 2, 10), ("dan.Dan_11_0", "mitigation.MitigationBypass", 19, 20),
        ("promptinject.HijackHateHumans", "promptinject.AttackRogueString", 97, 100),
        ("encoding.InjectBase64", "encoding.DecodeMatch", 50, 50)]))
    found = garak.read_report(path, shown="reports/garak.report.jsonl")
    summary = sorted((f.rule.id, f.severity, f.location.logical) for f in found)
    assert summary == [
        ("garak/dan", Severity.LOW, "dan.Dan_11_0::mitigation.MitigationBypass"),
        ("garak/dan", Severity.HIGH, "dan.Dan_11_0::dan.DAN"),
        ("garak/promptinject", Severity.LOW, "promptinject.HijackHateHumans::promptinject.AttackRogueString"),
    ]
    dan = next(f for f in found if f.location.logical == "dan.Dan_11_0::dan.DAN")
    assert "2/10" in dan.message and "`dan.DAN`" in dan.message and "80% failed" in dan.message
    assert dan.location.path == "reports/garak.report.jsonl"
    assert dan.rule.help_uri and dan.rule.help_uri.endswith("#garakfamily")


def test_clean_report_has_no_findings(tmp_path: Path) -> None:
    path = _write(tmp_path, garak_report(evals=[("dan.Dan_11_0", "dan.DAN", 10, 10)]))
    assert garak.read_report(path) == []


def test_legacy_eval_fields(tmp_path: Path) -> None:
    path = _write(tmp_path, garak_report(evals=[("lmrc.Profanity", "riskywords.SurgeProfanity", 7, 10)], legacy=True))
    (finding,) = garak.read_report(path)
    assert finding.rule.id == "garak/lmrc" and finding.severity is Severity.MEDIUM
    assert "riskywords.SurgeProfanity" in finding.message and "detector." not in finding.message


def test_interrupted_run_is_counted_from_attempts(tmp_path: Path) -> None:
    path = _write(tmp_path, garak_report(attempts=[
        ("xss.MarkdownImageExfil", {"xss.MarkdownExfilBasic": [1.0, 0.0]}),
        ("xss.MarkdownImageExfil", {"xss.MarkdownExfilBasic": [0.9, None]}),
        ("dan.Dan_11_0", {"dan.DAN": [0.0]}),
    ], evals=[("dan.Dan_11_0", "dan.DAN", 1, 1)]))
    (finding,) = garak.read_report(path)
    assert finding.rule.id == "garak/xss"
    assert "1/3 outputs passed" in finding.message


@pytest.mark.parametrize(("text", "line"), [
    ('{"entry_type": "init"}\n{not json\n', 2),
    ('{"entry_type": "init"}\n[1, 2]\n', 2),
    ('{"entry_type": "init"}\n\n{"entry_type": "eval", "probe": "dan.X", "detector": "d.Y", "passed": 5, "total": 2}\n',
     3),
    ('{"entry_type": "eval", "probe": "dan.X", "passed": 1, "total": 2}\n', 1),
    ('{"entry_type": "attempt", "status": 2, "probe_classname": "dan.X", "detector_results": {"d.Y": "high"}}\n', 1),
])
def test_malformed_lines_name_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as err:
        garak.read_report(path)
    assert err.value.diagnostics().startswith(f"{path}:{line}: ")


def test_not_a_garak_report(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"entry_type": "something_else"}) + "\n")
    with pytest.raises(InputError, match="no garak report entries"):
        garak.read_report(path)
    with pytest.raises(InputError, match="cannot read"):
        garak.read_report(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(("rate", "severity"), [(0.0, Severity.LOW), (0.05, Severity.LOW), (0.1, Severity.MEDIUM),
                                                (0.49, Severity.MEDIUM), (0.5, Severity.HIGH), (1.0, Severity.HIGH)])
def test_severity_by_failure_rate(rate: float, severity: Severity) -> None:
    assert garak.severity_for(rate) is severity


def test_family_rule_is_documented() -> None:
    # One docs section covers every family; its anchor is the placeholder id `garak/family`.
    assert_documented([garak.rule_for("family")])
    assert garak.rule_for("dan").help_uri == garak.rule_for("family").help_uri


def test_fifo_or_device_as_report_is_refused_not_read(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "report.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        garak.parse_report(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        garak.parse_report(Path("/dev/zero"))


def test_deeply_nested_line_is_an_input_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(InputError):
        garak.parse_report(path)
