"""The symbolic pickle machine: one loop over the opcode bytes, dispatching on the opcode value.

It follows CPython's `_pickle` loader: MARK opens a new stack frame (pops never cross it), MEMOIZE keys
are the memo's size, lengths are little-endian and signed where CPython checks the sign, a PROTO above
5 ends the load. The loop handles the opcodes model pickles are made of, ordered by frequency, with
the walk's state in local variables; its helpers and caps are in `pickle_state.py`, the rare opcodes in
`pickle_rare.py`, the calls it evaluates in `pickle_builders.py`. The memory caps are checked every
`CHECK_BYTES` bytes, in the same test that finds the end of the data and the end of a FRAME.
"""

from __future__ import annotations

import contextlib

from mlsec_actions.analyzers.pickle_rare import rare
from mlsec_actions.analyzers.pickle_state import (
    CHECK_BYTES,
    MAX_LONG,
    MAX_MEMO,
    SHORT,
    Data,
    Malformed,
    State,
    Truncated,
)
from mlsec_actions.analyzers.pickle_values import OPAQUE, Call, Global

__all__ = ["Data", "Machine", "Malformed", "Truncated"]

# Values the machine models exactly that are never a str at load time (a Call or a Global may be one).
_NOT_STR = frozenset({int, bool, bytes, tuple, list, dict, type(None)})


class Machine(State):
    """One pickle stream's walk."""

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
        step = min(CHECK_BYTES, self.max_ops) if self.max_ops else CHECK_BYTES
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
                            self._release_behind(pos)
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
                        elif key == len(memo) and key < MAX_MEMO and not sparse:
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
                        if n <= SHORT and pos + n <= end:
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
                        if not sparse and len(memo) < MAX_MEMO:
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
                        elif key == len(memo) and key < MAX_MEMO and not sparse:
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
                            self._patch(obj, state)  # type: ignore[arg-type]
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
                        elif type(module_v) in _NOT_STR or type(name_v) in _NOT_STR:
                            # CPython raises "STACK_GLOBAL requires str": nothing is imported here.
                            report.errors.append((start, "STACK_GLOBAL operand is not a string"))
                            stack.append(OPAQUE)
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
                        stack.append(frombytes(data[pos:pos + n], "little", signed=True) if n <= MAX_LONG
                                     else OPAQUE)
                        pos += n
                    else:
                        self.stack = stack
                        pos = rare(self, code, pos, start)
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
