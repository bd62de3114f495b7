"""Placeholder credentials: documented example values that a secret scanner matches but that grant nothing.

trivy's built-in allow rules skip whole paths (`tests/`, `examples/`); we turn those off and drop only
matches whose *value* is a placeholder: the AWS documentation keys, a run of one character (`xxxx`,
`0000`), a template (`<your-key>`, `${{ secrets.X }}`, `${TOKEN}`, `{{ token }}`) or a value spelled
`EXAMPLE`. The value is read from the file at trivy's byte offset (trivy masks it in its report). Every
match dropped is returned as a reason, which the adapter records as a coverage gap: never silent.
"""

from __future__ import annotations

import os
import re
import stat
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


def placeholder(root: Path | None, target: str, secret: dict[str, Any]) -> str | None:
    """Why the secret trivy matched in `root/target` is a placeholder, or None when it is (or may be) real."""
    value = _value(root, target, secret)
    if value is None:
        return None
    if value in DOCUMENTED:
        return "a vendor's documented example value"
    if _TEMPLATE.search(value):
        return "a template or variable reference"
    if _ONE_CHAR.match(value):
        return "one character repeated"
    if "EXAMPLE" in value:
        return "a value spelled EXAMPLE"
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
