"""Is this a pickle? Decided by walking the opcode structure, not by the first two bytes.

A float tensor whose bytes happen to start `80 02`, a storage size header, a text file starting `(`:
none of them survives a few opcodes of a real structure check. The skim follows opcode arguments
without reading them (long strings and byte arrays are skipped by seeking, so a declared 2 GB argument
costs nothing), keeps the stack depth across MARKs and the memo indices set, and stops at the first
contradiction. A pickle is plausible when it reaches a clean STOP, runs long without a contradiction,
ends at the end of the data, or imports a named global before it breaks (a payload before a deliberate
error still runs at load).
"""

from __future__ import annotations

import io
import pickletools
import re
from typing import BinaryIO

from mlsec_actions.analyzers.pickle_policy import Verdict, judge

_BY_CODE = {op.code.encode("latin-1")[0]: op for op in pickletools.opcodes}
_MARK = pickletools.markobject
_MAX_OPS = 24  # this many consistent opcodes: no random bytes or prose get this far
_ENOUGH_OPS = 16
_MAX_LINE = 1 << 20
_MAX_MEMO = 100_000
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_NAMED = re.compile(rb"[A-Za-z_][\w.]*")
_LENGTH_BYTES = {-2: 1, -3: 4, -4: 4, -5: 8}


class _Contradiction(Exception):
    """The data cannot be a pickle from here on."""


class _Truncated(Exception):
    """The data ends inside an opcode or its argument."""


class _Overrun(Exception):
    """An argument declares more bytes than the data has left."""


def plausible(stream: BinaryIO, start: int = 0, size: int | None = None) -> bool:
    """Whether a pickle stream plausibly starts at `start` (position is not restored)."""
    stream.seek(0, io.SEEK_END)
    size = max(size or 0, stream.tell())  # a head stands for `size` bytes; a blob may under-declare its size
    stream.seek(start)
    skim = _Skim(stream, size)
    try:
        for _ in range(_MAX_OPS):
            if skim.step():
                return True  # a clean STOP
        return True
    except _Truncated:
        return ((skim.proto and skim.ops >= 1) or skim.ops >= _ENOUGH_OPS // 2 or (skim.named and skim.ops >= 2)
                or skim.pointed)
    except _Overrun:
        return skim.ops >= _ENOUGH_OPS // 2 or skim.named
    except _Contradiction:
        return skim.ops >= _ENOUGH_OPS or (skim.named and skim.ops >= 3) or skim.pointed


class _Skim:
    """The walk's state: stack depth per MARK frame, memo indices, opcodes seen."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.size = stream, size
        self.frames = [0]
        self.memo: set[int] = set()
        self.ops = 0
        self.named = False
        self.pointed = False
        self.proto = False

    def step(self) -> bool:
        """One opcode; True on a clean STOP."""
        code = self.stream.read(1)
        if not code:
            raise _Truncated
        op = _BY_CODE.get(code[0])
        if op is None:
            raise _Contradiction
        arg = self._argument(op)
        self._stack(op)
        self.ops += 1
        if op.name == "STOP":
            return True  # CPython's STOP pops the top value and returns it, whatever else is left
        self._memo(op, arg)
        if op.name == "STACK_GLOBAL":
            self.named = True  # an import with a consistent stack: a load reaches it
        if op.name == "PROTO":
            if arg is None or arg > 5:
                raise _Contradiction
            self.proto = True
        return False

    def _argument(self, op: pickletools.OpcodeInfo) -> int | None:
        """Read or skip the argument; the integer value for fixed-size integer arguments."""
        if op.arg is None:
            return None
        n = op.arg.n
        if n > 0:
            data = self._read(n)
            return int.from_bytes(data, "little", signed=op.arg.name == "int4") if n <= 8 else None
        if n == pickletools.UP_TO_NEWLINE:
            return self._lines(op)
        width = _LENGTH_BYTES[n]
        length = int.from_bytes(self._read(width), "little", signed=n == -3)
        if length < 0:
            raise _Contradiction
        if self.stream.tell() + length > self.size:
            raise _Overrun
        self.stream.seek(length, io.SEEK_CUR)
        return None

    def _lines(self, op: pickletools.OpcodeInfo) -> int | None:
        lines = 2 if op.arg is not None and op.arg.name == "stringnl_noescape_pair" else 1
        values = [self._line() for _ in range(lines)]
        name = op.name
        if lines == 2:
            if not all(_NAMED.fullmatch(v) for v in values):
                raise _Contradiction  # the load fails at this import: whatever follows never runs
            self.named = True
            # `builtins\n__import__`, `os.path\nx`: dunders and dotted modules do not start prose or lists; a
            # code-execution import makes a pickle even when what follows is broken (the import ran first).
            module, attr = (v.decode("latin-1") for v in values)
            self.pointed = (self.pointed or "." in module or module.startswith("_") or attr.startswith("_")
                            or judge(module, attr) is Verdict.CRITICAL)
            return None
        text = values[0]
        try:
            if name in ("INT", "LONG", "GET", "PUT"):
                return int(text.rstrip(b"L"))
            if name == "FLOAT":
                float(text)
        except ValueError:
            raise _Contradiction from None
        if name == "STRING" and not (len(text) >= 2 and text[:1] == text[-1:] and text[:1] in (b"'", b'"')):
            raise _Contradiction
        return None

    def _line(self) -> bytes:
        line = self.stream.readline(_MAX_LINE)
        if line.endswith(b"\n"):
            return line[:-1]
        first = line[:64]
        while len(line) >= _MAX_LINE:  # a long leading string (protocol 0): skip to its end, keeping no copy
            line = self.stream.readline(_MAX_LINE)
            if line.endswith(b"\n"):
                return first + line[-65:-1]  # its ends, so a STRING's quotes are still checked
        raise _Truncated

    def _read(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) < n:
            raise _Truncated
        return data

    def _stack(self, op: pickletools.OpcodeInfo) -> None:
        before, after = op.stack_before, op.stack_after
        if op.name in _PUTS and self.frames[-1] < 1:
            raise _Contradiction
        below = len(before)
        if _MARK in before:
            at = before.index(_MARK)
            inside = len(before) - at - 2  # items named after the mark, besides the slice
            if len(self.frames) < 2 or self.frames[-1] < inside:
                raise _Contradiction
            self.frames.pop()
            below = at
        if self.frames[-1] < below:
            raise _Contradiction
        self.frames[-1] -= below
        if _MARK in after:
            self.frames.append(0)
        else:
            self.frames[-1] += len(after)

    def _memo(self, op: pickletools.OpcodeInfo, arg: int | None) -> None:
        if op.name in _GETS:
            if arg not in self.memo:
                raise _Contradiction
        elif op.name in _PUTS and arg is not None and len(self.memo) < _MAX_MEMO:
            self.memo.add(arg)
        elif op.name == "MEMOIZE" and len(self.memo) < _MAX_MEMO:
            self.memo.add(len(self.memo))
