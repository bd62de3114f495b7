"""JSON datasets: a file whose top level is an array of records, read one element at a time so memory
stays bounded (a buffer of at most `MAX_ELEMENT` characters plus one read), whatever the file's size.

The standard library's decoder parses each element from the buffer (`raw_decode`); an element cut by
the end of the buffer is retried with more text. A file that is not such an array (an object, a config
file) is not a dataset: `is_array` says so from its first character. Broken JSON, an element that is
not an object, too large or nested too deeply raises `JsonBroken` with the element's number and line.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from mlsec_actions.inputs import json_depth_over

MAX_ELEMENT = 1024 * 1024
"""Characters of one element."""
MAX_DEPTH = 32
"""Nesting inside one element."""
_READ = 1 << 16
_SPACE = " \t\r\n"
_DECODER = json.JSONDecoder()


class JsonBroken(ValueError):
    """The array is not well-formed JSON (the message names the element and its line)."""


def is_array(handle: BinaryIO) -> bool:
    """Whether the file's first character (after a byte-order mark and whitespace) opens an array."""
    head = handle.read(_READ).removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n")
    return head[:1] == b"["


class Elements:
    """The elements of the array in `handle` (positioned at its start), with the line each starts on."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._decode = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self._buf = ""
        self._pos = 0
        self._counted = 0
        self._line = 1
        self._eof = False
        self.number = 0
        """Elements read so far."""

    def _more(self, at_least: int = _READ) -> bool:
        """Read more text into the buffer; False at the end of the file."""
        if self._eof:
            return False
        data = self._handle.read(at_least)
        try:
            text = self._decode.decode(data, final=not data)
        except UnicodeDecodeError:
            raise JsonBroken(f"not UTF-8 text near line {self._line_at(len(self._buf))}") from None
        if not data:
            self._eof = True
        if self._pos > _READ:  # drop what was parsed, counting its lines
            self._line_at(self._pos)
            self._buf, self._counted, self._pos = self._buf[self._pos:], 0, 0
        self._buf += text
        return bool(data) or bool(text)

    def _line_at(self, index: int) -> int:
        self._line += self._buf.count("\n", self._counted, index)
        self._counted = max(self._counted, index)
        return self._line

    def _skip_space(self) -> str:
        """The next character after whitespace ('' at the end of the file)."""
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in _SPACE:
                self._pos += 1
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._more():
                return ""

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        if self._skip_space() != "[":
            raise JsonBroken("not a JSON array")
        self._pos += 1
        if self._skip_space() == "]":
            self._pos += 1
        else:
            while True:
                yield self._element()
                after = self._skip_space()
                self._pos += 1
                if after == "]":
                    break
                if not after:
                    raise JsonBroken(f"the array is not closed (the file ends after element {self.number})")
                if after != ",":
                    raise JsonBroken(f"expected ',' or ']' after element {self.number} "
                                     f"(line {self._line_at(self._pos - 1)})")
        if self._skip_space():
            raise JsonBroken(f"text after the array's end (line {self._line_at(self._pos)})")

    def _element(self) -> tuple[int, Any]:
        self.number += 1
        if not self._skip_space():
            raise JsonBroken(f"the array ends inside element {self.number} (not closed)")
        line = self._line_at(self._pos)
        want = _READ
        while True:
            try:
                value, end = _DECODER.raw_decode(self._buf, self._pos)
                if end < len(self._buf) or self._eof:  # a number at the buffer's end may go on
                    break
            except RecursionError:
                raise JsonBroken(f"element {self.number} (line {line}) is nested too deeply") from None
            except ValueError:
                if self._eof:
                    raise JsonBroken(f"element {self.number} (line {line}) is not JSON") from None
            if len(self._buf) - self._pos > MAX_ELEMENT:
                raise JsonBroken(f"element {self.number} (line {line}) is over {MAX_ELEMENT} characters")
            self._more(want)
            want *= 2
        text = self._buf[self._pos:end]
        if len(text) > MAX_ELEMENT:
            raise JsonBroken(f"element {self.number} (line {line}) is over {MAX_ELEMENT} characters")
        if json_depth_over(text.encode("utf-8", "replace"), MAX_DEPTH):
            raise JsonBroken(f"element {self.number} (line {line}) is nested too deeply")
        self._pos = end
        return line, value
