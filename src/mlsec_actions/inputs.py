"""Reading a user-supplied input file: one place that turns an unreadable or malformed file into a
one-line `InputError` naming the file (exit 2), so every command words it the same way.

Every input is hostile: only regular files are opened (a FIFO or a device would hang or never end),
and sizes are bounded before parsing.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsec_actions.errors import InputError

if TYPE_CHECKING:
    from mlsec_actions.yaml_lines import Limits, Lines

# Policies, configs, model cards, verdicts: small documents. SARIF sets can be large.
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
MAX_SARIF_BYTES = 512 * 1024 * 1024
# YAML is parsed far slower than JSON and is only ever a hand-written document here.
MAX_YAML_BYTES = 1024 * 1024
# SARIF nests about 12 levels deep; property bags from other tools add a few.
MAX_JSON_DEPTH = 128

# Brackets only, `{}` folded into `[]` (a mismatch is json.loads's to report; depth is the same).
_BRACKETS_ONLY = bytes.maketrans(b"{}", b"[]"), bytes(b for b in range(256) if b not in b"[]{}")


def read_regular(path: Path, what: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of `path`, refusing anything but a regular file and anything over `max_bytes`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise InputError(path, f"cannot read {what}: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(path, f"{what} is not a regular file")
        if info.st_size > max_bytes:
            raise InputError(path, f"{what} is {info.st_size} bytes; the limit is {max_bytes}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise InputError(path, f"cannot read {what}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise InputError(path, f"{what} is over the {max_bytes}-byte limit")
    return data


def json_depth_over(data: bytes, max_depth: int) -> bool:
    """True when `data` nests arrays/objects deeper than `max_depth`. No recursion and no parse, each
    step in C: escapes dropped, strings cut out at their quotes, only brackets kept, then innermost
    pairs removed one level per pass."""
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(unescaped.split(b'"')[::2])
    brackets = outside_strings.translate(*_BRACKETS_ONLY)
    too_deep = b"[" * (max_depth + 1)  # that many opened in a row: over at once (the classic bomb)
    for _ in range(max_depth):
        if not brackets:
            return False
        if too_deep in brackets:
            return True
        shorter = brackets.replace(b"[]", b"")  # non-overlapping: one level per pass, never two
        if len(shorter) == len(brackets):  # unbalanced: json.loads will say so
            return False
        brackets = shorter
    return bool(brackets)


def load_json(path: Path, what: str, max_bytes: int = MAX_DOCUMENT_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse `path` as JSON; `what` names the kind of file in the error ("verdict", "SARIF")."""
    data = read_regular(path, what, max_bytes)
    if json_depth_over(data, max_depth):
        raise InputError(path, f"{what} is nested deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise InputError(path, f"{what} is not valid JSON ({e}); truncated or corrupt?") from None
    except RecursionError:
        raise InputError(path, f"{what} is nested too deeply") from None


def _yaml_text(path: Path, what: str, max_bytes: int) -> str:
    data = read_regular(path, what, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, f"{what} is not UTF-8 text (byte {e.start})") from None


def load_yaml_lines(path: Path, what: str, max_bytes: int = MAX_YAML_BYTES,
                    limits: Limits | None = None) -> tuple[Any, Lines]:
    """Parse `path` as one YAML document with bounded size, depth, aliases and nodes (`yaml_lines`);
    returns the data and the line of every key and item. Any problem is one `InputError` with a line."""
    import yaml  # not at start-up: most commands never read YAML

    from mlsec_actions import yaml_lines

    text = _yaml_text(path, what, max_bytes)
    try:
        return yaml_lines.compose(text, limits or yaml_lines.DEFAULT_LIMITS)
    except yaml_lines.DuplicateKey as e:
        raise InputError(path, f"{what} line {e.line}: {e.key}: duplicate key") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise InputError(path, f"{what} is not valid YAML ({where}{e.problem or e.context})") from None
    except yaml.YAMLError as e:  # a reader error (a control character) has no problem_mark
        raise InputError(path, f"{what} is not valid YAML ({str(e).splitlines()[0]})") from None


def load_yaml(path: Path, what: str, max_bytes: int = MAX_YAML_BYTES, limits: Limits | None = None) -> Any:
    """Parse `path` as one bounded YAML document (see `load_yaml_lines`); `what` names it in errors."""
    return load_yaml_lines(path, what, max_bytes, limits)[0]
