"""GitHub Actions I/O: step outputs, job summary, annotations, masking, `MLSEC_*` inputs.

Outside Actions (no GITHUB_OUTPUT etc.) every writer is a no-op, so stages behave the same locally.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

from mlsec_actions.sanitize import log_line, md_cell


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def env_input(name: str) -> str | None:
    """An input passed by a composite action as `MLSEC_<NAME>` (dashes become underscores)."""
    value = os.environ.get("MLSEC_" + name.upper().replace("-", "_"))
    return value if value not in (None, "") else None


# GitHub keeps at most 1 MiB of summary per step; past that the whole summary is dropped.
MAX_SUMMARY_BYTES = 1024 * 1024 - 4096
MAX_ANNOTATION = 4000
MAX_TITLE = 200
ANNOTATION_LEVELS = ("error", "warning", "notice")
_OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,99}")
# Line breaks the runner or a Markdown renderer may honour inside one line of our Markdown.
_STRAY_BREAKS = re.compile("\r\n?|[\x0b\x0c\x85\u2028\u2029]")
_LEGACY_COMMAND = re.compile(r"#(?=#\[)")


def _append(var: str, text: str) -> bool:
    target = os.environ.get(var)
    if not target:
        return False
    with Path(target).open("a", encoding="utf-8", errors="backslashreplace", newline="") as fh:
        fh.write(text)
    return True


def set_output(name: str, value: str) -> bool:
    """Write a step output. A value with any line break (CR, LF, NEL, U+2028...: whatever some reader
    might split at) is written in the heredoc form with a random delimiter that is not in the value, so
    no value (a hostile path with a newline) can end its entry early or add an output of its own."""
    if not _OUTPUT_NAME.fullmatch(name):
        raise ValueError(f"not an output name: {name!r}")
    if len(value.splitlines()) <= 1 and not value.endswith(("\n", "\r")) and "\x00" not in value:
        return _append("GITHUB_OUTPUT", f"{name}={value}\n")
    delim = f"MLSEC_EOF_{secrets.token_hex(16)}"
    while delim in value:  # astronomically unlikely; a loop costs nothing
        delim = f"MLSEC_EOF_{secrets.token_hex(16)}"
    return _append("GITHUB_OUTPUT", f"{name}<<{delim}\n{value}\n{delim}\n")


def _defuse_markdown(markdown: str) -> str:
    """Belt and braces for Markdown we build ourselves (hostile parts already went through
    `sanitize.md_text`): no stray line breaks, no line a runner would read as a command."""
    lines = []
    for line in _STRAY_BREAKS.sub(" ", markdown).split("\n"):
        line = _LEGACY_COMMAND.sub(r"#\\", line)
        if line.lstrip().startswith("::"):
            line = "\\" + line.lstrip()
        lines.append(line)
    return "\n".join(lines)


def append_summary(markdown: str) -> bool:
    """Add Markdown to the job summary page, bounded so the page stays under GitHub's limit. Callers
    pass hostile text through `sanitize.md_text` / `md_table` first."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    text = _defuse_markdown(markdown.rstrip("\n")) + "\n\n"
    try:
        used = Path(target).stat().st_size
    except OSError:
        used = 0
    size = len(text.encode("utf-8", "backslashreplace"))
    if used + size > MAX_SUMMARY_BYTES:
        room = max(0, MAX_SUMMARY_BYTES - used - 200)
        text = text.encode("utf-8", "backslashreplace")[:room].decode("utf-8", "ignore")
        text = text[: text.rfind("\n") + 1] + "\n*(summary truncated: over GitHub's size limit)*\n\n"
    return _append("GITHUB_STEP_SUMMARY", text)


def md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; every cell (and header) goes through `sanitize.md_cell`."""
    head = [md_cell(h) for h in header]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [md_cell(c) for c in row][: len(head)]
        cells += ["\\-"] * (len(head) - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, *, file: str | None = None, line: int | None = None,
               title: str | None = None, stream: TextIO | None = None) -> None:
    """Print a workflow command annotation (`error`, `warning`, `notice`); only inside Actions. Message,
    title and file are hostile: each goes through `sanitize.log_line`, then the runner's escaping."""
    if level not in ANNOTATION_LEVELS:
        raise ValueError(f"not an annotation level: {level!r}")
    if not in_actions():
        return
    props = []
    if file:
        props.append(f"file={_escape_property(log_line(file))}")
    if line is not None and line > 0:
        props.append(f"line={int(line)}")
    if title:
        props.append(f"title={_escape_property(log_line(title, MAX_TITLE))}")
    head = f"::{level} {','.join(props)}::" if props else f"::{level}::"
    print(head + _escape_data(log_line(message, MAX_ANNOTATION)), file=stream or sys.stdout, flush=True)


def mask(value: str, stream: TextIO | None = None) -> None:
    """Ask the runner to mask a secret in all later log output (each line separately, split where the
    runner splits: CR and LF)."""
    if not in_actions():
        return
    for line in re.split(r"\r\n|\r|\n", value):
        if line.strip():
            print(f"::add-mask::{_escape_data(line)}", file=stream or sys.stdout, flush=True)
