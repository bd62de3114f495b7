"""ONNX: tensors whose external data escapes the model folder, and operators from custom domains.

Parsed with a minimal protobuf wire-format reader (no `onnx` package): ModelProto -> graphs (also
subgraphs of If/Loop, training graphs and functions) -> nodes and initializers -> `external_data`.
Tensor payloads are skipped with a seek, so large models cost little. An external-data `location`
that is absolute or climbs out with `..` makes the loader read (or a re-save write) any file.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from mlsec_actions.analyzers.base import FORMATS_DOCS, Blob, model_rule
from mlsec_actions.findings import Finding, Severity

MAX_DEPTH = 32
MAX_TEXT = 4096
"""Longer strings (names, locations) are cut; enough to judge a path."""
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training",
                              "com.microsoft", "com.microsoft.nchwc", "com.microsoft.experimental",
                              "com.ms.internal.nhwc", "org.pytorch.aten", "com.microsoft.dml"})


_rule = functools.partial(model_rule, ("model", "onnx"), FORMATS_DOCS)


EXTERNAL_PATH = _rule(
    "onnx/external-data-path", "OnnxExternalDataPath", "ONNX external data location escapes the model folder",
    "A tensor stores its data in an external file whose `location` is absolute, climbs out with `..`, or is a "
    "URL. Loading the model reads that file into the tensor (e.g. `/etc/passwd`, cloud credentials), and "
    "saving it again can overwrite it.",
    "External data must be a plain relative file name next to the model. Re-export with "
    "`onnx.save_model(..., save_as_external_data=True, location='weights.bin')`.",
    ("path-traversal", "file-read"))
CUSTOM_DOMAIN = _rule(
    "onnx/custom-op-domain", "OnnxCustomOpDomain", "ONNX model uses operators from a custom domain",
    "Nodes use an operator domain outside the ONNX and onnxruntime standard sets and not defined as a "
    "function in the model. Running it requires loading a custom-operator library, native code that is "
    "not part of the model file.",
    "Make sure the custom-op library comes from a trusted, pinned source, or export the model with standard "
    "operators only.",
    ("custom-op",))
MALFORMED = _rule(
    "onnx/malformed-model", "OnnxMalformedModel", "ONNX model could not be parsed",
    "The protobuf structure is truncated or invalid, so external data locations and operators could not "
    "all be checked.",
    "Re-export the model from its source; do not load a model that cannot be checked.",
    ("correctness",))

RULES = (EXTERNAL_PATH, CUSTOM_DOMAIN, MALFORMED)


class _Malformed(Exception):
    """The bytes stop making sense as protobuf."""


@dataclass
class _State:
    """What the walk collects."""

    external: list[tuple[str, str]] = field(default_factory=list)
    """(tensor name, external data location) pairs."""
    custom: dict[str, set[str]] = field(default_factory=dict)
    """Custom domain -> op types used with it."""
    functions: set[tuple[str, str]] = field(default_factory=set)
    """(domain, name) of model-local functions, which are not custom ops."""


class _Wire:
    """A protobuf wire-format reader over a seekable stream, bounded by the blob size."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh = fh
        self.size = size
        self.pos = 0

    def varint(self) -> int:
        value = 0
        for shift in range(0, 70, 7):
            b = self.fh.read(1)
            if not b:
                raise _Malformed(f"truncated varint at byte {self.pos}")
            self.pos += 1
            value |= (b[0] & 0x7F) << shift
            if not b[0] & 0x80:
                return value
        raise _Malformed(f"varint longer than 10 bytes at byte {self.pos}")

    def seek(self, pos: int) -> None:
        self.fh.seek(pos)
        self.pos = pos

    def text(self, length: int) -> str:
        data = self.fh.read(min(length, MAX_TEXT))
        self.pos += len(data)
        return data.decode("utf-8", "replace")

    def fields(self, end: int) -> Iterator[tuple[int, int, int]]:
        """Yield (field number, wire type, value or length); after a length-delimited field, skip its payload."""
        while self.pos < end:
            key = self.varint()
            number, wire = key >> 3, key & 7
            if wire == 0:
                yield number, wire, self.varint()
            elif wire in (1, 5):
                width = 8 if wire == 1 else 4
                if self.pos + width > end:
                    raise _Malformed(f"fixed-width field {number} runs past its message at byte {self.pos}")
                self.seek(self.pos + width)
                yield number, wire, 0
            elif wire == 2:
                length = self.varint()
                payload_end = self.pos + length
                if payload_end > end:
                    raise _Malformed(f"field {number} of {length} bytes runs past its message at byte {self.pos}")
                yield number, wire, length
                self.seek(payload_end)
            else:
                raise _Malformed(f"unsupported wire type {wire} (field {number}) at byte {self.pos}")
        if self.pos != end:
            raise _Malformed(f"message overruns its length at byte {self.pos}")


