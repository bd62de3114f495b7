"""TensorFlow SavedModel (`saved_model.pb`) analyzer: ops that touch files or run Python, found without TensorFlow.

A GraphDef stores each node's op as protobuf field 2 of NodeDef (tag 0x12, length, name), so the op names
are read straight from the bytes. PyFunc-style ops call back into Python when the graph runs; file ops
read or write arbitrary paths.
"""

from __future__ import annotations

import re

from mlsec_actions.analyzers.base import MODEL_SCAN_DOCS, Blob, model_rule
from mlsec_actions.findings import Finding, Severity

_MAX_BYTES = 512 * 1024 * 1024
OPS: dict[str, Severity] = {
    "PyFunc": Severity.CRITICAL, "PyFuncStateless": Severity.CRITICAL, "EagerPyFunc": Severity.CRITICAL,
    "ReadFile": Severity.HIGH, "WriteFile": Severity.HIGH, "MatchingFiles": Severity.HIGH,
    "ImmutableConst": Severity.MEDIUM,
}
# PrintV2 is harmless unless its `output_stream` attribute names a file: then it writes there (HIGH).
_ALL = (*OPS, "PrintV2")
# NodeDef.op is field 2 (key 0x12), a varint length (over-long encodings such as `86 00` are valid), the name.
_PATTERN = re.compile(b"\\x12((?:[\\x80-\\xff]){0,9}[\\x00-\\x7f])(" + b"|".join(re.escape(o.encode()) for o in _ALL)
                      + b")")
# The text format (`saved_model.pbtxt`): `op: "PyFunc"`.
_TEXT_PATTERN = re.compile(rb'\bop\s*:\s*"(' + b"|".join(re.escape(o.encode()) for o in _ALL) + rb')"')
_FILE_STREAM = re.compile(rb"file://[^\x00-\x1f\"']{1,200}")

DANGEROUS_OP = model_rule(
    ("model", "tensorflow", "supply-chain"), MODEL_SCAN_DOCS, "tf/dangerous-op", "TensorflowDangerousOp",
    "SavedModel graph uses a dangerous op",
    "The graph contains an op that calls back into Python (PyFunc, EagerPyFunc) or reads and writes arbitrary "
    "files (ReadFile, WriteFile, MatchingFiles) when the model runs.",
    "Rebuild the model without py_function/numpy_function and without file I/O inside the graph; load untrusted "
    "SavedModels only in a sandbox.", precision="medium")
RULES = (DANGEROUS_OP,)


def analyze(blob: Blob) -> list[Finding]:
    """Binary protobuf: op names found as NodeDef field 2, whatever the field order around them."""
    with blob.open() as stream:
        data = stream.read(_MAX_BYTES)
    seen: dict[str, int] = {}
    for match in _PATTERN.finditer(data):
        name = match.group(2).decode()
        if _varint_value(match.group(1)) == len(name):
            seen.setdefault(name, match.start())
    return _findings(blob, data, seen)


def analyze_text(blob: Blob) -> list[Finding]:
    """The text format (`.pbtxt`): `op: "Name"` entries."""
    with blob.open() as stream:
        data = stream.read(_MAX_BYTES)
    seen: dict[str, int] = {}
    for match in _TEXT_PATTERN.finditer(data):
        seen.setdefault(match.group(1).decode(), match.start())
    return _findings(blob, data, seen)


def looks_like_text_graph(head: bytes) -> bool:
    """A SavedModel or GraphDef in protobuf text format."""
    return (b"meta_graphs" in head or b"node {" in head or b"node{" in head) and b"op:" in head


def _findings(blob: Blob, data: bytes, seen: dict[str, int]) -> list[Finding]:
    out = []
    for op, offset in seen.items():
        if op == "PrintV2":
            target = _FILE_STREAM.search(data)
            if target is None:
                continue
            stream = target.group().decode("utf-8", "replace")
            out.append(Finding(rule=DANGEROUS_OP, severity=Severity.HIGH,
                               location=blob.location(f"op {op}", "function"),
                               message=f"SavedModel graph uses PrintV2 with output stream {stream!r}: running it "
                                       "writes that file."))
            continue
        out.append(Finding(rule=DANGEROUS_OP, severity=OPS[op], location=blob.location(f"op {op}", "function"),
                           message=f"SavedModel graph uses the {op} op (first at byte {offset})."))
    return out


def _varint_value(raw: bytes) -> int:
    value = 0
    for shift, byte in enumerate(raw):
        value |= (byte & 0x7F) << (7 * shift)
    return value
