"""The bounded Dockerfile reader: what Docker's parser does with continuations, directives, heredocs and comments,
and what a hostile file (huge, endless line, unclosed heredoc, not UTF-8) gets instead of a hang or silence."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mlsec_actions.analyzers import dockerfile
from mlsec_actions.analyzers.dockerfile import parse


def _kw(data: bytes) -> list[tuple[str, str, int, int]]:
    return [(i.keyword, i.args, i.line, i.end_line) for i in parse(data).instructions]


def test_continuations_join_and_drop_comments_and_blank_lines() -> None:
    data = b"FROM a:1\nRUN apt-get update \\\n  # a comment inside\n\n  && apt-get install x\nUSER 1\n"
    assert _kw(data) == [("FROM", "a:1", 1, 1), ("RUN", "apt-get update && apt-get install x", 2, 5),
                         ("USER", "1", 6, 6)]


def test_escape_directive_switches_to_backtick_only_at_the_top() -> None:
    ticked = parse(b"# escape=`\nFROM a:1\nRUN dir `\n  c:\\\\x\n")
    assert ticked.escape == "`"
    assert [i.args for i in ticked.instructions] == ["a:1", "dir c:\\\\x"]
    late = parse(b"FROM a:1\n# escape=`\nRUN x `\nUSER 1\n")
    assert late.escape == "\\"
    assert [i.keyword for i in late.instructions] == ["FROM", "RUN", "USER"]


def test_heredocs_are_read_whole_and_tabs_stripped_for_dash_form() -> None:
    data = b"FROM a:1\nRUN <<EOF\ncurl x | sh\nEOF\nRUN <<-'END' cat\n\t\techo hi\n\tEND\nUSER 1\n"
    ins = parse(data).instructions
    assert ins[1].heredocs == ("curl x | sh",) and (ins[1].line, ins[1].end_line) == (2, 4)
    assert ins[2].heredocs == ("echo hi",)
    assert [i.keyword for i in ins] == ["FROM", "RUN", "RUN", "USER"]


def test_heredoc_only_for_run_copy_add() -> None:
    ins = parse(b"FROM a:1\nENV X=<<EOF\nUSER 1\n").instructions
    assert [i.keyword for i in ins] == ["FROM", "ENV", "USER"]


def test_unclosed_heredoc_is_a_problem_not_a_hang() -> None:
    parsed = parse(b"FROM a:1\nRUN <<EOF\necho\nUSER 1\n")
    assert parsed.problems == ((2, "heredoc <<EOF is never closed"),)


def test_exec_form_words_and_stages() -> None:
    parsed = parse(b'FROM a:1 AS b\nRUN ["sh", "-c", "echo hi"]\nFROM b\nCMD ["x"]\n')
    run = parsed.instructions[1]
    assert run.exec_form() == ["sh", "-c", "echo hi"] and run.words() == ["sh", "-c", "echo hi"]
    assert parse(b"RUN [not json\n").instructions[0].exec_form() is None
    assert [i.stage for i in parsed.instructions] == [0, 0, 1, 1] and parsed.stages == 2


def test_crlf_and_lowercase_keywords() -> None:
    assert _kw(b"from a:1\r\nuser 1\r\n") == [("FROM", "a:1", 1, 1), ("USER", "1", 2, 2)]


def test_huge_file_is_cut_and_said() -> None:
    data = b"FROM a:1\n" + b"RUN x\n" * (dockerfile.MAX_BYTES // 6 + 10)
    parsed = parse(data)
    assert parsed.problems[0][1].startswith("file larger than")


def test_endless_line_is_cut_and_said() -> None:
    parsed = parse(b"FROM a:1\nRUN " + b"x" * (dockerfile.MAX_INSTRUCTION + 5) + b"\nUSER 1\n")
    assert len(parsed.instructions[1].args) <= dockerfile.MAX_INSTRUCTION
    assert any("longer than" in what for _, what in parsed.problems)
    assert parsed.instructions[-1].keyword == "USER"


def test_too_many_instructions_is_said() -> None:
    parsed = parse(b"USER 1\n" * (dockerfile.MAX_INSTRUCTIONS + 3))
    assert len(parsed.instructions) == dockerfile.MAX_INSTRUCTIONS
    assert "instructions" in parsed.problems[-1][1]


def test_not_utf8_is_flagged_and_still_read() -> None:
    parsed = parse(b"FROM a:1\nUSER r\xffoot\n")
    assert parsed.not_utf8 and parsed.instructions[1].args == "r\ufffdoot"
    assert not parse("FROM a:1\nLABEL x=\ufffd\n".encode()).not_utf8


def test_a_line_that_is_not_an_instruction_is_a_problem() -> None:
    assert parse(b"FROM a:1\n--weird\n").problems == ((2, "a line that is not an instruction"),)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_error(data: bytes) -> None:
    parsed = parse(data)
    assert all(1 <= i.line <= i.end_line for i in parsed.instructions)
