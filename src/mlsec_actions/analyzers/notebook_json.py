"""A notebook's JSON parsed with the line of every string, so a finding in a cell or an output points at
the `.ipynb` line GitHub shows.

JSON strings cannot hold a raw line break, so each string sits on one line of the file: a cell's
`source` list has one element per line of code, each on its own line of the JSON. The standard
library's pure-Python scanner is used with our string hook (the C scanner takes no hooks), after the
bounded nesting check of `inputs.json_depth_over`, so a deep document is refused before it recurses.
Nothing is executed: this is `json` with positions.
"""

from __future__ import annotations

import bisect
import json
import json.decoder
import json.scanner
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlsec_actions.inputs import json_depth_over

MAX_DEPTH = 64
"""Nesting a notebook may have (real ones use about 8; widget state a few more)."""


class Text(str):
    """A JSON string value that knows the 1-based line of the file it was read from."""

    line: int

    def __new__(cls, value: str, line: int) -> Text:
        made = super().__new__(cls, value)
        made.line = line
        return made


class NotJson(ValueError):
    """The document is not JSON we read (malformed, too deep); the message says why in a few words."""


@dataclass(frozen=True)
class Lines:
    """A text joined from JSON strings, and where each of its pieces came from."""

    text: str
    """The strings joined (a `source` list as-is, other strings one per line)."""
    starts: tuple[int, ...]
    """Offset in `text` where each piece starts."""
    lines: tuple[int, ...]
    """The `.ipynb` line of each piece."""

    def json_line(self, line: int) -> int:
        """The file line of 1-based line `line` of `text`."""
        if not self.lines:
            return 1
        offset, seen = 0, 1
        while seen < line:
            found = self.text.find("\n", offset)
            if found < 0:
                break
            offset, seen = found + 1, seen + 1
        return self.lines[max(0, bisect.bisect_right(self.starts, offset) - 1)]


def _decoder(data: str) -> json.JSONDecoder:
    starts = [0, *(m.end() for m in re.finditer("\n", data))]
    plain = json.decoder.scanstring  # type: ignore[attr-defined]

    def parse_string(s: str, end: int, strict: bool = True) -> tuple[str, int]:
        value, after = plain(s, end, strict)
        return Text(value, bisect.bisect_right(starts, end)), after

    decoder = json.JSONDecoder()
    decoder.parse_string = parse_string  # type: ignore[attr-defined]
    decoder.memo = {}  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder


def loads(data: bytes) -> Any:
    """The document with every string a `Text`; `NotJson` when it is not a JSON document we read."""
    if json_depth_over(data, MAX_DEPTH):
        raise NotJson(f"nested deeper than {MAX_DEPTH} levels")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NotJson(f"not UTF-8 (byte {e.start})") from None
    text = text.removeprefix("\ufeff")
    try:
        return _decoder(text).decode(text)
    except json.JSONDecodeError as e:
        raise NotJson(f"not valid JSON (line {e.lineno}: {e.msg})") from None
    except (RecursionError, ValueError) as e:
        raise NotJson(f"not valid JSON ({type(e).__name__})") from None


def line_of(value: object, default: int = 1) -> int:
    """The file line of a parsed value when it is a string (else `default`)."""
    return value.line if isinstance(value, Text) else default


def joined(parts: object, one_per_line: bool = False) -> Lines:
    """A multiline field (`source`, `text`, a MIME bundle entry): a list of strings or one string.

    `one_per_line` ends every piece with a line break (traceback frames, strings of a JSON value)."""
    items = [p for p in parts if isinstance(p, str)] if isinstance(parts, list) else (
        [parts] if isinstance(parts, str) else [])
    pieces: list[str] = []
    starts: list[int] = []
    offset = 0
    for item in items:
        piece = item + "\n" if one_per_line and not item.endswith("\n") else item
        starts.append(offset)
        pieces.append(piece)
        offset += len(piece)
    return Lines("".join(pieces), tuple(starts), tuple(line_of(i) for i in items))


def strings(value: object, limit: int = 100_000) -> Iterator[Text]:
    """Every string value (not key) in a JSON value, in document order, iteratively, at most `limit`."""
    stack: list[object] = [value]
    seen = 0
    while stack and seen < limit:
        item = stack.pop()
        if isinstance(item, Text):
            seen += 1
            yield item
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def every_string(value: object, limit: int = 100_000) -> Lines:
    """All string values of a JSON value, one per line with their lines; a value under a key is written
    `key: value`, so rules that need the name beside the value (`wandb_api_key: ...`) still see it."""
    out: list[Text] = []
    stack: list[tuple[str, object]] = [("", value)]
    while stack and len(out) < limit:
        key, item = stack.pop()
        if isinstance(item, Text):
            out.append(Text(f"{key}: {item}" if key else item, item.line))
        elif isinstance(item, dict):
            stack.extend(reversed([(str(k), v) for k, v in item.items()]))
        elif isinstance(item, list):
            stack.extend(reversed([(key, v) for v in item]))
    return joined(out, one_per_line=True)
