from __future__ import annotations

from pathlib import Path

import pytest

from mlsec_actions import gha


@pytest.fixture
def actions_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary"))
    return tmp_path


def test_outputs_single_and_multiline(actions_env: Path) -> None:
    assert gha.set_output("findings", "3")
    assert gha.set_output("list", "a\nb")
    text = (actions_env / "output").read_text()
    assert text.startswith("findings=3\n")
    head, body = text.split("\n", 1)[1].split("\n", 1)
    name, delim = head.split("<<")
    assert name == "list"
    assert body == f"a\nb\n{delim}\n"


def test_outputs_are_noops_outside_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    assert not gha.set_output("x", "1")


def test_summary_appends(actions_env: Path) -> None:
    gha.append_summary("# one")
    gha.append_summary("two")
    assert (actions_env / "summary").read_text() == "# one\n\ntwo\n\n"


def test_annotation_escapes_data_and_properties(actions_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gha.annotation("error", "50% bad\nnext", file="a,b:c.py", line=3, title="t")
    assert capsys.readouterr().out == "::error file=a%2Cb%3Ac.py,line=3,title=t::50%25 bad%0Anext\n"


def test_mask_each_line(actions_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gha.mask("s3cr3t\nline2")
    assert capsys.readouterr().out == "::add-mask::s3cr3t\n::add-mask::line2\n"


def test_mask_silent_outside_actions(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    gha.mask("s3cr3t")
    assert capsys.readouterr().out == ""


def test_env_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSEC_VULN_DB", "skip")
    monkeypatch.setenv("MLSEC_EMPTY", "")
    assert gha.env_input("vuln-db") == "skip"
    assert gha.env_input("empty") is None
