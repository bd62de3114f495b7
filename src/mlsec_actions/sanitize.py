"""One output sanitiser: every text we print to a log, an annotation, a step summary or a SARIF message
comes from the scanned tree (file names, pickle globals, waiver owners) and is hostile.

- `log_line`: one line for a log or an annotation: no line break of any kind, no workflow command, bounded.
- `md_text`: text for a Markdown sentence or table cell: `log_line`, then no HTML, link, image, autolink,
  mention, heading, emphasis or table pipe.
- `sarif_text`: a SARIF `message.text`: `log_line`, then no embedded link (`[text](n)`, SARIF §3.11.6).

How GitHub's runner reads a log line (actions/runner `ActionCommand.TryParseV2`/`TryParse`, checked
against its source): a line is split off at CR or LF; `::name props::data` counts when the line starts
with `::` after leading whitespace is trimmed; the legacy `##[name props]data` counts with `##[` at ANY
position; command names are case-insensitive, and `::stop-commands::TOKEN` makes `TOKEN` itself a
command. Data is unescaped (`%0D`, `%0A`, `%25`; legacy also `%3B`, `%5D`). The runner compares strings
culture-sensitively, and ICU ignores zero-width and other format characters there, so `:<ZWSP>:` may
still read as `::`: we neutralise with visible characters and escape every invisible one.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LINE = 1000
MAX_CELL = 200
MAX_SARIF_MESSAGE = 2000
ELLIPSIS = "…"

# Categories escaped as `\xNN` / `\uNNNN`: controls (CR, LF, NEL...), format characters (zero-width,
# bidi overrides, soft hyphen), lone surrogates (undecodable file-name bytes), private use, unassigned,
# the line/paragraph separators U+2028/U+2029, and every space but ASCII's (NBSP, ideographic space:
# look-alikes in a file name).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})
# Default-ignorable code points outside those categories (Unicode's DerivedCoreProperties).
_IGNORABLE_RANGES = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F),
                     (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0100, 0xE01EF))
_COMMAND_PAIR = re.compile(r":(?=:)")          # `::` anywhere: `:\:`
_LEGACY_COMMAND = re.compile(r"#(?=#\[)")      # `##[` anywhere: `#\#[`
_PERCENT_ESCAPE = re.compile(r"%(?=[0-9A-Fa-f]{2})")  # `%0A`: `%\0A`, so no runner decodes it
_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()#+!|~$^])")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_BLOCK_START = re.compile(r"^(\d+)([.)])|^([-+=])")
_ZWSP = "\u200b"  # only in Markdown, where it breaks autolinks; the runner never parses a summary
_AUTOLINK = re.compile(r"(:)(?=//)|(www)(?=\.)|(@)", re.IGNORECASE)
_SARIF_BRACKETS = re.compile(r"(\\*)([\[\]])")  # a bracket and the backslashes before it


def _needs_escape(ch: str) -> bool:
    code = ord(ch)
    if code < 0x80:
        return code < 0x20 or code == 0x7F
    if unicodedata.category(ch) in _ESCAPED_CATEGORIES:
        return True
    return any(lo <= code <= hi for lo, hi in _IGNORABLE_RANGES)


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 in a file name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _escape_invisible(text: str) -> str:
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape_char(c) if _needs_escape(c) else c for c in text)


def bounded(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the cut marked with an ellipsis."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def log_line(text: object, limit: int = MAX_LINE) -> str:
    """Safe as one log line or annotation text: invisible characters escaped visibly (so no CR, LF,
    NEL, U+2028/2029), `::`, `##[` and `%XX` broken by a backslash, at most `limit` characters."""
    out = _escape_invisible(str(text))
    out = _COMMAND_PAIR.sub(r":\\", out)
    out = _LEGACY_COMMAND.sub(r"#\\", out)
    out = _PERCENT_ESCAPE.sub(r"%\\", out)
    return bounded(out, limit)


def md_text(text: object, limit: int = MAX_LINE) -> str:
    """Safe inside Markdown (a sentence or a table cell): `log_line`, then no HTML or entity, no link,
    image, autolink or mention, no emphasis, code, math, heading, list or table pipe."""
    out = log_line(text, limit)
    out = "".join(_MD_ENTITIES.get(c, c) for c in out)
    out = _MD_PUNCT.sub(r"\\\1", out)
    out = _MD_BLOCK_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", out)
    out = _AUTOLINK.sub(lambda m: m[0] + _ZWSP, out)
    return _bounded_markdown(out, limit)


def md_cell(text: object, limit: int = MAX_CELL) -> str:
    """`md_text` for a table cell, with a shorter default bound; empty text shows as a dash."""
    return md_text(text, limit) if str(text) else "\\-"


def _bounded_markdown(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # Never end on a lone backslash (it would escape what follows) or inside an entity.
    amp = cut.rfind("&")
    if amp >= 0 and ";" not in cut[amp:]:
        cut = cut[:amp]
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + ELLIPSIS


def sarif_text(text: object, limit: int = MAX_SARIF_MESSAGE) -> str:
    """Safe as a SARIF plain-text message: `log_line`, with every `[` and `]` escaped (and backslashes
    before them doubled) so no viewer renders an embedded link `[text](n)` (SARIF 2.1.0 §3.11.6)."""
    out = _SARIF_BRACKETS.sub(lambda m: m[1] * 2 + "\\" + m[2], log_line(text, limit))
    if len(out) <= limit:
        return out
    cut = out[: limit - 1]
    trailing = len(cut) - len(cut.rstrip("\\"))
    return (cut[:-1] if trailing % 2 else cut) + ELLIPSIS
