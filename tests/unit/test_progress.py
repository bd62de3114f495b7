"""`mlsec run`'s progress (progress.py): hostile text never becomes a control sequence, markup or a second line."""

from __future__ import annotations

import io
import json
import re

import pytest

from mlsec_actions import progress
from mlsec_actions.progress import Event

HOSTILE = "evil\x1b[2J\x1b]8;;https://x.invalid\x07link\r\n::error::pwned [bold red]markup[/] \u202e"


def _events() -> list[Event]:
    return [Event("run-start", "mlsec run r: mlsecops on /p"),
            Event("stage-start", "[code-scan] started", "code-scan"),
            Event("stage-end", f"[code-scan] ok in 1.0s: {HOSTILE}\n    {HOSTILE}", "code-scan", status="ok",
                  seconds=1.0, findings=3),
            Event("run-end", "results in /o: exit 0", status="0", findings=3)]


def test_plain_lines_are_one_per_event_and_clean() -> None:
    out = io.StringIO()
    emit = progress.plain(out)
    for e in _events():
        emit(e)
    text = out.getvalue()
    assert "[code-scan] started" not in text  # starts are shown by the live view only
    # One line per event shown; anything after a line break in its text is an indented continuation.
    assert [ln for ln in text.splitlines() if not ln.startswith("    ")] == [
        "mlsec run r: mlsecops on /p", ln_end := text.splitlines()[1], "results in /o: exit 0"]
    assert ln_end.startswith("[code-scan] ok in 1.0s: evil")
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text)
    assert not any(line.lstrip().startswith("::") for line in text.splitlines())
    assert "\u202e" not in text


def test_json_lines_are_one_object_per_event() -> None:
    out = io.StringIO()
    emit = progress.json_lines(out)
    for e in _events():
        emit(e)
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["event"] for d in docs] == ["run-start", "stage-start", "stage-end", "run-end"]
    end = docs[2]
    assert end["stage"] == "code-scan" and end["findings"] == 3 and end["seconds"] == 1.0
    assert "\n" not in end["message"] and "\x1b" not in end["message"]
    assert out.getvalue().isascii()


def test_live_view_prints_text_never_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    out.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    emit, close = progress.choose("auto", out)
    assert isinstance(emit, progress.Live)
    for e in _events():
        emit(e)
    close()
    text = out.getvalue()
    assert "[bold red]markup[/]" in text  # shown as written, not styled
    assert "code-scan" in text and "3 findings" in text and "findings so far: 3" in text
    assert "\x1b]8;;https://x.invalid" not in text and "\x1b[2J" not in text  # the stage's escapes are not passed on


def test_auto_is_plain_in_ci_or_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = io.StringIO()
    tty.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setenv("CI", "true")
    emit, _ = progress.choose("auto", tty)
    assert not isinstance(emit, progress.Live)
    monkeypatch.delenv("CI")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    emit, _ = progress.choose("auto", io.StringIO())
    assert not isinstance(emit, progress.Live)
