"""The symbolic pickle machine: one loop over the opcode bytes, dispatching on the opcode value.

It follows CPython's `_pickle` loader: MARK opens a new stack frame (pops never cross it), MEMOIZE keys
are the memo's size, lengths are little-endian and signed where CPython checks the sign, a PROTO above
5 ends the load. Literal payloads are skipped by length and never copied when large (a `Region` stands
for them). Memory is bounded: the stack, mark depth, memo and container items are capped, checked every
`_CHECK_BYTES` bytes, and what a cap drops is recorded in `Report.limits`.
"""

from __future__ import annotations

import codecs
import contextlib
import mmap
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from mlsec_actions.analyzers.pickle_values import OPAQUE, Call, Global, Region

if TYPE_CHECKING:
    from mlsec_actions.analyzers.pickle_walk import Report

Data = bytes | mmap.mmap

_SHORT = 256                   # literals up to this size are always materialised
_LITERAL_BUDGET = 32 << 20     # bytes of longer literals materialised per walk; beyond, a Region
_ITEM_BUDGET = 256 * 1024      # container items modelled per walk
_MAX_STACK = 100_000
_MAX_MARKS = 10_000
_MAX_MEMO = 500_000
_MAX_SPARSE = 10_000
_CHECK_BYTES = 1 << 14        # the memory caps are checked every this many bytes walked (>= opcodes)
_MAX_LONG = 64                 # LONG1/LONG4 payloads longer than this are not turned into ints
_MAX_LINE = 1 << 20            # a text argument (GLOBAL, INT...) longer than this is malformed


class Truncated(Exception):
    """The data ended inside an opcode or its argument."""


class Malformed(Exception):
    """An opcode or argument CPython would reject; the load stops here."""


def _builders() -> dict[tuple[str, str], Callable[[tuple[object, ...]], object]]:
    """Allowlisted callables whose result the machine computes, so nested payloads can be scanned."""

    def encode(args: tuple[object, ...]) -> object:
        text, enc = (*args, "utf-8")[:2]
        if isinstance(text, str) and isinstance(enc, str) and enc.lower().replace("_", "-") in (
                "latin1", "latin-1", "iso-8859-1", "utf-8", "utf8", "ascii"):
            return text.encode(enc, errors="strict")
        return OPAQUE

    def to_bytes(args: tuple[object, ...]) -> object:
        if not args:
            return b""
        value = args[0]
        if isinstance(value, bytes):
            return value
        if isinstance(value, list | tuple) and len(value) < _ITEM_BUDGET and all(
                isinstance(i, int) and 0 <= i < 256 for i in value):
            return bytes(value)
        if isinstance(value, str) and len(args) > 1:
            return encode(args)
        return OPAQUE

    return {("_codecs", "encode"): encode, ("codecs", "encode"): encode,
            ("builtins", "bytes"): to_bytes, ("builtins", "bytearray"): to_bytes,
            ("__builtin__", "bytearray"): to_bytes}


BUILDERS = _builders()