def analyze(blob: Blob) -> list[Finding]:
    """Walk an ONNX ModelProto; report escaping external data, custom op domains and parse errors."""
    state = _State()
    findings: list[Finding] = []
    with blob.open() as fh:
        wire = _Wire(fh, blob.size)
        try:
            _model(wire, blob.size, state)
        except _Malformed as e:
            findings.append(Finding(rule=MALFORMED, message=f"ONNX protobuf is malformed: {e}",
                                    severity=Severity.MEDIUM, location=blob.location()))
    for tensor, location in state.external:
        problem = location_problem(location)
        if problem:
            findings.append(Finding(rule=EXTERNAL_PATH, severity=Severity.HIGH,
                                    message=f"tensor `{tensor}` reads external data from `{location}` ({problem})",
                                    location=blob.location(tensor or None, kind="object")))
    for domain, ops in sorted(state.custom.items()):
        ops = {op for op in ops if (domain, op) not in state.functions}
        if ops:
            findings.append(Finding(rule=CUSTOM_DOMAIN, severity=Severity.LOW,
                                    message=f"operators {sorted(ops)[:10]} from custom domain `{domain}`",
                                    location=blob.location(domain, kind="namespace")))
    return findings


_DRIVE = re.compile(r"^[A-Za-z]:")


def location_problem(location: str) -> str | None:
    """Why an external-data location escapes the model folder, or None when it is a plain relative path."""
    if "\x00" in location:
        return "contains a NUL byte"
    if "://" in location:
        return "is a URL"
    if location.startswith(("/", "\\")) or _DRIVE.match(location):
        return "absolute path"
    if ".." in re.split(r"[/\\]", location):
        return "climbs out with `..`"
    if location.startswith("~"):
        return "home-relative path"
    return None


_Handler = Callable[[_Wire, int, _State, int], None]


def _message(w: _Wire, end: int, state: _State, depth: int, handlers: dict[int, _Handler]) -> None:
    if depth > MAX_DEPTH:
        raise _Malformed(f"messages nested deeper than {MAX_DEPTH}")
    for number, wire, length in w.fields(end):
        handler = handlers.get(number)
        if handler is not None and wire == 2:
            handler(w, w.pos + length, state, depth + 1)


def _model(w: _Wire, end: int, state: _State) -> None:
    _message(w, end, state, 0, {7: _graph, 20: _training, 25: _function})


def _training(w: _Wire, end: int, state: _State, depth: int) -> None:
    _message(w, end, state, depth, {1: _graph, 2: _graph})


def _graph(w: _Wire, end: int, state: _State, depth: int) -> None:
    _message(w, end, state, depth, {1: _node, 5: _tensor, 15: _sparse})


def _sparse(w: _Wire, end: int, state: _State, depth: int) -> None:
    _message(w, end, state, depth, {1: _tensor, 2: _tensor})


def _attribute(w: _Wire, end: int, state: _State, depth: int) -> None:
    _message(w, end, state, depth, {5: _tensor, 6: _graph, 10: _tensor, 11: _graph, 22: _sparse, 23: _sparse})


def _node(w: _Wire, end: int, state: _State, depth: int) -> None:
    domain, op_type = "", ""
    for number, wire, length in w.fields(end):
        if wire != 2:
            continue
        if number == 7:
            domain = w.text(length)
        elif number == 4:
            op_type = w.text(length)
        elif number == 5:
            _attribute(w, w.pos + length, state, depth + 1)
    if domain not in STANDARD_DOMAINS:
        state.custom.setdefault(domain, set()).add(op_type)


def _function(w: _Wire, end: int, state: _State, depth: int) -> None:
    name, domain = "", ""
    for number, wire, length in w.fields(end):
        if wire != 2:
            continue
        if number == 1:
            name = w.text(length)
        elif number == 10:
            domain = w.text(length)
        elif number == 7:
            _node(w, w.pos + length, state, depth + 1)
    state.functions.add((domain, name))


def _tensor(w: _Wire, end: int, state: _State, depth: int) -> None:
    name = ""
    locations: list[str] = []
    for number, wire, length in w.fields(end):
        if number == 8 and wire == 2:
            name = w.text(length)
        elif number == 13 and wire == 2:
            key, value = _entry(w, w.pos + length)
            if key == "location":
                locations.append(value)
    state.external += [(name, loc) for loc in locations]


def _entry(w: _Wire, end: int) -> tuple[str, str]:
    key, value = "", ""
    for number, wire, length in w.fields(end):
        if wire == 2 and number == 1:
            key = w.text(length)
        elif wire == 2 and number == 2:
            value = w.text(length)
    return key, value
