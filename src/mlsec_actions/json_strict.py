"""JSON objects read strictly. A key given twice is refused: parsers disagree on which copy wins, which is a
way to show a reviewer one value and act on another (a safetensors header, a JOSE header, a training log)."""

from __future__ import annotations

from typing import Any


class DuplicateKey(ValueError):
    """An object names the same key twice."""


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` for `json.loads`; the key is cut to 60 characters in the message (it is input)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(f"duplicate key {key[:60]!r}")
        out[key] = value
    return out
