"""ONNX and SavedModel recognised by protobuf structure: field order, unknown fields, over-long varints, text."""

from __future__ import annotations

import io

import pytest

from mlsec_actions.analyzers import archive
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.dispatch import Dispatcher
from mlsec_actions.analyzers.formats import Format, detect
from mlsec_actions.findings import Finding, Severity
from tests.model_corpus_formats import onnx_node, onnx_plain, onnx_tensor, pb_int, pb_len


def scan(data: bytes, name: str = "model.bin") -> list[Finding]:
    return Dispatcher(limits=archive.Limits()).scan_file(Blob(name, None, len(data), lambda: io.BytesIO(data)))


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule.id for f in findings}


def _evil_onnx_fields() -> list[bytes]:
    graph = pb_len(1, onnx_node("MatMul")) + pb_len(2, "main") + pb_len(5, onnx_tensor("w", "/etc/passwd"))
    return [pb_int(1, 9), pb_len(2, "pytorch"), pb_len(7, graph), pb_len(8, pb_int(2, 17))]


@pytest.mark.parametrize("variant", ["reordered", "unknown-field", "over-long-varint"])
def test_onnx_variants_are_recognised_and_checked(variant: str) -> None:
    fields = _evil_onnx_fields()
    if variant == "reordered":
        fields = [fields[2], fields[3], fields[1], fields[0]]  # graph first, ir_version last
    elif variant == "unknown-field":
        fields.insert(1, pb_len(99, "ignored by protobuf readers"))
    else:
        fields[0] = b"\x08\x89\x80\x00"  # ir_version 9 written with redundant continuation bytes
    data = b"".join(fields)
    assert detect(io.BytesIO(data)) is Format.ONNX
    assert "onnx/external-data-path" in rules(scan(data))


def test_plain_onnx_in_any_field_order_is_clean() -> None:
    assert scan(onnx_plain()) == []
    assert scan(b"".join(reversed([pb_int(1, 9), pb_len(7, pb_len(2, "main")), pb_len(8, pb_int(2, 17))]))) == []


def _saved_model(op: str, extra_attr: bytes = b"", overlong: bool = False) -> bytes:
    length = bytes([0x80 | len(op), 0x00]) if overlong else bytes([len(op)])
    node = pb_len(1, "n") + b"\x12" + length + op.encode() + extra_attr
    meta_graph = pb_len(1, pb_len(4, "serve") + pb_len(3, "tensorflow")) + pb_len(2, pb_len(1, node))
    return pb_len(2, meta_graph) + pb_int(1, 1)  # meta_graphs before the schema version


@pytest.mark.parametrize("overlong", [False, True], ids=["plain-length", "over-long-length"])
def test_saved_model_reordered_fields_and_over_long_lengths(overlong: bool) -> None:
    data = _saved_model("PyFunc", overlong=overlong)
    assert detect(io.BytesIO(data)) is Format.SAVED_MODEL
    [hit] = scan(data, "saved_model.pb")
    assert hit.rule.id == "tf/dangerous-op" and hit.severity is Severity.CRITICAL


def test_print_v2_writing_to_a_file() -> None:
    attr = pb_len(5, pb_len(1, "output_stream") + pb_len(2, pb_len(2, "file:///home/user/.bashrc")))
    [hit] = scan(_saved_model("PrintV2", attr), "saved_model.pb")
    assert hit.severity is Severity.HIGH and "file:///home/user/.bashrc" in hit.message
    assert scan(_saved_model("PrintV2", pb_len(5, pb_len(1, "output_stream") + pb_len(2, "stderr")))) == []


def test_text_format_saved_model() -> None:
    text = b'meta_graphs {\n  graph_def {\n    node {\n      name: "p"\n      op: "PyFunc"\n    }\n  }\n}\n'
    assert rules(scan(text, "saved_model.pbtxt")) == {"tf/dangerous-op"}
    benign = b'meta_graphs {\n  graph_def {\n    node {\n      name: "m"\n      op: "MatMul"\n    }\n  }\n}\n'
    assert scan(benign, "saved_model.pbtxt") == []


def test_saved_model_without_tags_is_recognised_by_its_nesting() -> None:
    # meta_graphs -> graph_def -> node -> op, and no "serve"/"tensorflow" string anywhere (modelaudit's sample).
    node = pb_len(1, "bad") + pb_len(2, "PyFunc")
    data = pb_len(2, pb_len(2, pb_len(1, node)))
    assert detect(io.BytesIO(data)) is Format.SAVED_MODEL
    assert rules(scan(data, "saved_model.pb")) == {"tf/dangerous-op"}
    assert detect(io.BytesIO(pb_len(2, b"\x12\x05abc"))) is not Format.SAVED_MODEL  # a length past its message
