"""One output sanitiser: every text we print to a log, an annotation, a step summary or a SARIF message
comes from the scanned tree (file names, pickle globals, waiver owners) and is hostile.

- `log_line`: one line for a log or an annotation: no CR/LF, no workflow command (`::`), bounded length.
- `md_text`: text for a Markdown summary or table cell: no active Markdown/HTML, no line breaks.
"""

from __future__ import annotations

import re

MAX_LINE = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def log_line(text: str, limit: int = MAX_LINE) -> str:
    """Safe as one log line: control characters escaped, `::` broken so no runner reads a command."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    text = text.replace("::", ":\u200b:").replace("%", "%25")
    return _bounded(text, limit)


def md_text(text: str, limit: int = MAX_LINE) -> str:
    """Safe inside Markdown (a table cell or a sentence): no HTML, links, images or line breaks."""
    text = log_line(text, limit)
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~&])", r"\\\1", text)
