"""joblib: after the BUILD of a `NumpyArrayWrapper`, the array's raw bytes follow in the file.

joblib reads exactly `prod(shape) * dtype.itemsize` bytes (after an optional alignment pad), or, when
the dtype holds Python objects anywhere (an `O` dtype, a structured field, a subarray base), a nested
pickle. The item size is taken from the dtype's own BUILD state (`elsize`) when numpy recorded one
(strings, voids, structured dtypes), else from the type code, so a crafted dtype cannot make the walk
skip a different number of bytes than joblib does.
"""

from __future__ import annotations

import math
import re

from mlsec_actions.analyzers.pickle_machine import Machine, Malformed, Truncated
from mlsec_actions.analyzers.pickle_values import Call, Global

WRAPPERS = frozenset({("joblib.numpy_pickle", "NumpyArrayWrapper")})
_CODE = re.compile(r"^[<>|=]?([a-zA-Z?])(\d*)")
_UNIT = {"U": 4}
_FIXED = {"?": 1, "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8, "e": 2, "f": 4,
          "d": 8, "g": 16, "F": 8, "D": 16, "G": 32, "O": 8, "M": 8, "m": 8}
_MAX_DEPTH = 8


def on_build(machine: Machine, obj: object, state: object) -> None:
    """The BUILD hook: move the walk past the array data, or walk the nested pickle of an object array."""
    if not (isinstance(obj, Call) and isinstance(obj.func, Global)
            and (obj.func.module, obj.func.name) in WRAPPERS and isinstance(state, dict)):
        return
    dtype = state.get("dtype")
    if _has_object(dtype, 0):
        machine.nested()
        return
    pos = machine.pos
    if state.get("numpy_array_alignment_bytes") is not None:
        if pos >= machine.end:
            raise Truncated("joblib alignment padding")
        pos += 1 + machine.data[pos]
    shape = state.get("shape")
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                             for n in shape)):
        raise Malformed(f"joblib array at byte {pos}: shape cannot be read")
    size = math.prod(shape) * _itemsize(dtype, pos)
    if pos + size > machine.end:
        raise Truncated(f"joblib array of {size} bytes at byte {pos}, only {max(machine.end - pos, 0)} left")
    machine.pos = pos + size


def _itemsize(dtype: object, pos: int) -> int:
    code = _code(dtype)
    if code is None:
        raise Malformed(f"joblib array at byte {pos}: dtype cannot be read")
    state = dtype.state if isinstance(dtype, Call) else None
    if isinstance(state, tuple) and len(state) >= 6 and isinstance(state[5], int) and state[5] > 0:
        return state[5]  # elsize numpy recorded: flexible and structured dtypes
    match = _CODE.match(code)
    if match is None:
        raise Malformed(f"joblib array at byte {pos}: dtype {code!r} is not understood")
    kind, digits = match.groups()
    if digits:
        return int(digits) * _UNIT.get(kind, 1)
    if kind in _FIXED:
        return _FIXED[kind]
    raise Malformed(f"joblib array at byte {pos}: dtype {code!r} has no item size")


def _code(dtype: object) -> str | None:
    if isinstance(dtype, Call) and isinstance(dtype.args, tuple) and dtype.args and isinstance(dtype.args[0], str):
        return dtype.args[0]
    return None


def _has_object(dtype: object, depth: int) -> bool:
    """Whether loading this dtype's array goes through pickle: an object code, field or subarray base."""
    if depth > _MAX_DEPTH:
        return True
    code = _code(dtype)
    if code is not None and code.lstrip("<>|=").startswith("O"):
        return True
    state = dtype.state if isinstance(dtype, Call) else None
    if not isinstance(state, tuple) or len(state) < 5:
        return False
    subarray, fields = state[2], state[4]
    if isinstance(subarray, tuple) and subarray and _has_object(subarray[0], depth + 1):
        return True
    if isinstance(fields, dict):
        return any(isinstance(f, tuple) and f and _has_object(f[0], depth + 1) for f in fields.values())
    return False
