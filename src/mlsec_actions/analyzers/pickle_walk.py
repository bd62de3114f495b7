"""A pickle opcode walker: a symbolic stack machine over the raw bytes that never loads anything.

It reads opcodes itself (`pickle_machine.py`, table-free dispatch on the opcode byte), so literal payloads
are skipped by length without being copied, declared lengths are checked against the end of the data,
and memory stays bounded whatever the file claims. It names every import (`GLOBAL`, `INST`,
`STACK_GLOBAL` with strings from the memo), records the calls the policy asks to watch with their
arguments, keeps going after a `STOP` when another pickle follows (as loaders that read several pickles
in sequence do), and keeps what it found before a parse error (the loader ran it before failing).
"""

from __future__ import annotations

import io
import mmap
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import BinaryIO

from mlsec_actions.analyzers import pickle_machine as machine
from mlsec_actions.analyzers.pickle_policy import Verdict, judge
from mlsec_actions.analyzers.pickle_values import MARK, OPAQUE, Call, Global, Region

__all__ = ["MARK", "OPAQUE", "Call", "Global", "Region", "Report", "Source", "sniff", "walk", "walk_one"]

_MAX_STREAMS = 1000
_MAX_DISTINCT_GLOBALS = 20_000
_PROTO = 0x80
_STARTERS = frozenset(b"(cI]})NSVXKJMLFiGTUel")
# Any opcode CPython accepts as the first of a stream (no PROTO needed, whatever the protocol of the rest).
_FIRST_OPCODES = _STARTERS | frozenset(b"BCP") | frozenset(
    (0x82, 0x83, 0x84, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x95, 0x96))
_STORAGE_HEADER = 8
_STRUCTURE = ("errors", "dynamic", "extensions", "indirect", "patched", "frames", "escaped", "calls", "limits")


class Source:
    """The bytes of a blob without copying them: the BytesIO's buffer, a read-only mmap, or a bounded read."""

    def __init__(self, stream: BinaryIO) -> None:
        self.start = stream.tell()
        self._map: mmap.mmap | None = None
        self.data: bytes | mmap.mmap
        if isinstance(stream, io.BytesIO):
            self.data = stream.getvalue()  # shares the initial bytes object: no copy
        else:
            try:
                self._map = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
                self.data = self._map
            except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
                stream.seek(0)
                self.data = stream.read()
        self.end = len(self.data)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()


@dataclass
class Report:
    """What the walk found in one blob."""

    globals: list[Global] = field(default_factory=list)
    """Each distinct import, at its first occurrence, in order."""
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    """(module, name) -> how many times it is imported."""
    calls: list[Call] = field(default_factory=list)
    """Calls of watched globals (with their arguments), and calls of call results."""
    errors: list[tuple[int, str]] = field(default_factory=list)
    """(offset, problem) for each parse or stack error."""
    dynamic: list[int] = field(default_factory=list)
    """Offsets of STACK_GLOBALs whose operands are not known strings."""
    extensions: list[tuple[int, int]] = field(default_factory=list)
    """(offset, code) for EXT1/2/4 opcodes (copyreg extension registry imports)."""
    indirect: list[int] = field(default_factory=list)
    """Offsets of REDUCE/NEWOBJ whose callable is the result of another call (a returned function)."""
    patched: list[tuple[int, str]] = field(default_factory=list)
    """(offset, global) of BUILDs that set attributes on an imported object itself."""
    streams: int = 0
    """How many pickle streams were walked."""
    ops: int = 0
    """How many opcodes were walked."""
    limits: list[str] = field(default_factory=list)
    """Modelling limits hit (memo, stack, literal budget): what was not followed exactly."""
    unchecked: list[tuple[int, str, str]] = field(default_factory=list)
    """(offset, helper, problem) for calls of argument-checked helpers whose arguments fail the check."""
    nested: list[tuple[str, Report]] = field(default_factory=list)
    """(label, report) of payloads a helper would load (the bytes given to `_load_from_bytes`)."""
    frames: list[tuple[int, int]] = field(default_factory=list)
    """(opcode offset, frame end) where an opcode runs past the end of its FRAME (or a frame opens in one)."""
    escaped: list[tuple[int, Global]] = field(default_factory=list)
    """(offset, global) where an argument-checked helper is passed as a value instead of being called."""
    overrides: dict[str, object] = field(default_factory=dict)
    """`module.attr` -> the value a BUILD on an imported module or class set it to (what a later import gets)."""

    def add_global(self, g: Global) -> None:
        key = (g.module, g.name)
        seen = self.counts.get(key)
        if seen is None:
            if len(self.counts) >= _MAX_DISTINCT_GLOBALS:
                if "distinct imports" not in self.limits:
                    self.limits.append("distinct imports")
                return
            self.globals.append(g)
            self.counts[key] = 1
        else:
            self.counts[key] = seen + 1


BuildHook = Callable[["machine.Machine", object, object], None]
"""Called after a BUILD of a watched class with (machine, object, state); may move `machine.pos`."""


def _walk_stream(src: Source, pos: int, end: int, report: Report, on_build: BuildHook | None,
                 watch: Collection[tuple[str, str]]) -> tuple[int, bool]:
    """Walk one stream from `pos`. Returns (position after it, True when it ended with a clean STOP)."""
    m = machine.Machine(src.data, pos, end, report, watch, on_build)
    return m.run()


