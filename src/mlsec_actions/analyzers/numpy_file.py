"""NumPy `.npy` analyzer: object arrays are pickles after the header, so that pickle is walked.

Plain numeric arrays are raw bytes after a small header and need nothing but a sanity check.
`np.load(..., allow_pickle=True)` on an object array runs whatever its pickle imports.
"""

from __future__ import annotations

import ast
import struct

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
    """(header dict, data offset) or a problem."""
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
    try:
        header = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return "header is not a Python literal"
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
        return "header lacks descr/fortran_order/shape"
    return header, start + length


def _has_object(descr: object) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list | tuple):
        return any(_has_object(part) for part in descr)
    return False


def analyze(blob: Blob) -> list[Finding]:
    with blob.open() as stream:
        head = stream.read(min(blob.size, _MAX_HEADER + 12))
        parsed = _header(head)
        if isinstance(parsed, str):
            return [Finding(rule=MALFORMED, severity=Severity.MEDIUM, location=blob.location(),
                            message=f"NumPy header cannot be read: {parsed}.")]
        header, offset = parsed
        if not _has_object(header["descr"]):
            return []
        stream.seek(offset)
        report = pickle_scan.scan_stream(stream)
    pickled = pickle_scan.findings(blob, report)
    # An object array whose pickle imports only allowlisted names is a format risk, not a payload.
    severity = Severity.MEDIUM if any(f.severity >= Severity.MEDIUM for f in pickled) else Severity.LOW
    out = [Finding(rule=OBJECT_ARRAY, severity=severity, location=blob.location(f"offset {offset}"),
                   message=f"Object array (descr {header['descr']!r}) stored as a pickle at byte {offset}.")]
    return out + pickled
