"""The opcodes seldom seen in model pickles (protocol 0 text opcodes, sets, extensions, buffers).

They are walked outside the hot loop of `pickle_machine.py`, which calls `rare` for any opcode it does not
handle itself; semantics follow CPython's `_pickle` (a POP of a MARK pops the mark, PUT/GET keys are text
integers, a STRING must be quoted, an unknown opcode ends the load).
"""

from __future__ import annotations

import codecs

from mlsec_actions.analyzers.pickle_state import Malformed, State
from mlsec_actions.analyzers.pickle_values import OPAQUE, Region


def rare(m: State, code: int, pos: int, start: int) -> int:
    """Walk one opcode seldom seen in model pickles; `m.stack` is current on entry and on return."""
    stack = m.stack
    if code == 0x30:  # POP
        if stack:
            stack.pop()
        elif m.metastack:
            m.stack = m.metastack.pop()  # POP of a MARK, as CPython does
        else:
            raise IndexError("pop from empty list")
    elif code == 0x31:  # POP_MARK
        m.stack = m.metastack.pop()
    elif code == 0x32:  # DUP
        stack.append(stack[-1])
    elif code == 0x6C:  # LIST
        items = stack
        m.stack = m.metastack.pop()
        m.stack.append(items)
    elif code == 0x8F:  # EMPTY_SET
        stack.append(OPAQUE)
    elif code == 0x90:  # ADDITEMS
        m.stack = m.metastack.pop()
    elif code == 0x91:  # FROZENSET
        m.stack = m.metastack.pop()
        m.stack.append(OPAQUE)
    elif code in (0x70, 0x67):  # PUT, GET
        line, pos = m._line(pos)
        key = _int(line)
        if code == 0x70:
            if key < 0:
                raise Malformed("negative PUT argument")
            m._put(key, stack[-1])
        else:
            stack.append(m._get(key, start))
    elif code in (0x49, 0x4C):  # INT, LONG
        line, pos = m._line(pos)
        if code == 0x49 and line in (b"00", b"01"):
            stack.append(line == b"01")
        else:
            # CPython parses these with base 0 (strtol / PyLong_FromString): when in doubt, keep walking.
            try:
                stack.append(int(line.rstrip(b"L"), 0) if len(line) <= 64 else OPAQUE)
            except ValueError:
                stack.append(OPAQUE)
    elif code == 0x46:  # FLOAT
        _, pos = m._line(pos)
        stack.append(OPAQUE)
    elif code == 0x53:  # STRING: a quoted Python 2 str literal
        first, nl, pos = m._text_literal(pos)
        data = m.data
        if nl - first < 2 or data[first] != data[nl - 1] or data[first] not in b"'\"":
            raise Malformed("STRING argument is not quoted")
        if m._affordable(nl - first):
            raw = codecs.escape_decode(bytes(data[first + 1:nl - 1]))[0]
            stack.append(raw.decode("latin-1"))
        else:
            stack.append(OPAQUE)  # too long to decode: a string the walk does not follow
    elif code == 0x56:  # UNICODE
        first, nl, pos = m._text_literal(pos)
        if m._affordable(nl - first):
            try:
                stack.append(str(m.data[first:nl], "raw-unicode-escape"))
            except UnicodeDecodeError as e:
                raise Malformed("UNICODE argument does not decode") from e
        else:
            stack.append(Region(first, nl, "raw-unicode-escape"))
    elif code == 0x50:  # PERSID
        _, pos = m._line(pos)
        stack.append(OPAQUE)
    elif code in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
        width = {0x82: 1, 0x83: 2, 0x84: 4}[code]
        m._need(pos, width)
        value = int.from_bytes(m.data[pos:pos + width], "little", signed=code == 0x84)
        m.report.extensions.append((start, value))
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
