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
_PATTERN = re.compile(b"\\x12([\\x01-\\x7f])(" + b"|".join(re.escape(o.encode()) for o in OPS) + b")")

DANGEROUS_OP = model_rule(
    ("model", "tensorflow", "supply-chain"), MODEL_SCAN_DOCS, "tf/dangerous-op", "TensorflowDangerousOp",
    "SavedModel graph uses a dangerous op",
    "The graph contains an op that calls back into Python (PyFunc, EagerPyFunc) or reads and writes arbitrary "
    "files (ReadFile, WriteFile, MatchingFiles) when the model runs.",
    "Rebuild the model without py_function/numpy_function and without file I/O inside the graph; load untrusted "
    "SavedModels only in a sandbox.", precision="medium")
RULES = (DANGEROUS_OP,)


def analyze(blob: Blob) -> list[Finding]:
    with blob.open() as stream:
        data = stream.read(_MAX_BYTES)
    seen: dict[str, int] = {}
    for match in _PATTERN.finditer(data):
        name = match.group(2).decode()
        if match.group(1)[0] == len(name):
            seen.setdefault(name, match.start())
    return [Finding(rule=DANGEROUS_OP, severity=OPS[op], location=blob.location(f"op {op}", "function"),
                    message=f"SavedModel graph uses the {op} op (first at byte {offset}).")
            for op, offset in seen.items()]