def walk_one(stream: BinaryIO, report: Report, on_build: BuildHook | None = None,
             watch: Collection[tuple[str, str]] = ()) -> bool:
    """Walk one stream from the stream's position into `report`; True on a clean STOP."""
    src = Source(stream)
    try:
        report.streams += 1
        pos, clean = _walk_stream(src, src.start, src.end, report, on_build, watch)
        stream.seek(pos)
        return clean
    finally:
        src.close()


def walk_region(data: bytes | mmap.mmap, start: int, end: int, on_build: BuildHook | None = None,
                watch: Collection[tuple[str, str]] = ()) -> Report:
    """Walk every stream in data[start:end] (a nested payload) without copying it."""
    report = Report()
    _walk_all(data, start, end, report, on_build, watch)
    _rescan_straddles(data, end, report)
    return report


_STRADDLE_WINDOW = 64 * 1024
_STRADDLE_STARTS = 4096
_NAME_OPCODES = frozenset(b"ci\x8c")


def _rescan_straddles(data: bytes | mmap.mmap, end: int, report: Report) -> None:
    """Where an opcode straddles a frame end, CPython's readers disagree on where the next opcode starts
    (python/cpython#154848): walk every plausible start inside the straddling bytes and keep the imports
    found there, since one of the readers may run them."""
    starts = 0
    for offset, _ in report.frames[:16]:
        for pos in range(offset + 1, min(end, offset + _STRADDLE_WINDOW)):
            if data[pos] not in _NAME_OPCODES:
                continue
            starts += 1
            if starts > _STRADDLE_STARTS:
                return
            scratch = Report()
            machine.Machine(data, pos, end, scratch, (), None, max_ops=64).run()
            for g in scratch.globals:
                if g.module.replace(".", "_").isidentifier() and g.name.replace(".", "_").isidentifier():
                    report.add_global(Global(g.module, g.name, g.offset, g.opcode + " inside a straddling opcode"))


def walk(stream: BinaryIO, on_build: BuildHook | None = None, watch: Collection[tuple[str, str]] = ()) -> Report:
    """Walk every pickle stream in `stream`, from its current position to the end."""
    src = Source(stream)
    try:
        return walk_region(src.data, src.start, src.end, on_build, watch)
    finally:
        src.close()


def _walk_all(data: bytes | mmap.mmap, pos: int, end: int, report: Report, on_build: BuildHook | None,
              watch: Collection[tuple[str, str]]) -> None:
    src = _Fixed(data, end)
    while report.streams < _MAX_STREAMS and pos < end:
        first = data[pos]
        later = bool(report.streams)
        proto = first == _PROTO and pos + 1 < end and data[pos + 1] <= 5
        tentative = later and not proto
        if tentative and first not in _STARTERS:
            break  # after a STOP: trailing data (torch legacy storages), not another pickle
        marks = (len(report.globals), len(report.errors), report.ops)
        structure = {name: len(getattr(report, name)) for name in _STRUCTURE}
        report.streams += 1
        after, clean = _walk_stream(src, pos, end, report, on_build, watch)
        # torch's legacy format writes each storage as an int64 element count, then raw bytes: a count of
        # 128, 384, 640... starts `80 00`..`80 05`, a PROTO. A stream that fails inside those 8 bytes is that.
        header = later and proto and not clean and after - pos < _STORAGE_HEADER
        if (tentative or header) and not clean:
            # Trailing bytes that were not a pickle after all (torch legacy storages): keep only imports that
            # read like real names, and none of the structural findings random bytes produce.
            for name, mark in structure.items():
                del getattr(report, name)[mark:]
            fresh = report.globals[marks[0]:]
            kept = [g for g in fresh if g.module.replace(".", "_").isidentifier() and
                    g.name.replace(".", "_").isidentifier()]
            for g in fresh:
                if g not in kept:
                    report.counts.pop((g.module, g.name), None)
            del report.globals[marks[0]:]
            report.globals.extend(kept)
            if not kept:
                report.streams -= 1
        if not clean or after <= pos:
            break
        pos = after


class _Fixed(Source):
    """A Source over data already in hand."""

    def __init__(self, data: bytes | mmap.mmap, end: int) -> None:
        self.data, self.start, self.end, self._map = data, 0, end, None


def sniff(head: bytes) -> bool:
    """Whether `head` plausibly starts a protocol 0/1 pickle (no PROTO): a stack-consistent walk from byte 0."""
    if not head or head[0] not in _FIRST_OPCODES:
        return False
    return _plausible(head, len(head), _SNIFF_OPS)


def sniff_stream(stream: BinaryIO) -> bool:
    """`sniff` over the whole stream: a leading literal tens of KB long is skipped, not a reason to stop."""
    stream.seek(0)
    src = Source(stream)
    try:
        if not src.end or src.data[0] not in _FIRST_OPCODES:
            return False
        return _plausible(src.data, src.end, _SNIFF_OPS)
    finally:
        src.close()


_SNIFF_OPS = 4096


def _plausible(data: bytes | mmap.mmap, end: int, max_ops: int) -> bool:
    report = Report()
    m = machine.Machine(data, 0, end, report, (), None, max_ops=max_ops)
    _, clean = m.run()
    if any("stack" in p or "memo" in p for _, p in report.errors):
        return False
    names = [g for g in report.globals if g.module.replace(".", "_").isidentifier()
             and g.name.replace(".", "_").isidentifier()]
    named = bool(names)
    if any(judge(g.module, g.name) is Verdict.CRITICAL for g in names):
        return True  # a text file does not start by importing os.system
    if clean:
        return report.ops >= 2
    return (m.truncated and report.ops >= 16) or (named and report.ops >= 3) or report.ops >= max_ops
