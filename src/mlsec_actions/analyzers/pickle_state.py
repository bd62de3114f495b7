"""The state of a symbolic pickle walk and the helpers its opcode loop calls (`pickle_machine.py`).

Lengths are checked against the end of the data before anything is read; literal payloads are skipped
by length and never copied when large (a `Region` stands for them). Memory is bounded: the stack, mark
depth, memo and container items are capped, and what a cap drops is recorded in `Report.limits`.
Calls of the builders in `pickle_builders.py` are evaluated; a BUILD on an imported module or class
records the attributes it sets, so a later import of such a name yields the value set (CPython's
`find_class` is a `getattr` on the module: a name overwritten with the string "builtins" imports a string).
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from mlsec_actions.analyzers.pickle_builders import BUILDERS
from mlsec_actions.analyzers.pickle_values import OPAQUE, Call, Global, Region

if TYPE_CHECKING:
    from mlsec_actions.analyzers.pickle_walk import Report

Data = bytes | mmap.mmap

SHORT = 256                    # literals up to this size are always materialised
LITERAL_BUDGET = 32 << 20      # bytes of longer literals materialised per walk; beyond, a Region
ITEM_BUDGET = 256 * 1024       # container items modelled per walk
MAX_MEMO = 500_000
MAX_LONG = 64                  # LONG1/LONG4 payloads longer than this are not turned into ints
CHECK_BYTES = 1 << 14          # the memory caps are checked every this many bytes walked (>= opcodes)
_MAX_STACK = 100_000
_MAX_MARKS = 10_000
_MAX_SPARSE = 10_000
_MAX_OVERRIDES = 10_000
_MAX_LINE = 1 << 20            # a name or number argument (GLOBAL, INT...) longer than this is malformed
_RELEASE_BYTES = 8 << 20       # a mapped file's pages behind the walk are given back every this many bytes


class Truncated(Exception):
    """The data ended inside an opcode or its argument."""


class Malformed(Exception):
    """An opcode or argument CPython would reject; the load stops here."""


class State:
    """The state of one pickle stream's walk, and the helpers of its loop."""

    def __init__(self, data: Data, pos: int, end: int, report: Report, watch: Collection[tuple[str, str]],
                 on_build: Callable[..., None] | None, max_ops: int = 0) -> None:
        self.data, self.pos, self.end, self.report = data, pos, end, report
        self.watch, self.on_build, self.max_ops = watch, on_build, max_ops
        self.stack: list[object] = []
        self.metastack: list[list[object]] = []
        self.memo: list[object] = []           # memo keys are dense (0, 1, 2...) in written pickles
        self.sparse: dict[int, object] = {}    # keys past the end of `memo`
        self.memo_lossy = False
        self.truncated = False
        self.literal_budget = LITERAL_BUDGET
        self.item_budget = ITEM_BUDGET
        self.released = pos // mmap.PAGESIZE * mmap.PAGESIZE  # pages before this are given back

    def _release_behind(self, pos: int) -> None:
        """Give back the mapped pages the walk has passed. Each jump over a skipped literal faults in the cached
        pages around it as well, so without this RSS follows the file's size, not what the walk keeps."""
        if pos - self.released < _RELEASE_BYTES or type(self.data) is not mmap.mmap:
            return
        last = pos // mmap.PAGESIZE * mmap.PAGESIZE
        self.data.madvise(mmap.MADV_DONTNEED, self.released, last - self.released)
        self.released = last

    def _line(self, pos: int) -> tuple[bytes, int]:
        nl = self.data.find(b"\n", pos, min(self.end, pos + _MAX_LINE))
        if nl < 0:
            if self.end - pos >= _MAX_LINE:
                raise Malformed("text argument longer than 1 MiB")
            raise Truncated("no newline before the end of the data")
        return self.data[pos:nl], nl + 1

    def _text_literal(self, pos: int) -> tuple[int, int, int]:
        """A STRING/UNICODE line: (start, newline, after). CPython reads it whatever its length (an attacker
        pads the front of a pickle with one to push the payload past a scanner's window), so the newline is
        searched to the end of the data, without copying anything."""
        if self.max_ops:  # a bounded probe (frame-straddle rescans start thousands): never a whole-file search
            _, after = self._line(pos)
            return pos, after - 1, after
        data, end = self.data, self.end
        nl = data.find(b"\n", pos, min(end, pos + _MAX_LINE))
        at = pos + _MAX_LINE
        while nl < 0 and at < end:
            # Far into a mapped file: give back the pages already searched, so RSS stays flat.
            nl = data.find(b"\n", at, min(end, at + _MAX_LINE))
            if type(data) is mmap.mmap and at >= _MAX_LINE:
                first = (at - _MAX_LINE) // mmap.PAGESIZE * mmap.PAGESIZE
                data.madvise(mmap.MADV_DONTNEED, first, at - first)
            at += _MAX_LINE
        if nl < 0:
            raise Truncated("no newline before the end of the data")
        return pos, nl, nl + 1

    def _need(self, pos: int, n: int) -> None:
        if n < 0:
            raise Malformed("negative length")
        if pos + n > self.end:
            raise Truncated(f"argument of {n} bytes at byte {pos}, only {max(self.end - pos, 0)} left")

    def _literal(self, pos: int, n: int, codec: str) -> tuple[object, int]:
        """A length-prefixed literal at `pos`: its value (or a Region when large) and the position after it."""
        self._need(pos, n)
        after = pos + n
        if n > SHORT:
            if n > self.literal_budget:
                return Region(pos, after, codec), after
            self.literal_budget -= n
        raw = self.data[pos:after]
        if codec == "bytes":
            return bytes(raw), after
        try:
            return str(raw, codec, "surrogatepass"), after
        except UnicodeDecodeError as e:
            raise Malformed(f"string does not decode as {codec}") from e

    def _charged(self, value: str | bytes) -> object:
        """A computed string, charged to the literal budget like a literal (OPAQUE once it is spent): a pickle
        that rebuilds one 64 KiB string a million times must not hold a million copies."""
        return value if self._affordable(len(value)) else OPAQUE

    def _affordable(self, n: int) -> bool:
        """Whether a literal of n bytes may be materialised (charged to the walk's literal budget)."""
        if n <= SHORT:
            return True
        if n > self.literal_budget:
            return False
        self.literal_budget -= n
        return True

    def _text_global(self, pos: int) -> tuple[str, str, int]:
        module, pos = self._line(pos)
        name, pos = self._line(pos)
        return module.decode("utf-8", "replace"), name.decode("utf-8", "replace"), pos

    def _add_global(self, module: str, name: str, offset: int, opcode: str) -> object:
        """Record an import; its value is the Global, or what an earlier BUILD set that attribute to."""
        g = Global(module, name, offset, opcode)
        self.report.add_global(g)
        patched = self.report.overrides
        if patched:
            return patched.get(f"{module}.{name}", g)
        return g

    def _patch(self, target: Global, state: object) -> None:
        """A BUILD on an imported module or class sets its attributes (`__dict__.update`, or `setattr` for
        the slot part of a `(dict, slots)` state): later imports of those names get the values set."""
        parts = state if type(state) is tuple and len(state) == 2 else (state,)
        overrides = self.report.overrides
        for part in parts:
            if type(part) is dict and len(overrides) < _MAX_OVERRIDES:
                for attr, value in part.items():
                    if type(attr) is str:
                        overrides[f"{target.module}.{target.name}.{attr}"] = value

    def _call(self, func: object, args: object, offset: int) -> object:
        if type(args) is tuple:
            for a in args:
                if type(a) is Global and (a.module, a.name) in self.watch:
                    self.report.escaped.append((offset, a))
        if type(func) is Global:
            key = (func.module, func.name)
            builder = BUILDERS.get(key)
            if builder is not None and type(args) is tuple:
                try:
                    value = builder(args)
                except (TypeError, ValueError, AttributeError, OverflowError):
                    value = OPAQUE  # arguments CPython would reject too: the load fails there
                if type(value) is str or type(value) is bytes:
                    value = self._charged(value)
                if value is not OPAQUE:
                    if key in self.watch:
                        self.report.calls.append(Call(func, args, offset))
                    return value
            call = Call(func, args, offset)
            if key in self.watch:
                self.report.calls.append(call)
            return call
        call = Call(func, args, offset)
        if type(func) is Call:
            self.report.indirect.append(offset)
            self.report.calls.append(call)
        return call

    def _trim(self) -> None:
        """The periodic memory check: drop the oldest modelled state, and say so."""
        limits = self.report.limits
        if len(self.stack) > _MAX_STACK:
            del self.stack[:len(self.stack) // 2]
            if "stack depth" not in limits:
                limits.append("stack depth")
        if len(self.metastack) > _MAX_MARKS:
            del self.metastack[:len(self.metastack) // 2]
            if "mark depth" not in limits:
                limits.append("mark depth")


    def _put(self, key: int, value: object) -> None:
        """A memo write past the dense part: appended, kept aside, or dropped at the cap (and said so)."""
        memo = self.memo
        if key < len(memo):
            memo[key] = value
        elif key == len(memo) and not self.sparse and key < MAX_MEMO:
            memo.append(value)
        elif key in self.sparse or len(self.sparse) < _MAX_SPARSE:
            self.sparse[key] = value
        else:
            self.memo_lossy = True
            if "memo size" not in self.report.limits:
                self.report.limits.append("memo size")

    def _get(self, key: int, offset: int) -> object:
        if 0 <= key < len(self.memo):
            return self.memo[key]
        if key in self.sparse:
            return self.sparse[key]
        if not self.memo_lossy:
            self.report.errors.append((offset, f"memo key {key} read before it was written"))
        return OPAQUE

    def _pairs(self, target: dict[object, object], items: list[object]) -> dict[object, object]:
        n = len(items) // 2
        if self.item_budget < n:
            return target
        self.item_budget -= n
        for i in range(0, 2 * n, 2):
            try:
                target[items[i]] = items[i + 1]
            except TypeError:
                continue
        return target