class Machine:
    """The state of one pickle stream's walk."""

    def __init__(self, data: Data, pos: int, end: int, report: Report, watch: Collection[tuple[str, str]],
                 on_build: Callable[[Machine, object, object], None] | None, max_ops: int = 0) -> None:
        self.data, self.pos, self.end, self.report = data, pos, end, report
        self.watch, self.on_build, self.max_ops = watch, on_build, max_ops
        self.stack: list[object] = []
        self.metastack: list[list[object]] = []
        self.memo: list[object] = []           # memo keys are dense (0, 1, 2...) in written pickles
        self.sparse: dict[int, object] = {}    # keys past the end of `memo`
        self.memo_lossy = False
        self.truncated = False
        self.literal_budget = _LITERAL_BUDGET
        self.item_budget = _ITEM_BUDGET

    # -- helpers for the rare opcodes ------------------------------------------------------------

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
        if n > _SHORT:
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

    def _affordable(self, n: int) -> bool:
        """Whether a literal of n bytes may be materialised (charged to the walk's literal budget)."""
        if n <= _SHORT:
            return True
        if n > self.literal_budget:
            return False
        self.literal_budget -= n
        return True

    def _text_global(self, pos: int) -> tuple[str, str, int]:
        module, pos = self._line(pos)
        name, pos = self._line(pos)
        return module.decode("utf-8", "replace"), name.decode("utf-8", "replace"), pos

    def _add_global(self, module: str, name: str, offset: int, opcode: str) -> Global:
        g = Global(module, name, offset, opcode)
        self.report.add_global(g)
        return g

    def _call(self, func: object, args: object, offset: int) -> object:
        if type(args) is tuple:
            for a in args:
                if type(a) is Global and (a.module, a.name) in self.watch:
                    self.report.escaped.append((offset, a))
        if type(func) is Global:
            key = (func.module, func.name)
            builder = BUILDERS.get(key)
            if builder is not None and type(args) is tuple:
                value = builder(args)
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

    def nested(self) -> bool:
        """Walk a pickle that starts at `self.pos` (joblib object arrays) into the same report."""
        inner = Machine(self.data, self.pos, self.end, self.report, self.watch, self.on_build)
        inner.literal_budget, inner.item_budget = self.literal_budget, self.item_budget
        self.report.streams += 1
        self.pos, clean = inner.run()
        return clean

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> tuple[int, bool]:
        """Walk to STOP (True), or to the first parse error (False). Returns (position after, clean)."""
        data, end, memo, sparse, report = self.data, self.end, self.memo, self.sparse, self.report
        stack, metastack = self.stack, self.metastack
        pos = self.pos
        start = pos
        ops = 0
        frombytes = int.from_bytes
        max_ops = self.max_ops
        code = 0
        frame_end = -1  # end of the current FRAME, while one is open
        step = min(_CHECK_BYTES, self.max_ops) if self.max_ops else _CHECK_BYTES
        check_at = pos + step
        limit = min(end, check_at)
        while True:
            try:
                while True:
                    if pos >= limit:  # one test per opcode covers the end, the frame end and the memory check
                        if pos >= end:
                            raise Truncated("data ended before STOP")
                        if 0 <= frame_end <= pos:
                            if pos > frame_end:
                                report.frames.append((start, frame_end))
                            frame_end = -1
                        if pos >= check_at:
                            check_at = pos + step
                            self.stack = stack
                            self._trim()
                            if max_ops and ops >= max_ops:
                                report.ops += ops
                                return pos, False
                        limit = min(end, check_at, frame_end) if frame_end >= 0 else min(end, check_at)
                    start = pos
                    code = data[pos]
                    pos += 1
                    ops += 1
                    # Ordered by frequency in model pickles.
                    if code == 0x71:  # BINPUT
                        if pos >= end:
                            raise Truncated("BINPUT argument")
                        key = data[pos]
                        pos += 1
                        if key < len(memo):
                            memo[key] = stack[-1]
                        elif key == len(memo) and key < _MAX_MEMO and not sparse:
                            memo.append(stack[-1])
                        else:
                            self._put(key, stack[-1])
                    elif code == 0x68:  # BINGET
                        if pos >= end:
                            raise Truncated("BINGET argument")
                        key = data[pos]
                        pos += 1
                        stack.append(memo[key] if key < len(memo) else self._get(key, start))
                    elif code == 0x58 or code == 0x8C:  # BINUNICODE, SHORT_BINUNICODE
                        if code == 0x8C:
                            if pos >= end:
                                raise Truncated("SHORT_BINUNICODE length")
                            n = data[pos]
                            pos += 1
                        else:
                            if pos + 4 > end:
                                raise Truncated("BINUNICODE length")
                            n = frombytes(data[pos:pos + 4], "little")
                            pos += 4
                        if n <= _SHORT and pos + n <= end:
                            try:
                                stack.append(str(data[pos:pos + n], "utf-8", "surrogatepass"))
                            except UnicodeDecodeError as e:
                                raise Malformed("string does not decode as utf-8") from e
                            pos += n
                        else:
                            value, pos = self._literal(pos, n, "utf-8")
                            stack.append(value)
                    elif code == 0x4B:  # BININT1
                        if pos >= end:
                            raise Truncated("BININT1 argument")
                        stack.append(data[pos])
                        pos += 1
                    elif code == 0x28:  # MARK
                        metastack.append(stack)
                        stack = []
                    elif code == 0x29:  # EMPTY_TUPLE
                        stack.append(())
                    elif code == 0x94:  # MEMOIZE
                        if not sparse and len(memo) < _MAX_MEMO:
                            memo.append(stack[-1])
                        else:
                            self._put(len(memo) + len(sparse), stack[-1])
                    elif code == 0x85:  # TUPLE1
                        stack[-1] = (stack[-1],)
                    elif code == 0x86:  # TUPLE2
                        b = stack.pop()
                        stack[-1] = (stack[-1], b)
                    elif code == 0x87:  # TUPLE3
                        c = stack.pop()
                        b = stack.pop()
                        stack[-1] = (stack[-1], b, c)
                    elif code == 0x74:  # TUPLE
                        items = stack
                        stack = metastack.pop()
                        stack.append(tuple(items))
                    elif code == 0x52:  # REDUCE
                        args = stack.pop()
                        stack[-1] = self._call(stack[-1], args, start)
                    elif code == 0x72:  # LONG_BINPUT
                        if pos + 4 > end:
                            raise Truncated("LONG_BINPUT argument")
                        key = frombytes(data[pos:pos + 4], "little")
                        pos += 4
                        if key < len(memo):
                            memo[key] = stack[-1]
                        elif key == len(memo) and key < _MAX_MEMO and not sparse:
                            memo.append(stack[-1])
                        else:
                            self._put(key, stack[-1])
                    elif code == 0x6A:  # LONG_BINGET
                        if pos + 4 > end:
                            raise Truncated("LONG_BINGET argument")
                        key = frombytes(data[pos:pos + 4], "little")
                        pos += 4
                        stack.append(memo[key] if key < len(memo) else self._get(key, start))
                    elif code == 0x89 or code == 0x88 or code == 0x4E:  # NEWFALSE, NEWTRUE, NONE
                        stack.append(False if code == 0x89 else True if code == 0x88 else None)
                    elif code == 0x4D:  # BININT2
                        if pos + 2 > end:
                            raise Truncated("BININT2 argument")
                        stack.append(data[pos] | data[pos + 1] << 8)
                        pos += 2
                    elif code == 0x4A:  # BININT
                        if pos + 4 > end:
                            raise Truncated("BININT argument")
                        stack.append(frombytes(data[pos:pos + 4], "little", signed=True))
                        pos += 4
                    elif code == 0x51:  # BINPERSID
                        stack[-1] = OPAQUE
                    elif code == 0x75 or code == 0x64:  # SETITEMS, DICT
                        items = stack
                        stack = metastack.pop()
                        if code == 0x64:
                            stack.append(self._pairs({}, items))
                        else:
                            target = stack[-1]
                            if type(target) is dict:
                                self._pairs(target, items)
                    elif code == 0x73:  # SETITEM
                        value = stack.pop()
                        dict_key = stack.pop()
                        target = stack[-1]
                        if type(target) is dict and self.item_budget > 0:
                            self.item_budget -= 1
                            with contextlib.suppress(TypeError):
                                target[dict_key] = value
                    elif code == 0x7D:  # EMPTY_DICT
                        stack.append({})
                    elif code == 0x5D:  # EMPTY_LIST
                        stack.append([])
                    elif code == 0x65:  # APPENDS
                        items = stack
                        stack = metastack.pop()
                        target = stack[-1]
                        if type(target) is list and self.item_budget >= len(items):
                            self.item_budget -= len(items)
                            target.extend(items)
                    elif code == 0x61:  # APPEND
                        value = stack.pop()
                        target = stack[-1]
                        if type(target) is list and self.item_budget > 0:
                            self.item_budget -= 1
                            target.append(value)
                    elif code == 0x62:  # BUILD
                        state = stack.pop()
                        obj = stack[-1]
                        kind = type(obj)
                        if kind is Call:
                            obj.state = state  # type: ignore[attr-defined]
                            func = obj.func  # type: ignore[attr-defined]
                            if self.on_build is not None and type(func) is Global and \
                                    (func.module, func.name) in self.watch:
                                self.pos, self.stack = pos, stack
                                self.on_build(self, obj, state)
                                if self.pos != pos and 0 <= frame_end <= pos:
                                    frame_end = -1  # joblib ends the frame at the BUILD, then writes raw bytes
                                pos = self.pos
                        elif kind is Global:
                            report.patched.append((start, obj.qualname))  # type: ignore[attr-defined]
                    elif code == 0x63 or code == 0x69:  # GLOBAL, INST
                        module, name, pos = self._text_global(pos)
                        if code == 0x63:
                            stack.append(self._add_global(module, name, start, "GLOBAL"))
                        else:
                            g = self._add_global(module, name, start, "INST")
                            items = stack
                            stack = metastack.pop()
                            stack.append(self._call(g, tuple(items), start))
                    elif code == 0x93:  # STACK_GLOBAL
                        name_v = stack.pop()
                        module_v = stack.pop()
                        if type(module_v) is str and type(name_v) is str:
                            stack.append(self._add_global(module_v, name_v, start, "STACK_GLOBAL"))
                        else:
                            report.dynamic.append(start)
                            stack.append(OPAQUE)
                    elif code == 0x81:  # NEWOBJ
                        args = stack.pop()
                        stack[-1] = self._call(stack[-1], args, start)
                    elif code == 0x92:  # NEWOBJ_EX
                        stack.pop()
                        args = stack.pop()
                        stack[-1] = self._call(stack[-1], args, start)
                    elif code == 0x6F:  # OBJ
                        items = stack
                        stack = metastack.pop()
                        if not items:
                            raise IndexError("OBJ without a class")
                        stack.append(self._call(items[0], tuple(items[1:]), start))
                    elif code == 0x2E:  # STOP
                        if not stack:
                            report.errors.append((start, "STOP with an empty stack"))
                        report.ops += ops
                        self.stack = stack
                        return pos, True
                    elif code == 0x80:  # PROTO
                        if pos >= end:
                            raise Truncated("PROTO argument")
                        if data[pos] > 5:
                            raise Malformed(f"unsupported protocol {data[pos]}")
                        pos += 1
                    elif code == 0x95:  # FRAME: its length is not trusted, only checked against the opcodes
                        self._need(pos, 8)
                        if frame_end > start:
                            report.frames.append((start, frame_end))  # a frame opened inside another
                        frame_end = pos + 8 + frombytes(data[pos:pos + 8], "little")
                        pos += 8
                        limit = min(limit, frame_end)
                    elif code == 0x43 or code == 0x42 or code == 0x8E or code == 0x96:  # bytes
                        width = 1 if code == 0x43 else 4 if code == 0x42 else 8
                        self._need(pos, width)
                        n = frombytes(data[pos:pos + width], "little")
                        value, pos = self._literal(pos + width, n, "bytes")
                        stack.append(value)
                    elif code == 0x8D:  # BINUNICODE8
                        self._need(pos, 8)
                        n = frombytes(data[pos:pos + 8], "little")
                        value, pos = self._literal(pos + 8, n, "utf-8")
                        stack.append(value)
                    elif code == 0x55 or code == 0x54:  # SHORT_BINSTRING, BINSTRING (Python 2 str)
                        width = 1 if code == 0x55 else 4
                        self._need(pos, width)
                        n = frombytes(data[pos:pos + width], "little", signed=code == 0x54)
                        value, pos = self._literal(pos + width, n, "latin-1")
                        stack.append(value)
                    elif code == 0x47:  # BINFLOAT
                        self._need(pos, 8)
                        pos += 8
                        stack.append(OPAQUE)
                    elif code == 0x8A or code == 0x8B:  # LONG1, LONG4
                        width = 1 if code == 0x8A else 4
                        self._need(pos, width)
                        n = frombytes(data[pos:pos + width], "little", signed=code == 0x8B)
                        self._need(pos + width, n)
                        pos += width
                        stack.append(frombytes(data[pos:pos + n], "little", signed=True) if n <= _MAX_LONG
                                     else OPAQUE)
                        pos += n
                    else:
                        self.stack = stack
                        pos = self._rare(code, pos, start)
                        stack = self.stack
            except (Truncated, Malformed) as e:
                self.truncated = isinstance(e, Truncated)
                report.errors.append((start, f"{'data exhausted: ' if self.truncated else ''}{e}"))
                report.ops += ops
                self.stack = stack
                return start, False
            except IndexError as e:
                if str(e) == "pop from empty list" and code in (0x74, 0x75, 0x64, 0x65, 0x6F, 0x69, 0x31, 0x90,
                                                                 0x91, 0x6C):
                    problem = "stack underflow (no MARK to close)"
                else:
                    problem = "stack underflow"
                report.errors.append((start, f"{problem} at opcode 0x{code:02x}"))
                stack = []
                metastack.clear()
            except (TypeError, ValueError, OverflowError) as e:
                report.errors.append((start, f"stack value not usable at opcode 0x{code:02x}: {e}"))
                stack = []
                metastack.clear()

    def _put(self, key: int, value: object) -> None:
        """A memo write past the dense part: appended, kept aside, or dropped at the cap (and said so)."""
        memo = self.memo
        if key < len(memo):
            memo[key] = value
        elif key == len(memo) and not self.sparse and key < _MAX_MEMO:
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

    def _rare(self, code: int, pos: int, start: int) -> int:
        """Opcodes seldom seen in model pickles. `self.stack` is current on entry and on return."""
        stack = self.stack
        if code == 0x30:  # POP
            if stack:
                stack.pop()
            elif self.metastack:
                self.stack = self.metastack.pop()  # POP of a MARK, as CPython does
            else:
                raise IndexError("pop from empty list")
        elif code == 0x31:  # POP_MARK
            self.stack = self.metastack.pop()
        elif code == 0x32:  # DUP
            stack.append(stack[-1])
        elif code == 0x6C:  # LIST
            items = stack
            self.stack = self.metastack.pop()
            self.stack.append(items)
        elif code == 0x8F:  # EMPTY_SET
            stack.append(OPAQUE)
        elif code == 0x90:  # ADDITEMS
            self.stack = self.metastack.pop()
        elif code == 0x91:  # FROZENSET
            self.stack = self.metastack.pop()
            self.stack.append(OPAQUE)
        elif code in (0x70, 0x67):  # PUT, GET
            line, pos = self._line(pos)
            key = _int(line)
            if code == 0x70:
                if key < 0:
                    raise Malformed("negative PUT argument")
                self._put(key, stack[-1])
            else:
                stack.append(self._get(key, start))
        elif code in (0x49, 0x4C):  # INT, LONG
            line, pos = self._line(pos)
            if code == 0x49 and line in (b"00", b"01"):
                stack.append(line == b"01")
            else:
                # CPython parses these with base 0 (strtol / PyLong_FromString): when in doubt, keep walking.
                try:
                    stack.append(int(line.rstrip(b"L"), 0) if len(line) <= 64 else OPAQUE)
                except ValueError:
                    stack.append(OPAQUE)
        elif code == 0x46:  # FLOAT
            _, pos = self._line(pos)
            stack.append(OPAQUE)
        elif code == 0x53:  # STRING: a quoted Python 2 str literal
            first, nl, pos = self._text_literal(pos)
            data = self.data
            if nl - first < 2 or data[first] != data[nl - 1] or data[first] not in b"'\"":
                raise Malformed("STRING argument is not quoted")
            if self._affordable(nl - first):
                raw = codecs.escape_decode(bytes(data[first + 1:nl - 1]))[0]
                stack.append(raw.decode("latin-1"))
            else:
                stack.append(OPAQUE)  # too long to decode: a string the walk does not follow
        elif code == 0x56:  # UNICODE
            first, nl, pos = self._text_literal(pos)
            if self._affordable(nl - first):
                try:
                    stack.append(str(self.data[first:nl], "raw-unicode-escape"))
                except UnicodeDecodeError as e:
                    raise Malformed("UNICODE argument does not decode") from e
            else:
                stack.append(Region(first, nl, "raw-unicode-escape"))
        elif code == 0x50:  # PERSID
            _, pos = self._line(pos)
            stack.append(OPAQUE)
        elif code in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
            width = {0x82: 1, 0x83: 2, 0x84: 4}[code]
            self._need(pos, width)
            value = int.from_bytes(self.data[pos:pos + width], "little", signed=code == 0x84)
            self.report.extensions.append((start, value))
            stack.append(OPAQUE)
            pos += width
        elif code == 0x97:  # NEXT_BUFFER
            stack.append(OPAQUE)
        elif code == 0x98:  # READONLY_BUFFER
            stack[-1] = stack[-1]
        else:
            raise Malformed(f"unknown opcode 0x{code:02x}")
        return pos


def _int(line: bytes) -> int:
    try:
        return int(line)
    except ValueError as e:
        raise Malformed(f"bad integer argument {line[:20]!r}") from e
