"""The output sanitiser against the runner's command parser (modelled from actions/runner's source) and
a real Markdown renderer, on the payloads of issue 9 and on anything Hypothesis makes up."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from mlsec_actions import sanitize
from mlsec_actions.sanitize import log_line, md_cell, md_text, sarif_text
from tests.adversarial.workflow_commands import command_in_line, commands_in, fragment_is_inert

# Issue 9, "What was seen" 6, and the runner's other ways in.
PAYLOADS = [
    "p\n::error title=pwned::X\n.pkl",
    "bob\n::error file=a.py,line=1::forged",
    "x\r::warning::cr only",
    "x\r\n::notice::crlf",
    "x\x85::error::NEL",
    "x\u2028::error::LS",
    "x\u2029::error::PS",
    "  \t::error::leading whitespace",
    "::stop-commands::pwnedtoken",
    "::pwnedtoken::",
    "::add-mask::hunter2",
    "::set-output name=verdict::pass",
    "::ERROR::upper case name",
    "text ##[error]legacy anywhere in the line",
    "##[set-env name=X;]1",
    ":\u200b:error:\u200b:zero-width between the colons",
    "\u200b::error::zero-width before",
    ":\u00ad:error:\u00ad:soft hyphen",
    ":\x00:error:\x00:NUL",
    "%0A::error::escaped newline",
    "50%25 %0D%0a",
    "name-\udcff\udcfe.pkl",  # a non-UTF-8 file name, as os.fsdecode gives it
    "bidi \u202eevil\u202c",
    "[click](https://evil.example) ![img](https://evil.example/x.png)",
    "<img src=x onerror=alert(1)> <a href='https://e'>x</a> <details>",
    "<https://evil.example> www.evil.example mail@evil.example @octocat #1",
    "# heading", "1. list", "- list", "> quote", "| a | b |", "`code` *em* _em_ ~~del~~ $x^2$",
    "builtins.eval&#60;script&#62;",
    "\\[x\\](0)",
    "A" * 5000,
]
RENDERER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
ANY_TEXT = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(list(":#[]()%0aAdD25 \t\r\n\x85\u2028\u2029\u200b\u00ad<>!|`*_\\&@w./-=")),
            max_size=60),
    st.lists(st.sampled_from(PAYLOADS[:-1]), max_size=4).map("".join),
)


def _visible_markdown(rendered: str) -> str:
    """The text a reader sees in rendered HTML (tags dropped, entities decoded, ZWSP removed)."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered)).replace("\u200b", "").strip()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_become_one_inert_line(payload: str) -> None:
    out = log_line(payload)
    assert commands_in(out) == []
    assert fragment_is_inert(out), out
    assert out.isprintable()
    out.encode("utf-8")  # no lone surrogate left: printing it cannot crash


def test_the_model_sees_what_the_runner_sees() -> None:
    """The oracle itself: it must flag each raw payload the runner would act on."""
    assert command_in_line("  ::error::x") == "error"
    assert command_in_line("a ##[warning]x") == "warning"
    assert command_in_line(":\u200b:error:\u200b:x") == "error"
    assert commands_in("ok\n::stop-commands::t\n::t::") == [(2, "stop-commands"), (3, "t")]
    assert commands_in("p\n::error title=pwned::X\n.pkl") == [(2, "error")]
    assert command_in_line("a :: b") is None


@pytest.mark.parametrize(("text", "expected"), [
    ("plain model.pkl, 3 findings", "plain model.pkl, 3 findings"),
    ("a\nb", "a\\x0ab"),
    ("a\r\nb", "a\\x0d\\x0ab"),
    ("::error::x", ":\\:error:\\:x"),
    (":::", ":\\:\\:"),
    ("x ##[error]y", "x #\\#[error]y"),
    ("%0A %zz 100%", "%\\0A %zz 100%"),
    ("\u2028\x85", "\\u2028\\x85"),
    ("bad-\udcff", "bad-\\xff"),
    ("\u200b", "\\u200b"),
    ("caf\u00e9 \u4e2d", "caf\u00e9 \u4e2d"),
])
def test_log_line_exact(text: str, expected: str) -> None:
    assert log_line(text) == expected


