"""Keras Lambda layers and custom modules, in `.keras` config.json and in HDF5 bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlsec_actions.analyzers import keras
from mlsec_actions.findings import Finding, Severity
from tests.model_corpus_formats import (
    LAMBDA_CODE,
    assert_documented,
    blob,
    keras_custom_module_layer,
    keras_functional_nested,
    keras_h5,
    keras_lambda_layer_v2,
    keras_lambda_layer_v3,
    keras_registered_custom_layer,
    keras_sequential,
    mutations,
)


def _config(config: Any) -> list[Finding]:
    return keras.analyze_keras_config(blob(json.dumps(config).encode(), "model.keras", member="config.json"))


def _h5(config: dict[str, Any], **kw: int) -> list[Finding]:
    return keras.analyze_h5(blob(keras_h5(config, **kw), "model.h5"))


def test_dense_only_model_is_clean() -> None:
    assert _config(keras_sequential()) == []
    assert _h5(keras_sequential()) == []


@pytest.mark.parametrize("layer", [keras_lambda_layer_v3(), keras_lambda_layer_v2()], ids=["keras3", "keras2"])
def test_lambda_layer_is_critical(layer: dict[str, Any]) -> None:
    for found in (_config(keras_sequential([layer])), _h5(keras_sequential([layer]))):
        assert [f.rule.id for f in found] == ["keras/lambda-layer"]
        assert found[0].severity is Severity.CRITICAL
        assert "marshalled bytecode" in found[0].message and "system" in found[0].message


def test_lambda_location_names_the_layer_and_member() -> None:
    (finding,) = _config(keras_sequential([keras_lambda_layer_v3()]))
    assert finding.location.path == "model.keras"
    assert finding.location.logical == "config.json::sequential/evil"


def test_lambda_in_nested_model() -> None:
    found = _config(keras_functional_nested(keras_lambda_layer_v3()))
    assert [(f.rule.id, f.location.logical) for f in found] == [
        ("keras/lambda-layer", "config.json::outer/inner_model/evil")]


def test_lambda_referencing_a_named_function() -> None:
    layer = {"module": "keras.layers", "class_name": "Lambda",
             "config": {"name": "l", "function": keras_custom_module_layer("builtins", "exec")}}
    found = _config(keras_sequential([layer]))
    assert sorted(f.rule.id for f in found) == ["keras/custom-module", "keras/lambda-layer"]
    assert all(f.severity is Severity.CRITICAL for f in found)
    assert any("builtins.exec" in f.message for f in found)


@pytest.mark.parametrize(("module", "severity"), [("os", Severity.CRITICAL), ("subprocess", Severity.CRITICAL),
                                                  ("attacker_pkg.payload", Severity.HIGH)])
def test_module_outside_keras(module: str, severity: Severity) -> None:
    loss = keras_custom_module_layer(module, "run")
    config = keras_sequential()
    config["compile_config"]["loss"] = loss
    found = _config(config)
    assert [(f.rule.id, f.severity) for f in found] == [("keras/custom-module", severity)]
    assert f"{module}.run" in found[0].message


def test_registered_custom_object_is_medium() -> None:
    found = _config(keras_sequential([keras_registered_custom_layer()]))
    assert sorted((f.rule.id, f.severity) for f in found) == [("keras/custom-module", Severity.HIGH),
                                                              ("keras/custom-object", Severity.MEDIUM)]


def test_keras_ecosystem_packages_are_allowed() -> None:
    layer = {"module": "keras_hub.src.models", "class_name": "GemmaBackbone",
             "registered_name": "keras_hub>GemmaBackbone", "config": {"name": "backbone"}}
    assert _config(keras_sequential([layer])) == []


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[" * 100_000])
def test_malformed_config_is_a_finding(raw: bytes) -> None:
    found = keras.analyze_keras_config(blob(raw, "model.keras", member="config.json"))
    assert [f.rule.id for f in found] == ["keras/malformed-config"]


def test_h5_config_split_across_read_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras, "CHUNK", 97)
    config = keras_functional_nested(keras_lambda_layer_v2())
    assert [f.rule.id for f in _h5(config, weights=2000)] == ["keras/lambda-layer"]
    assert _h5(keras_sequential(), weights=2000) == []


def test_h5_without_config_is_clean() -> None:
    data = b"\x89HDF\r\n\x1a\n" + bytes(4096)
    assert keras.analyze_h5(blob(data, "weights.h5")) == []


def test_h5_with_broken_json_is_ignored_not_crashing() -> None:
    data = b"\x89HDF\r\n\x1a\n" + b'{"class_name": "Sequential", "config": {' + b"\x00" * 64
    assert keras.analyze_h5(blob(data, "weights.h5")) == []


def test_h5_duplicate_configs_report_once() -> None:
    config = keras_sequential([keras_lambda_layer_v3()])
    data = keras_h5(config) + json.dumps(config).encode() + b"\x00"
    assert len(keras.analyze_h5(blob(data, "m.h5"))) == 1


def test_lambda_used_as_activation() -> None:
    dense = keras_sequential()["config"]["layers"][0]
    dense["config"]["activation"] = {"class_name": "__lambda__", "config": {"code": "ZXZpbA==", "defaults": None}}
    found = _config(keras_sequential([dense]))
    assert [(f.rule.id, f.location.logical) for f in found] == [("keras/lambda-layer", "config.json::sequential/dense")]
    assert "lambda function" in found[0].message


def test_rules_are_documented() -> None:
    assert_documented(keras.RULES)


def test_damaged_files_never_raise() -> None:
    config = keras_functional_nested(keras_lambda_layer_v3())
    for data in mutations(keras_h5(config, weights=64)):
        for finding in keras.analyze_h5(blob(data, "m.h5")):
            assert finding.rule in keras.RULES
    for data in mutations(json.dumps(config).encode()):
        for finding in keras.analyze_keras_config(blob(data, "m.keras", member="config.json")):
            assert finding.rule in keras.RULES


def test_lambda_payload_is_kept_as_a_property() -> None:
    (finding,) = _config(keras_sequential([keras_lambda_layer_v3()]))
    assert dict(finding.properties)["function_base64"] == LAMBDA_CODE
