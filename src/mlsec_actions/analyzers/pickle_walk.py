"""A tolerant pickle opcode walker: a symbolic stack machine that never loads anything.

`pickletools.genops` parses opcodes; this module follows the stack and the memo just enough to name
every imported callable (`GLOBAL`, `STACK_GLOBAL` with strings fetched from the memo, `INST`), see what
`REDUCE` calls with which arguments, keep going after a `STOP` when another pickle follows, and skip the
raw array bytes joblib writes between opcodes. A parse error ends the stream but keeps what was found.
"""

from __future__ import annotations

import pickletools
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

_IDENT = re.compile(r"^[A-Za-z_][\w.]*$")
_MAX_STREAMS = 1000
_MAX_STACK = 100_000


class _Mark:
    """The MARK sentinel on the symbolic stack."""


class _Opaque:
    """A value the walker does not model."""


MARK = _Mark()
OPAQUE = _Opaque()


@dataclass(frozen=True)
class Global:
    """One import a load would perform."""

    module: str
    """Module path, as written in the pickle."""
    name: str
    """Attribute name (may be dotted)."""
    offset: int
    """Byte offset of the opcode that imported it, from the start of the blob."""
    opcode: str
    """GLOBAL, STACK_GLOBAL or INST."""

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class Call:
    """A `REDUCE`/`NEWOBJ`/`OBJ`/`INST` result: a callable applied to arguments."""

    func: object
    """What was called (a `Global` when resolvable)."""
    args: object
    """Its arguments (a tuple when resolvable)."""
    offset: int
    """Byte offset of the calling opcode."""


@dataclass
class Report:
    """What the walk found in one blob."""

    globals: list[Global] = field(default_factory=list)
    """Every import, in order."""
    calls: list[Call] = field(default_factory=list)
    """Every call whose callable is a resolved global."""
    errors: list[tuple[int, str]] = field(default_factory=list)
    """(offset, problem) for each parse or stack error."""
    dynamic: list[int] = field(default_factory=list)
    """Offsets of STACK_GLOBALs whose operands are not known strings."""
    extensions: list[tuple[int, int]] = field(default_factory=list)
    """(offset, code) for EXT1/2/4 opcodes (copyreg extension registry imports)."""
    streams: int = 0
    """How many pickle streams were walked."""
    ops: int = 0
    """How many opcodes were walked."""


class _StackError(Exception):
    pass


class _Machine:
    """Symbolic state of one pickle stream."""

    def __init__(self, report: Report, stream: BinaryIO, base: int) -> None:
        self.report, self.stream, self.base = report, stream, base
        self.stack: list[object] = []
        self.memo: dict[int, object] = {}
        self.last_build: tuple[object, object] = (OPAQUE, OPAQUE)

    def pop(self) -> object:
        if not self.stack:
            raise _StackError("stack underflow")
        return self.stack.pop()

    def pop_mark(self) -> list[object]:
        items: list[object] = []
        while True:
            value = self.pop()
            if value is MARK:
                return items[::-1]
            items.append(value)

    def push(self, value: object) -> None:
        if len(self.stack) >= _MAX_STACK:
            raise _StackError("stack too deep")
        self.stack.append(value)

    def step(self, op: pickletools.OpcodeInfo, arg: object, pos: int) -> None:
        name = op.name
        offset = self.base + pos
        if name in ("PROTO", "FRAME", "READONLY_BUFFER"):
            return
        if name == "MARK":
            self.push(MARK)
        elif name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            g = Global(module, attr, offset, name)
            self.report.globals.append(g)
            if name == "INST":
                self._call(g, tuple(self.pop_mark()), offset)
            else:
                self.push(g)
        elif name == "STACK_GLOBAL":
            top, below = self.pop(), self.pop()
            if isinstance(below, str) and isinstance(top, str):
                g = Global(below, top, offset, name)
                self.report.globals.append(g)
                self.push(g)
            else:
                self.report.dynamic.append(offset)
                self.push(OPAQUE)
        elif name == "REDUCE":
            args = self.pop()
            self._call(self.pop(), args, offset)
        elif name in ("NEWOBJ", "NEWOBJ_EX"):
            if name == "NEWOBJ_EX":
                self.pop()
            args = self.pop()
            self._call(self.pop(), args, offset)
        elif name == "OBJ":
            items = self.pop_mark()
            if not items:
                raise _StackError("OBJ without a class")
            self._call(items[0], tuple(items[1:]), offset)
        elif name == "BUILD":
            state = self.pop()
            self.last_build = (self._top(), state)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[int(str(arg))] = self._top()
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self._top()
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            key = int(str(arg))
            if key not in self.memo:
                raise _StackError(f"memo key {key} read before it was written")
            self.push(self.memo[key])
        elif name in ("EXT1", "EXT2", "EXT4"):
            self.report.extensions.append((offset, int(str(arg))))
            self.push(OPAQUE)
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [self.pop() for _ in range(n)][::-1]
            self.push(tuple(items))
        elif name == "TUPLE":
            self.push(tuple(self.pop_mark()))
        elif name == "EMPTY_TUPLE":
            self.push(())
        elif name in ("EMPTY_DICT", "DICT"):
            items = self.pop_mark() if name == "DICT" else []
            self.push(_pairs(items))
        elif name in ("SETITEM", "SETITEMS"):
            items = [self.pop(), self.pop()][::-1] if name == "SETITEM" else self.pop_mark()
            target = self._top()
            if isinstance(target, dict):
                target.update(_pairs(items))
        elif name in ("NONE", "NEWTRUE", "NEWFALSE") or op.stack_after == [pickletools.pyunicode] \
                or op.stack_after in ([pickletools.pystring], [pickletools.pybytes], [pickletools.pyint],
                                      [pickletools.pylong], [pickletools.pyfloat], [pickletools.pybool],
                                      [pickletools.pybytes_or_str], [pickletools.pyinteger_or_bool]):
            self.push({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}.get(name, arg))
        else:
            self._generic(op)

    def _top(self) -> object:
        if not self.stack:
            raise _StackError("stack underflow")
        return self.stack[-1]

    def _call(self, func: object, args: object, offset: int) -> None:
        call = Call(func, args, offset)
        if isinstance(func, Global):
            self.report.calls.append(call)
            # Protocol 2 writes bytes as _codecs.encode(text, "latin1"): keep the value for nested scans.
            if (func.module, func.name) == ("_codecs", "encode") and isinstance(args, tuple) and len(args) == 2 \
                    and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
                self.push(args[0].encode("latin-1", errors="replace"))
                return
        self.push(call)

    def _generic(self, op: pickletools.OpcodeInfo) -> None:
        before = op.stack_before
        if pickletools.markobject in before:
            self.pop_mark()
            for _ in range(before.index(pickletools.markobject)):
                self.pop()
        else:
            for _ in before:
                self.pop()
        for _ in op.stack_after:
            self.push(OPAQUE)


