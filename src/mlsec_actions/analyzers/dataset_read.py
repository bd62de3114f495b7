"""Dataset files read as rows, streaming: CSV and TSV with the `csv` module, JSON Lines one object per
line, a JSON array of records one element at a time (`dataset_json`), Parquet and Arrow through pyarrow
by record batch when it is installed. Memory stays flat: one row (or one block, or one batch) at a time,
a bounded field size, a bounded number of columns.

A reader yields the header once and then `(line, values)` rows; a malformed file raises `Unreadable`
with a short reason (the caller turns it into a finding and a gap).
"""

from __future__ import annotations

import csv
import importlib
import io
import itertools
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from mlsec_actions.analyzers import dataset_json
from mlsec_actions.inputs import json_depth_over

MAX_FIELD = 1024 * 1024
"""Characters of one CSV field or one JSON line."""
MAX_COLUMNS = 2000
"""Columns kept per file."""
TABULAR = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
           ".arrow": "arrow", ".feather": "arrow"}
"""File suffix -> format."""


class Unreadable(ValueError):
    """The file is not a dataset of its format we can read."""


class NotDataset(ValueError):
    """The file is not a dataset at all (a `.json` file that is not an array of records): not scanned, no
    finding."""


Row = tuple[int, list[str]]
Block = tuple[list[int], list[list[str]]]
"""Rows as their line numbers and one list of values per header column."""
BLOCK_ROWS = 4096
"""Rows per block handed to the profile."""


def format_of(name: str) -> str | None:
    """The dataset format of a file name, or None."""
    lower = name.lower()
    return next((f for s, f in TABULAR.items() if lower.endswith(s)), None)


def rows(path: Path, kind: str) -> tuple[list[str], Iterator[Row]]:
    """The header and a stream of `(line, values)` rows."""
    if kind in ("csv", "tsv"):
        return _csv(path, "\t" if kind == "tsv" else ",")
    if kind == "jsonl":
        return _jsonl(path)
    if kind == "json":
        return _json_array(path)
    return _arrow(path, kind)


def blocks(header: list[str], stream: Iterator[Row], limit: int) -> Iterator[Block]:
    """The first `limit` rows of `stream` in blocks, each row padded or cut to the header's width."""
    width = len(header)
    taken = 0
    while taken < limit:
        want = min(BLOCK_ROWS, limit - taken)
        if isinstance(stream, CsvRows):
            lines, rows = stream.take(want)
        else:
            chunk = list(itertools.islice(stream, want))
            lines, rows = [line for line, _ in chunk], [values for _, values in chunk]
        if not rows:
            return
        taken += len(rows)
        if set(map(len, rows)) != {width}:
            rows = [v if len(v) == width else (v + [""] * width)[:width] for v in rows]
        yield lines, [list(c) for c in zip(*rows, strict=True)] if width else []


def more_rows(stream: Iterator[Row]) -> bool:
    """Whether the stream holds another row (it is consumed)."""
    return next(stream, None) is not None


