"""safetensors: validate the header without touching tensor data.

A safetensors file is an 8-byte little-endian header length, a JSON header, then raw tensor bytes.
The format cannot carry code, so the risks are parser bugs and smuggled bytes: a header whose offsets
point outside the data, overlap, disagree with dtype and shape, or leave bytes no tensor owns. Only
the header is read, so a 10 GB file costs one small read.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

from mlsec_actions.analyzers.base import FORMATS_DOCS, Blob, model_rule
from mlsec_actions.findings import Finding, Rule, Severity
from mlsec_actions.json_strict import no_duplicate_keys

MAX_HEADER = 100 * 1024 * 1024
"""Larger headers are refused, as the reference implementation does."""
MAX_REPORTED = 20
"""Per-file cap on invalid-tensor findings; the rest are counted in one summary finding."""

# Bits per element; sub-byte float formats are packed.
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}


_rule = functools.partial(model_rule, ("model", "safetensors", "supply-chain"), FORMATS_DOCS)


MALFORMED = _rule(
    "safetensors/malformed-header", "SafetensorsMalformedHeader", "safetensors header is malformed",
    "The header length is out of bounds, or the header is not a JSON object (or repeats a key). Loaders "
    "reject it or, worse, different parsers read it differently.",
    "Re-export the tensors with the `safetensors` library from a trusted copy of the weights.")
INVALID_TENSOR = _rule(
    "safetensors/invalid-tensor", "SafetensorsInvalidTensor", "safetensors tensor entry is invalid",
    "A tensor entry has an unknown dtype, a bad shape, offsets outside the data section, offsets that "
    "overlap another tensor, or a byte size that does not match dtype x shape.",
    "Re-export the tensors with the `safetensors` library; do not load a file whose offsets disagree.")
UNREFERENCED = _rule(
    "safetensors/unreferenced-bytes", "SafetensorsUnreferencedBytes", "safetensors data has bytes no tensor owns",
    "Gaps between tensors or trailing bytes after the last one are not part of any tensor. The reference "
    "loader refuses such files; they are a place to smuggle a payload past a review.",
    "Re-export the tensors with the `safetensors` library so the data section is exactly the tensors.")
BAD_METADATA = _rule(
    "safetensors/invalid-metadata", "SafetensorsInvalidMetadata", "safetensors __metadata__ is not string to string",
    "`__metadata__` must map strings to strings; other values break loaders and hide data.",
    "Store only string keys and string values in `__metadata__`.")

RULES = (MALFORMED, INVALID_TENSOR, UNREFERENCED, BAD_METADATA)


@dataclass(frozen=True)
class _Span:
    """One tensor's byte range in the data section."""

    name: str
    """Tensor name."""
    begin: int
    """First byte (relative to the data section)."""
    end: int
    """One past the last byte."""


def analyze(blob: Blob) -> list[Finding]:
    """Validate the header of a safetensors blob."""
    with blob.open() as fh:
        head = fh.read(8)
        if len(head) < 8:
            return [_finding(MALFORMED, blob, f"file is {len(head)} bytes, shorter than the 8-byte header length")]
        length = int.from_bytes(head, "little")
        if length > MAX_HEADER or length + 8 > blob.size:
            return [_finding(MALFORMED, blob, f"header length {length} exceeds "
                             f"{'100 MB' if length > MAX_HEADER else f'the file size ({blob.size} bytes)'}")]
        raw = fh.read(length)
    if len(raw) < length:
        return [_finding(MALFORMED, blob, f"header truncated: {len(raw)} of {length} bytes")]
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as e:
        return [_finding(MALFORMED, blob, f"header is not valid JSON: {e}")]
    if not isinstance(header, dict):
        return [_finding(MALFORMED, blob, f"header is a JSON {type(header).__name__}, not an object")]
    return _check_header(blob, header, blob.size - 8 - length)


def _check_header(blob: Blob, header: dict[str, Any], data_len: int) -> list[Finding]:
    findings: list[Finding] = []
    problems: list[tuple[str, str]] = []
    spans: list[_Span] = []
    for name, entry in header.items():
        if name == "__metadata__":
            findings += _check_metadata(blob, entry)
            continue
        problem, offsets = _check_tensor(entry, data_len)
        if problem:
            problems.append((name, problem))
        elif offsets:
            spans.append(_Span(name, offsets[0], offsets[1]))
    spans.sort(key=lambda s: (s.begin, s.end))
    covered = 0
    gaps = 0
    owner: _Span | None = None  # the span reaching furthest so far
    for span in spans:
        if owner is not None and span.begin < owner.end and span.end > span.begin:
            problems.append((span.name, f"bytes {span.begin}-{span.end} overlap tensor {owner.name!r} "
                                        f"({owner.begin}-{owner.end})"))
        if span.begin > covered:
            gaps += span.begin - covered
        if span.end > covered:
            covered, owner = span.end, span
    trailing = data_len - covered
    for name, problem in problems[:MAX_REPORTED]:
        findings.append(_finding(INVALID_TENSOR, blob, f"tensor {name!r}: {problem}", detail=name))
    if len(problems) > MAX_REPORTED:
        findings.append(_finding(INVALID_TENSOR, blob, f"{len(problems) - MAX_REPORTED} more invalid tensor "
                                                       "entries not listed"))
    if not problems and (gaps or trailing > 0):
        findings.append(_finding(UNREFERENCED, blob, f"{gaps} bytes in gaps between tensors and {trailing} "
                                                     "trailing bytes belong to no tensor"))
    return findings


def _check_tensor(entry: Any, data_len: int) -> tuple[str | None, tuple[int, int] | None]:
    """Return (problem, (begin, end)) for one tensor entry."""
    if not isinstance(entry, dict):
        return f"entry is a {type(entry).__name__}, not an object", None
    dtype = entry.get("dtype")
    shape = entry.get("shape")
    offsets = entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        return f"unknown dtype {dtype!r}", None
    if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
        return f"shape {shape!r} is not a list of non-negative integers", None
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_uint(o) for o in offsets)):
        return f"data_offsets {offsets!r} is not two non-negative integers", None
    begin, end = offsets
    if begin > end:
        return f"data_offsets begin {begin} is after end {end}", None
    if end > data_len:
        return f"data_offsets end {end} is past the data section ({data_len} bytes)", None
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != end - begin:
        return (f"{end - begin} bytes stored but dtype {dtype} x shape {shape} needs "
                f"{bits / 8:g} bytes"), None
    return None, (begin, end)


def _check_metadata(blob: Blob, entry: Any) -> list[Finding]:
    if not isinstance(entry, dict):
        return [_finding(BAD_METADATA, blob, f"__metadata__ is a {type(entry).__name__}, not an object",
                         detail="__metadata__")]
    bad = [k for k, v in entry.items() if not isinstance(v, str)]
    if not bad:
        return []
    return [_finding(BAD_METADATA, blob, f"__metadata__ values are not strings for keys {bad[:5]!r}",
                     detail="__metadata__")]


def _is_uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _finding(rule: Rule, blob: Blob, message: str, detail: str | None = None) -> Finding:
    severity = Severity.LOW if rule in (UNREFERENCED, BAD_METADATA) else Severity.MEDIUM
    return Finding(rule=rule, message=message, severity=severity,
                   location=blob.location(detail, kind="object" if detail else "member"))