def test_log_line_bounds_and_marks_the_cut() -> None:
    assert log_line("x" * 20, limit=10) == "x" * 9 + "…"
    assert len(log_line("\n" * 500, limit=50)) == 50
    assert log_line("y" * 10, limit=10) == "y" * 10
    with pytest.raises(ValueError):
        log_line("x", limit=0)


@pytest.mark.parametrize(("text", "expected"), [
    ("[a](b)", "\\[a\\]\\(b\\)"),
    ("<b>&", "&lt;b&gt;&amp;"),
    ("a|b", "a\\|b"),
    ("# h", "\\# h"),
    ("1. x", "1\\. x"),
    ("- x", "\\- x"),
    ("https://e.x", "https:\u200b//e.x"),
    ("WWW.e.x", "WWW\u200b.e.x"),
    ("@octocat", "@\u200boctocat"),
    ("model.pkl", "model.pkl"),
])
def test_md_text_exact(text: str, expected: str) -> None:
    assert md_text(text) == expected


def test_md_cell_marks_empty_and_bounds() -> None:
    assert md_cell("") == "\\-"
    assert len(md_cell("a" * 1000)) == sanitize.MAX_CELL


def test_md_text_cut_never_leaves_an_escape_or_entity_open() -> None:
    for n in range(2, 30):
        for text in ("<" * 40, "|" * 40, "a&" * 20, "\\" * 40):
            out = md_text(text, limit=n)
            assert len(out) <= n
            assert not re.search(r"&[a-z]*…$", out), out
            body = out[:-1] if out.endswith("…") else out
            assert (len(body) - len(body.rstrip("\\"))) % 2 == 0, out


@pytest.mark.parametrize(("text", "expected"), [
    ("[x](0)", "\\[x\\](0)"),
    ("\\[x\\](0)", "\\\\\\[x\\\\\\](0)"),
    ("a\\b", "a\\b"),
])
def test_sarif_text_exact(text: str, expected: str) -> None:
    assert sarif_text(text) == expected


@settings(max_examples=300, deadline=None)
@given(text=ANY_TEXT, limit=st.integers(min_value=1, max_value=300))
def test_log_line_is_always_inert_printable_and_bounded(text: str, limit: int) -> None:
    out = log_line(text, limit)
    assert len(out) <= limit
    assert fragment_is_inert(out)
    assert commands_in("  " + out) == []
    assert out.isprintable()
    out.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(categories=["L", "N"]) | st.just(" "), max_size=80))
def test_log_line_keeps_harmless_text_unchanged(text: str) -> None:
    # Letters, digits and spaces never need escaping; an over-eager sanitiser garbles every log.
    assert log_line(text, 1000) == text


@settings(max_examples=300, deadline=None)
@given(text=ANY_TEXT, limit=st.integers(min_value=1, max_value=300))
def test_md_text_has_no_active_markdown(text: str, limit: int) -> None:
    out = md_text(text, limit)
    assert len(out) <= limit
    assert "<" not in out and ">" not in out
    assert "](" not in out and "![" not in out
    assert fragment_is_inert(out)
    assert re.search(r"(?i)https?://|www\.|@\w", out) is None
    unescaped_pipe = re.search(r"(?<!\\)(?:\\\\)*\|", out)
    assert unescaped_pipe is None, out


@settings(max_examples=300, deadline=None)
@given(text=ANY_TEXT)
def test_md_text_renders_as_exactly_its_text(text: str) -> None:
    """Rendered by a real CommonMark renderer (raw HTML on), the cell is one plain cell showing exactly
    what `log_line` shows: no tag, link, image or emphasis, and no extra cell."""
    cell = md_text(text, limit=100_000)
    rendered = RENDERER.render(f"| h |\n|---|\n| {cell} |\n")
    body = rendered.split("<tbody>", 1)[1] if "<tbody>" in rendered else ""
    tags = set(re.findall(r"</?([a-z0-9]+)", body))
    assert tags <= {"tr", "td", "tbody", "table"}, rendered
    assert body.count("<td") == 1, rendered
    assert _visible_markdown(body) == log_line(text, 100_000).strip()
    sentence = RENDERER.render(md_text(text, limit=100_000))
    assert set(re.findall(r"</?([a-z0-9]+)", sentence)) <= {"p"}, sentence


