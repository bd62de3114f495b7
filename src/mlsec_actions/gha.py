"""GitHub Actions I/O: step outputs, job summary, annotations, masking, `MLSEC_*` inputs.

Outside Actions (no GITHUB_OUTPUT etc.) every writer is a no-op, so stages behave the same locally.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import TextIO


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def env_input(name: str) -> str | None:
    """An input passed by a composite action as `MLSEC_<NAME>` (dashes become underscores)."""
    value = os.environ.get("MLSEC_" + name.upper().replace("-", "_"))
    return value if value not in (None, "") else None


def _append(var: str, text: str) -> bool:
    target = os.environ.get(var)
    if not target:
        return False
    with Path(target).open("a", encoding="utf-8") as fh:
        fh.write(text)
    return True


def set_output(name: str, value: str) -> bool:
    """Write a step output; multi-line values use a random heredoc delimiter that cannot collide."""
    if "\n" in value or "\r" in value:
        delim = f"MLSEC_EOF_{secrets.token_hex(8)}"
        return _append("GITHUB_OUTPUT", f"{name}<<{delim}\n{value}\n{delim}\n")
    return _append("GITHUB_OUTPUT", f"{name}={value}\n")


def append_summary(markdown: str) -> bool:
    """Add markdown to the job summary page."""
    return _append("GITHUB_STEP_SUMMARY", markdown.rstrip("\n") + "\n\n")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, *, file: str | None = None, line: int | None = None,
               title: str | None = None, stream: TextIO | None = None) -> None:
    """Print a workflow command annotation (`error`, `warning`, `notice`); only inside Actions."""
    if not in_actions():
        return
    props = []
    if file:
        props.append(f"file={_escape_property(file)}")
    if line:
        props.append(f"line={line}")
    if title:
        props.append(f"title={_escape_property(title)}")
    head = f"::{level} {','.join(props)}::" if props else f"::{level}::"
    print(head + _escape_data(message), file=stream or sys.stdout, flush=True)


def mask(value: str, stream: TextIO | None = None) -> None:
    """Ask the runner to mask a secret in all later log output (each line separately)."""
    if not in_actions():
        return
    for line in value.splitlines() or [value]:
        if line.strip():
            print(f"::add-mask::{_escape_data(line)}", file=stream or sys.stdout, flush=True)