def open_regular(path: Path) -> BinaryIO:
    """The file opened for reading: never through a symlink, never a FIFO or device (they block)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise Unreadable("not a regular file")
    return handle


def _text(path: Path) -> IO[str]:
    return io.TextIOWrapper(open_regular(path), encoding="utf-8-sig", errors="strict", newline="")


def _csv(path: Path, delimiter: str) -> tuple[list[str], Iterator[Row]]:
    csv.field_size_limit(MAX_FIELD)
    handle = _text(path)
    reader = csv.reader(handle, delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except (csv.Error, UnicodeDecodeError) as e:
        handle.close()
        raise Unreadable(_why(e)) from None
    if not header:
        handle.close()
        return [], iter(())
    return header[:MAX_COLUMNS], CsvRows(handle, reader)


class CsvRows:
    """The rows of a CSV file after its header: one at a time, or many at once with `take` (the reader's
    own loop in C; line numbers are worked out per block, per row only when a value spans lines)."""

    def __init__(self, handle: IO[str], reader: Any) -> None:
        self._handle = handle
        self._reader = reader
        self._error: Unreadable | None = None

    def __iter__(self) -> CsvRows:
        return self

    def __next__(self) -> Row:
        lines, rows = self.take(1)
        if not rows:
            raise StopIteration
        return lines[0], rows[0]

    def close(self) -> None:
        self._handle.close()

    def take(self, n: int) -> tuple[list[int], list[list[str]]]:
        """Up to `n` rows and their line numbers (the line each row ends on, as `csv` counts them); after
        the rows before a malformed one, `Unreadable`."""
        if self._error is not None:
            raise self._error
        before = self._reader.line_num
        chunk: list[list[str]] = []
        try:
            chunk.extend(itertools.islice(self._reader, n))  # the rows before a bad one are kept
        except (csv.Error, UnicodeDecodeError) as e:
            self._error = Unreadable(f"{_why(e)} near line {self._reader.line_num}")
            if not chunk:
                raise self._error from None
        if chunk and max(map(len, chunk)) > MAX_COLUMNS:
            chunk = [v[:MAX_COLUMNS] for v in chunk]
        if self._reader.line_num - before == len(chunk):
            return list(range(before + 1, before + 1 + len(chunk))), chunk
        lines, at = [], before  # a quoted value held line breaks: count them row by row
        for values in chunk:
            at += 1 + sum(v.count("\n") + v.count("\r") - v.count("\r\n") for v in values)
            lines.append(at)
        return lines, chunk


def _why(e: Exception) -> str:
    return "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else f"CSV error: {str(e)[:80]}"


class _Records:
    """JSON objects as rows: a column per key, in the order keys first appear (at most `MAX_COLUMNS`)."""

    def __init__(self) -> None:
        self.columns: list[str] = []
        self._index: dict[str, int] = {}

    def values(self, obj: Any, where: str) -> list[str]:
        if not isinstance(obj, dict):
            raise Unreadable(f"{where} is not a JSON object")
        values = [""] * len(self.columns)
        for key, value in obj.items():
            if key not in self._index:
                if len(self.columns) >= MAX_COLUMNS:
                    continue
                self._index[key] = len(self.columns)
                self.columns.append(key)
                values.append("")
            values[self._index[key]] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return values


def _jsonl(path: Path) -> tuple[list[str], Iterator[Row]]:
    handle = open_regular(path)
    records = _Records()

    def parse(number: int, line: bytes) -> list[str]:
        if len(line) > MAX_FIELD or json_depth_over(line, 32):
            raise Unreadable(f"line {number} is too long or nested too deeply")
        try:
            obj = json.loads(line)
        except ValueError:
            raise Unreadable(f"line {number} is not JSON") from None
        return records.values(obj, f"line {number}")

    first: list[str] | None = None
    number = 0
    for number, line in enumerate(handle, start=1):
        if line.strip():
            first = parse(number, line)
            break
    header = list(records.columns)

    def stream() -> Iterator[Row]:
        with handle:
            if first is not None:
                yield number, first
            for n, line in enumerate(handle, start=number + 1):
                if line.strip():
                    yield n, parse(n, line)

    return header, stream()


def _json_array(path: Path) -> tuple[list[str], Iterator[Row]]:
    """A top-level array of records, one element at a time (`dataset_json`); the header is the first
    record's keys, as for JSON Lines."""
    handle = open_regular(path)
    try:
        if not dataset_json.is_array(handle):
            raise NotDataset("not a JSON array of records")
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    records = _Records()
    elements = iter(dataset_json.Elements(handle))

    def take() -> Row | None:
        try:
            item = next(elements, None)
        except dataset_json.JsonBroken as e:
            raise Unreadable(str(e)) from None
        if item is None:
            return None
        line, obj = item
        return line, records.values(obj, f"element at line {line}")

    try:
        first = take()
    except Unreadable:
        handle.close()
        raise
    header = list(records.columns)

    def stream() -> Iterator[Row]:
        with handle:
            row = first
            while row is not None:
                yield row
                row = take()

    return header, stream()


def _arrow(path: Path, kind: str) -> tuple[list[str], Iterator[Row]]:
    try:  # optional (the `data` extra); imported by name so the type checker does not need it
        ds: Any = importlib.import_module("pyarrow.dataset")
    except ImportError:
        raise Unreadable("pyarrow is not installed, so Parquet and Arrow files cannot be read") from None
    try:
        dataset = ds.dataset(str(path), format="parquet" if kind == "parquet" else "ipc")
    except Exception as e:  # pyarrow raises its own error types for a broken file
        raise Unreadable(f"not a {kind} file ({type(e).__name__})") from None
    header = [str(n) for n in dataset.schema.names][:MAX_COLUMNS]

    def stream() -> Iterator[Row]:
        line = 0
        for batch in dataset.to_batches(batch_size=4096):
            columns = [batch.column(i).to_pylist() for i in range(min(batch.num_columns, MAX_COLUMNS))]
            for r in range(batch.num_rows):
                line += 1
                yield line, ["" if c[r] is None else str(c[r]) for c in columns]

    return header, stream()