@settings(max_examples=300, deadline=None)
@given(text=ANY_TEXT, limit=st.integers(min_value=1, max_value=300))
def test_sarif_text_has_no_embedded_link(text: str, limit: int) -> None:
    out = sarif_text(text, limit)
    assert len(out) <= limit
    assert fragment_is_inert(out)
    # Every bracket is escaped: preceded by an odd number of backslashes.
    for m in re.finditer(r"(\\*)[\[\]]", out):
        assert len(m[1]) % 2 == 1, out


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("abcdef", 6, "abcdef"),
    ("abcdefg", 6, "abcde…"),
    ("[x]" * 10, 10, "\\[x\\]\\[x…"),  # the cut would end on the backslash of `\[`: it goes too
    ("[[[[[", 5, "\\[\\[…"),
    ("a[[", 4, "a\\[…"),
    ("ab\\[", 4, "ab…"),
    ("\n" * 5, 12, "\\x0a\\x0a\\x0…"),
])
def test_sarif_text_bounds_exact(text: str, limit: int, expected: str) -> None:
    assert sarif_text(text, limit) == expected


def test_sarif_text_default_bound_is_its_own_not_the_log_lines() -> None:
    assert sarif_text("x" * 3000) == "x" * (sanitize.MAX_SARIF_MESSAGE - 1) + "…"
    assert sarif_text("[" * 1500) == "\\[" * 999 + "…"


@pytest.mark.parametrize(("text", "expected"), [
    ("\x7f", "\\x7f"), ("\x80", "\\x80"), ("\xa0", "\\xa0"), ("\xad", "\\xad"),  # DEL, a C1 control, NBSP, SHY
    ("\u034f", "\\u034f"), ("\u180b", "\\u180b"), ("\u180f", "\\u180f"), ("\ufe00", "\\ufe00"), ("\ufe0f", "\\ufe0f"),
    ("\U000e0100", "\\U000e0100"), ("\U000e01ef", "\\U000e01ef"),  # default-ignorable, each range's ends
    ("\U000f0000", "\\U000f0000"), ("\uffff", "\\uffff"), ("\U00010000", "\U00010000"),  # private use, unassigned
    ("\udc80", "\\x80"), ("\udcff", "\\xff"), ("\udc7f", "\\udc7f"), ("\udd00", "\\udd00"),  # surrogateescape range
])
def test_invisible_characters_escape_exactly(text: str, expected: str) -> None:
    assert log_line(text) == expected


def test_bounds_of_one_character_and_their_refusal() -> None:
    assert sanitize.bounded("abc", 1) == "…" and log_line("abc", 1) == "…" and sanitize.bounded("a", 1) == "a"
    for limit in (0, -1):
        with pytest.raises(ValueError, match=r"^limit must be at least 1$"):
            sanitize.bounded("abc", limit)


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("abcde", 5, "abcde"),
    ("abcdefgh", 5, "abcd…"),
    ("&&&&", 11, "&amp;&amp;…"),  # the cut keeps a whole entity
    ("&&&&", 12, "&amp;&amp;…"),  # and drops a partial one
    ("a" * 3000, 5000, "a" * 3000),  # a bound above log_line's default is md_text's own
])
def test_md_text_bounds_exact(text: str, limit: int, expected: str) -> None:
    assert md_text(text, limit) == expected


def test_sarif_text_keeps_an_even_run_of_backslashes_at_the_cut() -> None:
    assert sarif_text("a\\\\zzzz", 4) == "a\\\\…"
    assert sarif_text("a\\[zzzz", 4) == "a\\\\…"  # `a\[` escaped is `a\\\[`: the cut keeps the pair
