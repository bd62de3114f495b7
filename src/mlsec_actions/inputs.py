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
from typing import Any

from mlsec_actions.errors import InputError

# Policies, configs, model cards, verdicts: small documents. SARIF sets can be large.
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
MAX_SARIF_BYTES = 512 * 1024 * 1024


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


def load_json(path: Path, what: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Parse `path` as JSON; `what` names the kind of file in the error ("verdict", "SARIF")."""
    data = read_regular(path, what, max_bytes)
    try:
        return json.loads(data)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise InputError(path, f"{what} is not valid JSON ({e}); truncated or corrupt?") from None
    except RecursionError:
        raise InputError(path, f"{what} is nested too deeply") from None
