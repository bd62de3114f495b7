"""Placeholder credentials: documented example values that a secret scanner matches but that grant nothing.

trivy's built-in allow rules skip whole paths (`tests/`, `examples/`); we turn those off and drop only
matches whose *value* is a placeholder: the AWS documentation keys, a run of one character (`xxxx`,
`0000`), a template (`<your-key>`, `${{ secrets.X }}`, `${TOKEN}`, `{{ token }}`) or a value spelled
`EXAMPLE`, a GitHub or npm token whose CRC32 checksum fails, or a long value with almost no randomness.
The value is read from the file at trivy's byte offset (trivy masks it in its report). Every
match dropped is returned as a reason, which the adapter records as a coverage gap: never silent.
"""

from __future__ import annotations

import math
import os
import re
import stat
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

DOCUMENTED = frozenset({  # split so that a scan of this package does not match them
    "AKIA" "IOSFODNN7EXAMPLE", "AKIA" "I44QH8DHBEXAMPLE", "wJalrXUtnFEMI/K7MDENG/" "bPxRfiCYEXAMPLEKEY",
    "je7MtGbClwBF/2Zp9Utk/" "h3yCo8nvbEXAMPLEKEY",
})
"""Values published in vendors' documentation as examples."""
_TEMPLATE = re.compile(r"<[^<>]{1,80}>|\$\{\{.{0,200}\}\}|\$\{[^{}]{1,80}\}|\{\{.{0,200}\}\}|%\([A-Za-z_]+\)s")
_ONE_CHAR = re.compile(r"^(?:[A-Za-z0-9]{1,12}[_-]|A[KS]IA)?(.)\1{7,}$")
_MAX_SECRET = 4096
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CRC_TOKEN = re.compile(r"^(?:gh[pousr]|npm)_[A-Za-z0-9]{36}$")
_LOW_ENTROPY = 2.5
"""Bits per character below which a value of 16 characters or more is not random (`aBcDaBcD...`)."""


def entropy(value: str) -> float:
    """Shannon entropy of `value` in bits per character."""
    if not value:
        return 0.0
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def base62(number: int, width: int = 6) -> str:
    """`number` in base62 (0-9, A-Z, a-z), left-padded with `0` to `width`."""
    out = ""
    while number:
        number, digit = divmod(number, 62)
        out = _BASE62[digit] + out
    return out.rjust(width, "0")


def checksum_ok(token: str) -> bool:
    """GitHub/npm format: the last 6 characters are base62(CRC32(the 30 characters after the 4-char prefix))."""
    body, check = token[4:-6], token[-6:]
    return base62(zlib.crc32(body.encode("ascii", "replace"))) == check


def placeholder(root: Path | None, target: str, secret: dict[str, Any]) -> str | None:
    """Why the secret trivy matched in `root/target` is a placeholder, or None when it is (or may be) real."""
    value = _value(root, target, secret)
    return None if value is None else value_placeholder(value)


def value_placeholder(value: str) -> str | None:
    """Why `value` is a placeholder (documented example, template, one character repeated), or None."""
    if value in DOCUMENTED:
        return "a vendor's documented example value"
    if _TEMPLATE.search(value):
        return "a template or variable reference"
    if _ONE_CHAR.match(value):
        return "one character repeated"
    if "EXAMPLE" in value:
        return "a value spelled EXAMPLE"
    if _CRC_TOKEN.match(value) and not checksum_ok(value):
        return "its CRC32 checksum does not match (not an issued token)"
    if len(value) >= 16 and entropy(value) < _LOW_ENTROPY:
        return f"entropy below {_LOW_ENTROPY:g} bits per character"
    return None


def _value(root: Path | None, target: str, secret: dict[str, Any]) -> str | None:
    """The matched text: `Offset` bytes into the file, as long as the run of `*` trivy masked it with."""
    offset, match = secret.get("Offset"), secret.get("Match")
    if root is None or not isinstance(offset, int) or offset < 0 or not isinstance(match, str):
        return None
    runs = re.findall(r"\*+", match)
    length = max((len(r) for r in runs), default=0)
    if not 0 < length <= _MAX_SECRET:
        return None
    path = root / target
    try:
        if not stat.S_ISREG(path.lstat().st_mode) or not Path(os.path.realpath(path)).is_relative_to(root):
            return None
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read(length)
    except (OSError, ValueError):
        return None
    return data.decode("utf-8", errors="replace") if len(data) == length else None
