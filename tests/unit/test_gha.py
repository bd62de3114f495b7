from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlsec_actions import gha
from tests.adversarial.workflow_commands import commands_in, fragment_is_inert


@pytest.fixture
def actions_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary"))
    return tmp_path


def _outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT parsed the way the runner does: `name<<DELIM`, value lines, a line equal to DELIM."""
    lines = path.read_bytes().decode().split("\n")
    out: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i]:
        if "<<" not in lines[i]:
            name, value = lines[i].split("=", 1)
            assert name not in out
            out[name] = value
            i += 1
            continue
        name, delim = lines[i].split("<<", 1)
        end = lines.index(delim, i + 1)
        assert name not in out
        out[name] = "\n".join(lines[i + 1:end])
        i = end + 1
    return out


def test_outputs_single_and_multiline(actions_env: Path) -> None:
    assert gha.set_output("findings", "3")
    assert gha.set_output("list", "a\nb")
    assert _outputs(actions_env / "output") == {"findings": "3", "list": "a\nb"}
    assert (actions_env / "output").read_text().startswith("findings=3\n")


@pytest.mark.parametrize("value", [
    "x\nverdict=pass",
    "x\nverdict<<EOF\npass\nEOF",
    "ghost\r\nverdict=pass\r\n",
    "MLSEC_EOF_\nverdict=pass",
    "x\rverdict=pass",
    "x\u2028verdict=pass",
    "x\x85verdict=pass",
    "x\x00verdict=pass",
])
def test_output_value_cannot_add_an_output(actions_env: Path, value: str) -> None:
    gha.set_output("sarif-file", value)
    gha.set_output("findings", "1")
    assert _outputs(actions_env / "output") == {"sarif-file": value, "findings": "1"}


def test_output_delimiter_is_random(actions_env: Path) -> None:
    gha.set_output("a", "1\n2")
    gha.set_output("b", "1\n2")
    heads = [line for line in (actions_env / "output").read_text().splitlines() if "<<" in line]
    assert len({h.split("<<")[1] for h in heads}) == 2


@pytest.mark.parametrize("name", ["", "a=b", "a\nb", "a<<b", "-x", "a b"])
def test_output_name_is_checked(actions_env: Path, name: str) -> None:
    with pytest.raises(ValueError):
        gha.set_output(name, "1")


def test_outputs_are_noops_outside_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    assert not gha.set_output("x", "1")


def test_summary_appends(actions_env: Path) -> None:
    gha.append_summary("# one")
    gha.append_summary("two")
    assert (actions_env / "summary").read_text() == "# one\n\ntwo\n\n"


def test_annotation_escapes_data_and_properties(actions_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gha.annotation("error", "50% bad\nnext", file="a,b:c.py", line=3, title="t")
    assert capsys.readouterr().out == "::error file=a%2Cb%3Ac.py,line=3,title=t::50%25 bad\\x0anext\n"


@pytest.mark.parametrize("hostile", [
    "p\n::error title=pwned::X\n.pkl", "x\r::warning::y", "a\u2028::error::b", "%0A::error::c",
    "##[error]d", "::stop-commands::tok",
])
def test_annotation_is_one_command_whatever_the_text(actions_env: Path, capsys: pytest.CaptureFixture[str],
                                                      hostile: str) -> None:
    gha.annotation("warning", f"modelscan: {hostile}", file=hostile, title=hostile, line=1)
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.count("\n") == 1
    assert commands_in(out) == [(1, "warning")]
    props, data = out[len("::warning "):].split("::", 1)
    # The runner unescapes the data: what it shows must still be one inert line.
    shown = data.rstrip("\n").replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
    assert fragment_is_inert(shown), shown
    assert [p.split("=")[0] for p in props.split(",")] == ["file", "line", "title"]


def test_annotation_bounds_message_and_title(actions_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gha.annotation("error", "m" * 100_000, title="t" * 10_000)
    out = capsys.readouterr().out
    assert len(out) < gha.MAX_ANNOTATION + gha.MAX_TITLE + 50


def test_annotation_level_is_checked(actions_env: Path) -> None:
    with pytest.raises(ValueError):
        gha.annotation("add-mask", "x")


def test_summary_defuses_commands_and_bounds_size(actions_env: Path) -> None:
    gha.append_summary("ok\n::error::x\n  ::warning::y\nz ##[error]w\r::notice::v\u2028::debug::u")
    text = (actions_env / "summary").read_text()
    assert commands_in(text) == []
    gha.append_summary("x" * (2 * gha.MAX_SUMMARY_BYTES))
    gha.append_summary("later")
    assert (actions_env / "summary").stat().st_size <= gha.MAX_SUMMARY_BYTES
    assert "summary truncated" in (actions_env / "summary").read_text()


def test_md_table_cells_are_sanitised(actions_env: Path) -> None:
    table = gha.md_table(["result", "file"], [["FAIL", "a|b\n::error::x <img src=x> [l](http://e)"], ["ok"]])
    rows = table.split("\n")
    assert len(rows) == 4
    assert all(len(re.findall(r"(?<!\\)\|", r)) == 3 for r in rows), table
    assert commands_in(table) == [] and "<" not in table and "](" not in table


def test_mask_each_line(actions_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gha.mask("s3cr3t\nline2\r\n50%")
    assert capsys.readouterr().out == "::add-mask::s3cr3t\n::add-mask::line2\n::add-mask::50%25\n"


def test_mask_silent_outside_actions(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    gha.mask("s3cr3t")
    assert capsys.readouterr().out == ""


def test_env_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSEC_VULN_DB", "skip")
    monkeypatch.setenv("MLSEC_EMPTY", "")
    assert gha.env_input("vuln-db") == "skip"
    assert gha.env_input("empty") is None
