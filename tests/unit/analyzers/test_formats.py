"""Format detection by content: magic bytes and structure win over names, without false positives."""

from __future__ import annotations

import bz2
import collections
import gzip
import io
import json
import lzma
import pickle
import struct
import tarfile

import pytest

from mlsec_actions.analyzers.formats import Format, classify_zip, detect
from tests import model_corpus as corpus


def fmt(data: bytes) -> Format:
    return detect(io.BytesIO(data))


def _tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("a.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    return out.getvalue()


def _safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\x00" * 4


def _onnx() -> bytes:
    # ir_version 8, producer "pytorch", graph (empty), opset_import {version 17}
    return b"\x08\x08\x12\x07pytorch\x3a\x00\x42\x02\x10\x11"


@pytest.mark.parametrize(("data", "expected"), [
    (b"", Format.EMPTY),
    (pickle.dumps({"a": 1}, protocol=2), Format.PICKLE),
    (pickle.dumps({"a": 1}, protocol=5), Format.PICKLE),
    (pickle.dumps(collections.OrderedDict(a=1), protocol=0), Format.PICKLE),
    (pickle.dumps([1, "x"], protocol=1), Format.PICKLE),
    (corpus.inst_protocol0("id"), Format.PICKLE),
    (corpus.call("os", "system", "id", protocol=0)[:-1] + b"\xffjunk", Format.PICKLE),
    (corpus.joblib_like(None), Format.JOBLIB),
    (corpus.npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", b"\0" * 4), Format.NUMPY),
    (corpus.zip_bytes({"a": b"b"}), Format.ZIP),
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, Format.HDF5),
    (b"\0" * 512 + b"\x89HDF\r\n\x1a\n" + b"\0" * 100, Format.HDF5),
    (b"GGUF\x03\x00\x00\x00" + b"\0" * 16, Format.GGUF),
    (_safetensors(), Format.SAFETENSORS),
    (_onnx(), Format.ONNX),
    (b"\x08\x01\x12\x10\x0a\x0e\x0a\x05serve\x12\x05tensorflow", Format.SAVED_MODEL),
    (_tar(), Format.TAR),
    (gzip.compress(b"x", mtime=0), Format.GZIP),
    (bz2.compress(b"x"), Format.BZ2),
    (lzma.compress(b"x"), Format.XZ),
    (b"# Title\n\nSome prose.\n", Format.TEXT),
    ("naïve café".encode(), Format.TEXT),
    (bytes(range(256)) * 4, Format.UNKNOWN),
])
def test_detect(data: bytes, expected: Format) -> None:
    assert fmt(data) is expected


@pytest.mark.parametrize("text", [
    "import os\nimport sys\n", "(c) 2024 Example Corp.\nAll rights reserved.\n", "I think therefore I am\n",
    "Sure, here is the answer.\n", "cat file\nls -la\n", "]]>\n", "}\n", "Nothing here.\n", "N/A\n", "0.5\n",
    "lorem ipsum\n", "V1 release notes\n", "S'quoted'\n",
])
def test_text_is_not_mistaken_for_a_protocol0_pickle(text: str) -> None:
    assert detect(io.BytesIO(text.encode())) is Format.TEXT


@pytest.mark.parametrize("data", [
    b"\x08\x96\x01" + b"\x00" * 40,   # a varint-looking start that is not an ONNX model
    b"\x08\x08\x12\x07pytorch",        # no graph or opset
    b"\x08\x08\x99\x01\x00",           # unknown field
    struct.pack("<Q", 5) + b"[1,2]",   # safetensors-like length without a JSON object
])
def test_binary_lookalikes_are_not_claimed(data: bytes) -> None:
    assert fmt(data) not in (Format.ONNX, Format.SAFETENSORS, Format.PICKLE)


def test_extension_is_ignored() -> None:
    # Detection sees only bytes; a renamed PyTorch zip is still a zip, then classified as PyTorch.
    data = corpus.torch_zip("anything-goes", b"\x80\x02}q\x00.")
    assert fmt(data) is Format.ZIP


@pytest.mark.parametrize(("names", "expected"), [
    (["archive/data.pkl", "archive/version"], Format.TORCH_ZIP),
    (["my model v2/data.pkl", "my model v2/data/0"], Format.TORCH_ZIP),
    (["config.json", "metadata.json", "model.weights.h5"], Format.KERAS_ZIP),
    (["a.npy", "b.npy"], Format.NPZ),
    (["data.pkl"], Format.ZIP),
    (["x/y/data.pkl"], Format.ZIP),
    ([], Format.ZIP),
])
def test_classify_zip(names: list[str], expected: Format) -> None:
    assert classify_zip(names) is expected


def test_saved_model_dangerous_ops_are_read_from_the_graph_bytes() -> None:
    from mlsec_actions.analyzers import saved_model
    from mlsec_actions.analyzers.base import Blob

    def node(name: str, op: str) -> bytes:
        body = b"\x0a" + bytes([len(name)]) + name.encode() + b"\x12" + bytes([len(op)]) + op.encode()
        return b"\x0a" + bytes([len(body)]) + body

    head = b"\x08\x01\x12\x40\x0a\x0e\x0a\x05serve\x12\x05tensorflow"
    evil = head + node("call", "EagerPyFunc") + node("read", "ReadFile") + node("mm", "MatMul")
    benign = head + node("mm", "MatMul") + node("save", "SaveV2") + b"ReadFile appears in a doc string"
    assert detect(io.BytesIO(evil)) is Format.SAVED_MODEL

    def run(data: bytes) -> dict[str, str]:
        found = saved_model.analyze(Blob("saved_model.pb", None, len(data), lambda: io.BytesIO(data)))
        return {f.location.logical or "": f.severity.name for f in found}

    assert run(evil) == {"op EagerPyFunc": "CRITICAL", "op ReadFile": "HIGH"}
    assert run(benign) == {}