def _pairs(items: list[object]) -> dict[object, object]:
    out: dict[object, object] = {}
    for k, v in zip(items[::2], items[1::2], strict=False):
        if isinstance(k, str | int | float | bool | bytes) or k is None:
            out[k] = v
    return out


BuildHook = Callable[[_Machine, object, object], None]
"""Called after each BUILD with (machine, object, state); may move the stream past out-of-band data."""


def _walk_stream(stream: BinaryIO, report: Report, on_build: BuildHook | None) -> bool:
    """Walk one stream from the current position. True when it ended with a clean STOP."""
    with warnings.catch_warnings():
        # pickletools warns about odd escapes in protocol-0 strings of hostile data: not the user's concern.
        warnings.simplefilter("ignore")
        return _walk_ops(stream, report, on_build)


def _walk_ops(stream: BinaryIO, report: Report, on_build: BuildHook | None) -> bool:
    machine = _Machine(report, stream, 0)
    ops = pickletools.genops(stream)
    try:
        for op, arg, pos in ops:
            report.ops += 1
            if op.name == "STOP":
                if not machine.stack and not report.errors:
                    report.errors.append((pos or 0, "STOP with an empty stack"))
                return True
            try:
                machine.step(op, arg, pos or 0)
            except _StackError as e:
                report.errors.append((pos or 0, f"{e} at {op.name}"))
                machine.stack.clear()
                continue
            if op.name == "BUILD" and on_build is not None:
                on_build(machine, *machine.last_build)
    except ValueError as e:
        report.errors.append((stream.tell(), str(e)))
    except (EOFError, OverflowError, MemoryError, UnicodeDecodeError) as e:
        report.errors.append((stream.tell(), f"{type(e).__name__}: {e}"))
    return False


def walk_one(stream: BinaryIO, report: Report, on_build: BuildHook | None = None) -> bool:
    """Walk one nested stream (joblib object arrays) into `report`; True on a clean STOP."""
    report.streams += 1
    return _walk_stream(stream, report, on_build)


def walk(stream: BinaryIO, on_build: BuildHook | None = None) -> Report:
    """Walk every pickle stream in `stream`, from its current position to the end."""
    report = Report()
    while report.streams < _MAX_STREAMS:
        here = stream.tell()
        head = stream.read(2)
        if not head:
            break
        stream.seek(here)
        if report.streams and not (head[0] == 0x80 and len(head) == 2 and head[1] <= 5):
            # After a STOP: another protocol-0/1 pickle, or trailing data (torch legacy storages).
            if not _could_start(head[0]):
                break
            tentative = True
        else:
            tentative = False
        marks = (len(report.globals), len(report.errors), report.ops)
        report.streams += 1
        clean = _walk_stream(stream, report, on_build)
        if tentative and not clean:
            # Trailing bytes that were not a pickle after all: keep only imports that read like real names.
            del report.errors[marks[1]:]
            kept = [g for g in report.globals[marks[0]:] if _IDENT.match(g.module) and _IDENT.match(g.name)]
            del report.globals[marks[0]:]
            report.globals.extend(kept)
            report.streams -= 0 if kept else 1
        if not clean or stream.tell() <= here:
            break
    return report


_STARTERS = frozenset(b"(cI]}){NSVXKJMLFiGTUe")


def _could_start(byte: int) -> bool:
    return byte in _STARTERS
