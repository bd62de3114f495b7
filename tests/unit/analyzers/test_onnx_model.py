"""ONNX analysis on protobuf bytes built by hand (the wire format, no onnx package)."""

from __future__ import annotations

import pytest

from mlsec_actions.analyzers import onnx_model
from mlsec_actions.findings import Finding, Severity
from tests.model_corpus_formats import (
    assert_documented,
    blob,
    mutations,
    onnx_if_subgraph,
    onnx_node,
    onnx_plain,
    onnx_tensor,
    pb_len,
)
from tests.model_corpus_formats import (
    onnx_model as build_model,
)


def _scan(data: bytes) -> list[Finding]:
    return onnx_model.analyze(blob(data, "model.onnx"))


def test_plain_model_has_no_findings() -> None:
    assert _scan(onnx_plain()) == []


def test_relative_external_data_is_fine() -> None:
    data = build_model(nodes=[onnx_node("MatMul")], initializers=[onnx_tensor("w", "weights.bin"),
                                                                  onnx_tensor("b", "data/bias.bin")])
    assert _scan(data) == []


@pytest.mark.parametrize(("location", "why"), [
    ("/etc/passwd", "absolute"),
    ("../../home/user/.aws/credentials", "`..`"),
    ("data/../../secret", "`..`"),
    ("..\\..\\windows\\win.ini", "`..`"),
    ("C:\\Windows\\System32\\config\\SAM", "absolute"),
    ("\\\\server\\share\\x", "absolute"),
    ("file:///etc/passwd", "URL"),
    ("~/.ssh/id_rsa", "home"),
])
def test_escaping_external_data(location: str, why: str) -> None:
    found = _scan(build_model(initializers=[onnx_tensor("w", location)]))
    assert [f.rule.id for f in found] == ["onnx/external-data-path"]
    assert found[0].severity is Severity.HIGH
    assert why in found[0].message and location in found[0].message
    assert found[0].location.logical == "w"


def test_external_data_in_subgraph_constant() -> None:
    found = _scan(build_model(nodes=[onnx_if_subgraph(onnx_tensor("leak", "/etc/shadow"))]))
    assert [(f.rule.id, f.location.logical) for f in found] == [("onnx/external-data-path", "leak")]


def test_external_data_in_sparse_initializer_and_training_graph() -> None:
    sparse = pb_len(1, onnx_tensor("values", "/etc/passwd")) + pb_len(2, onnx_tensor("indices"))
    graph = pb_len(15, sparse) + pb_len(2, "g")
    training = pb_len(1, pb_len(5, onnx_tensor("init", "../x.bin")))
    data = onnx_plain() + pb_len(7, graph) + pb_len(20, training)
    assert sorted(f.location.logical or "" for f in _scan(data)) == ["init", "values"]


def test_custom_domain_is_low_and_grouped() -> None:
    data = build_model(nodes=[onnx_node("Evil", "com.attacker"), onnx_node("Worse", "com.attacker"),
                              onnx_node("FusedGemm", "com.microsoft"), onnx_node("Add")])
    found = _scan(data)
    assert [(f.rule.id, f.severity) for f in found] == [("onnx/custom-op-domain", Severity.LOW)]
    assert "Evil" in found[0].message and "Worse" in found[0].message


def test_model_local_function_is_not_a_custom_op() -> None:
    data = build_model(nodes=[onnx_node("Gelu", "custom.fn")], functions=[("custom.fn", "Gelu")])
    assert _scan(data) == []


@pytest.mark.parametrize("data", [
    onnx_plain()[:-3],                          # truncated inside the graph
    b"\x3a\xff\xff\xff\xff\x0f",                # graph field longer than the file
    b"\x0b\x00",                                # group wire type (unsupported)
    b"\x08" + b"\xff" * 11,                     # varint over 10 bytes
], ids=["truncated", "length-past-end", "group", "long-varint"])
def test_malformed_is_a_finding(data: bytes) -> None:
    assert [f.rule.id for f in _scan(data)] == ["onnx/malformed-model"]


def test_finding_before_truncation_is_kept() -> None:
    data = build_model(initializers=[onnx_tensor("w", "/etc/passwd")])
    data += pb_len(7, b"\x0a\x50")  # a second graph whose node claims more bytes than exist
    assert sorted(f.rule.id for f in _scan(data)) == ["onnx/external-data-path", "onnx/malformed-model"]


def test_deep_nesting_is_bounded() -> None:
    graph = pb_len(2, "leaf")
    for _ in range(onnx_model.MAX_DEPTH):
        graph = pb_len(2, "g") + pb_len(1, onnx_node("If", inputs=("c",), attrs=pb_len(5, pb_len(6, graph))))
    found = _scan(pb_len(7, graph))
    assert [f.rule.id for f in found] == ["onnx/malformed-model"]
    assert "nested" in found[0].message


def test_large_raw_data_parses_cleanly() -> None:
    data = build_model(initializers=[onnx_tensor("w", raw=bytes(5_000_000))])
    assert _scan(data) == []


def test_rules_are_documented() -> None:
    assert_documented(onnx_model.RULES)


def test_damaged_files_never_raise() -> None:
    for data in mutations(build_model(nodes=[onnx_if_subgraph(onnx_tensor("c", "w.bin"))],
                                      initializers=[onnx_tensor("w", "w.bin")], functions=[("f", "g")])):
        for finding in _scan(data):
            assert finding.rule in onnx_model.RULES
