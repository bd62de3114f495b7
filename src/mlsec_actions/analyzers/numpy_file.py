"""NumPy `.npy` analyzer: object arrays are pickles after the header, so that pickle is walked.

Plain numeric arrays are raw bytes after a small header and need nothing but a sanity check.
`np.load(..., allow_pickle=True)` on an object array runs whatever its pickle imports.
"""

from __future__ import annotations

import ast
import io
import re
import struct
import tokenize

from mlsec_actions.analyzers import pickle_scan
from mlsec_actions.analyzers.base import MODEL_SCAN_DOCS, Blob, model_rule
from mlsec_actions.findings import Finding, Severity

MAGIC = b"\x93NUMPY"
_MAX_HEADER = 1 << 20

OBJECT_ARRAY = model_rule(
    ("model", "numpy"), MODEL_SCAN_DOCS, "numpy/object-array", "NumpyObjectArray",
    "NumPy file holds a pickled object array",
    "The array's dtype holds Python objects, stored as a pickle after the header. Loading it needs "
    "`allow_pickle=True`, which runs whatever the pickle imports.",
    "Store numeric dtypes only, or use safetensors. Never pass `allow_pickle=True` for files you did not produce.",
    ("pickle",))
MALFORMED = model_rule(
    ("model", "numpy"), MODEL_SCAN_DOCS, "numpy/malformed", "NumpyMalformed", "NumPy file header is malformed",
    "The `.npy` header cannot be read (bad version, length or dictionary), so the array cannot be checked.",
    "Re-export the array from its source; treat a file that was not corrupted in transit as crafted.",
    precision="medium")
RULES = (OBJECT_ARRAY, MALFORMED)


def _header(data: bytes) -> tuple[dict[str, object], int] | str:
    """(header dict, data offset) or a problem; parsed as `numpy.lib.format` parses it, without eval."""
    if len(data) < 10 or not data.startswith(MAGIC):
        return "no NumPy magic"
    major = data[6]
    if major == 1:
        (length,), start = struct.unpack("<H", data[8:10]), 10
    elif major in (2, 3) and len(data) >= 12:
        (length,), start = struct.unpack("<I", data[8:12]), 12
    else:
        return f"unsupported format version {major}"
    if length > _MAX_HEADER or start + length > len(data):
        return f"header length {length} runs past the data"
    text = data[start:start + length].decode("latin-1" if major < 3 else "utf-8", errors="replace")
    header = _literal(text, python2=major < 3)
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
        return "header is not a dictionary with descr/fortran_order/shape"
    return header, start + length


def _literal(text: str, python2: bool) -> object:
    """`ast.literal_eval`; for versions 1 and 2, again after numpy's Python 2 fix-up, as numpy does."""
    try:
        return ast.literal_eval(text)
    except _EVAL_ERRORS:
        if not python2:
            return None
    try:
        return ast.literal_eval(_drop_long_suffix(text))
    except _EVAL_ERRORS:
        return None


_EVAL_ERRORS = (ValueError, SyntaxError, MemoryError, RecursionError, TypeError, tokenize.TokenError)


def _drop_long_suffix(text: str) -> str:
    """numpy's `_filter_header`: drop the `L` after integer tokens (`(1L,)` written by Python 2)."""
    tokens = []
    after_number = False
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if not (after_number and token.type == tokenize.NAME and token.string == "L"):
            tokens.append(token)
        after_number = token.type == tokenize.NUMBER
    return tokenize.untokenize(tokens)


# A dtype string naming Python objects, after byte order and repeat count: `O`, `O8`, `object`, `object_`.
_OBJECT_TYPE = re.compile(r"(?:O\d*|object_?\d*)")
_PREFIX = re.compile(r"\s*(?:\([\d,\s]*\)|\d+)?\s*[<>|=]?")


def has_object(descr: object, depth: int = 0) -> bool:
    """Whether `numpy.lib.format.descr_to_dtype(descr)` has an object field anywhere.

    Follows numpy's reading: a string is a dtype string (comma-separated fields allowed); a tuple is
    (subtype, shape); anything else iterable is a list of fields whose second item is the field's type.
    Field names are never looked at (a field may be called `Obj`).
    """
    if depth > 64:
        return True  # deeper than any real dtype: treat as hiding an object field
    if isinstance(descr, bytes):
        descr = descr.decode("latin-1")
    if isinstance(descr, str):
        return any(_OBJECT_TYPE.fullmatch(_PREFIX.sub("", part, count=1).strip()) is not None
                   for part in _fields(descr))
    if isinstance(descr, tuple):
        return bool(descr) and has_object(descr[0], depth + 1)
    if isinstance(descr, list | dict | set | frozenset):
        return any(has_object(_field_type(item), depth + 1) for item in descr)
    return False


def _fields(text: str) -> list[str]:
    """A comma-separated dtype string's fields; commas inside a shape `(2,3)` do not split."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth <= 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _field_type(field: object) -> object:
    """The type part of a structured field (name, type[, shape]); numpy unpacks strings the same way."""
    if isinstance(field, str | bytes | tuple | list) and len(field) in (2, 3):
        return field[1]
    return None


def analyze(blob: Blob) -> list[Finding]:
    with blob.open() as stream:
        head = stream.read(min(blob.size, _MAX_HEADER + 12))
        parsed = _header(head)
        if isinstance(parsed, str):
            return [Finding(rule=MALFORMED, severity=Severity.MEDIUM, location=blob.location(),
                            message=f"NumPy header cannot be read: {parsed}.")]
        header, offset = parsed
        if not has_object(header["descr"]):
            return []
        stream.seek(offset)
        report = pickle_scan.scan_stream(stream)
    pickled = pickle_scan.findings(blob, report)
    # An object array whose pickle imports only allowlisted names is a format risk, not a payload.
    severity = Severity.MEDIUM if any(f.severity >= Severity.MEDIUM for f in pickled) else Severity.LOW
    out = [Finding(rule=OBJECT_ARRAY, severity=severity, location=blob.location(f"offset {offset}"),
                   message=f"Object array (descr {header['descr']!r}) stored as a pickle at byte {offset}.")]
    return out + pickled
