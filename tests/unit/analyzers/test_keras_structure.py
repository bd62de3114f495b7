"""Keras found by structure: reordered and escaped keys, HDF5 after a user block, v3 without metadata, unsafe layers."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from mlsec_actions.analyzers import archive
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.dispatch import Dispatcher
from mlsec_actions.findings import Finding, Severity
from tests import model_corpus as corpus
from tests.model_corpus_formats import keras_h5, keras_lambda_layer_v2, keras_lambda_layer_v3, keras_sequential

LAMBDA = "keras/lambda-layer"


def scan(data: bytes, name: str = "model.bin") -> list[Finding]:
    return Dispatcher(limits=archive.Limits()).scan_file(Blob(name, None, len(data), lambda: io.BytesIO(data)))


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule.id for f in findings}


def _reordered(node: Any) -> Any:
    """The same config with every object's keys in reverse order (`class_name` last)."""
    if isinstance(node, dict):
        return {k: _reordered(node[k]) for k in reversed(list(node))}
    if isinstance(node, list):
        return [_reordered(v) for v in node]
    return node


def _escaped(text: str) -> str:
    """JSON where every key's first letter is a \\u escape: the same document to any JSON parser."""
    return text.replace('"class_name"', '"\\u0063lass_name"').replace('"module"', '"\\u006dodule"')


def _h5_with(config_json: str, user_block: int = 0) -> bytes:
    data = keras_h5({"placeholder": True}).replace(json.dumps({"placeholder": True}).encode(), config_json.encode())
    return b"\0" * user_block + data


@pytest.mark.parametrize("layer", [keras_lambda_layer_v3(), keras_lambda_layer_v2()], ids=["keras3", "keras2"])
@pytest.mark.parametrize("disguise", ["reordered", "escaped", "both"])
def test_lambda_with_reordered_or_escaped_keys_in_hdf5(layer: dict[str, Any], disguise: str) -> None:
    config = keras_sequential([layer])
    if disguise in ("reordered", "both"):
        config = _reordered(config)
    text = json.dumps(config)
    if disguise in ("escaped", "both"):
        text = _escaped(text)
    assert json.loads(text) == (config if disguise != "both" else _reordered(keras_sequential([layer])))
    assert LAMBDA in rules(scan(_h5_with(text)))


@pytest.mark.parametrize("user_block", [512, 1024, 2048, 4096, 65536, 131072])
def test_hdf5_superblock_after_a_user_block(user_block: int) -> None:
    data = _h5_with(json.dumps(keras_sequential([keras_lambda_layer_v3()])), user_block)
    assert LAMBDA in rules(scan(data))
    assert scan(_h5_with(json.dumps(keras_sequential()), user_block)) == []


def test_keras_v3_without_metadata_json() -> None:
    evil = corpus.zip_bytes({"config.json": json.dumps(keras_sequential([keras_lambda_layer_v3()])).encode()},
                            zipfile.ZIP_DEFLATED)
    assert LAMBDA in rules(scan(evil, "model.keras"))
    benign = corpus.zip_bytes({"config.json": json.dumps(keras_sequential()).encode()})
    assert scan(benign, "model.keras") == []


def test_architecture_json_with_a_lambda() -> None:
    text = json.dumps(_reordered(keras_sequential([keras_lambda_layer_v2()])), indent=2).encode()
    assert LAMBDA in rules(scan(text, "model.json"))
    assert scan(json.dumps(keras_sequential(), indent=2).encode(), "model.json") == []


@pytest.mark.parametrize(("layer", "severity"), [
    ({"module": "keras.layers", "class_name": "TorchModuleWrapper", "registered_name": None,
      "config": {"name": "wrap", "module": "UEsDBAAAAAAAAAAA"}}, Severity.CRITICAL),
    ({"module": "keras.layers", "class_name": "TFSMLayer", "registered_name": None,
      "config": {"name": "sm", "filepath": "/tmp/attacker_saved_model", "call_endpoint": "serve"}}, Severity.HIGH),
], ids=["TorchModuleWrapper", "TFSMLayer"])
def test_unsafe_layers(layer: dict[str, Any], severity: Severity) -> None:
    config = json.dumps(keras_sequential([layer]))
    for data, name in ((corpus.zip_bytes({"config.json": config.encode()}), "m.keras"), (_h5_with(config), "m.h5")):
        [hit] = [f for f in scan(data, name) if f.rule.id == "keras/unsafe-layer"]
        assert hit.severity is severity
        assert layer["class_name"] in hit.message
