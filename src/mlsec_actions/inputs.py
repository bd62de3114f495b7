"""Reading a user-supplied input file: one place that turns an unreadable or malformed file into a
one-line `InputError` naming the file (exit 2), so every command words it the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlsec_actions.errors import InputError


def load_json(path: Path, what: str) -> Any:
    """Parse `path` as JSON; `what` names the kind of file in the error ("verdict", "SARIF")."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(path, f"cannot read {what}: {e.strerror or e}") from None
    try:
        return json.loads(data)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise InputError(path, f"{what} is not valid JSON ({e}); truncated or corrupt?") from None
