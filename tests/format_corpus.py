"""Adversarial container and format corpus (bypass classes 4-9 and 11 of issue 10), with benign twins.

Every file is built here as bytes; nothing is loaded. `python -m tests.format_corpus DIR` writes the files
and `labels.json` (file -> malicious or benign, the class, and the rule that must fire at HIGH or above).
The committed copy in `tests/corpus/formats/` is checked against this generator by the tests; its `peers/`
folder holds peers' own samples with their upstream labels (`manifest.json`).
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from tests import model_corpus as corpus
from tests import zip_craft as craft
from tests.model_corpus_formats import (
    CHATML_TEMPLATE,
    gguf_llm,
    keras_h5,
    keras_lambda_layer_v3,
    keras_sequential,
    onnx_node,
    onnx_tensor,
    pb_int,
    pb_len,
)

EVIL = corpus.call("os", "system", "touch /nonexistent/mlsec-canary")
BENIGN = corpus.torch_state_dict_pickle()


@dataclass(frozen=True)
class Sample:
    """One corpus file."""

    name: str
    """Path under the corpus folder."""
    data: bytes
    """Its bytes."""
    cls: str
    """The bypass class it exercises (issue 10 numbering)."""
    expect: str = ""
    """The rule that must fire at HIGH or above; empty for a benign twin."""


def _codecs() -> dict[str, bytes]:
    import lz4.frame  # type: ignore[import-untyped]
    from backports import zstd

    return {"gz": gzip.compress(EVIL, mtime=0), "bz2": bz2.compress(EVIL), "xz": lzma.compress(EVIL),
            "lzma": lzma.compress(EVIL, format=lzma.FORMAT_ALONE), "zlib": zlib.compress(EVIL),
            "lz4": lz4.frame.compress(EVIL), "zst": zstd.compress(EVIL)}


def _seven_zip(members: dict[str, bytes]) -> bytes:
    import io

    import py7zr

    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as z:
        for name, data in members.items():
            z.writestr(data, name)
    return out.getvalue()


def _zip_differentials() -> list[Sample]:
    shown, hidden = craft.Record(b"archive/data.pkl", BENIGN), craft.Record(b"archive/data.pkl", EVIL)
    body, extra, cd = craft.local(shown), craft.local(hidden), craft.central(shown, 0)
    hidden_local = body + extra + cd + craft.end(1, len(cd), len(body) + len(extra))
    renamed_cd = craft.central(hidden, 0)
    renamed = craft.local(hidden, name=b"archive/other.pk") + renamed_cd
    renamed += craft.end(1, len(renamed_cd), len(craft.local(hidden)))
    return [
        Sample("zip/hidden-local-entry.pt", hidden_local, "4", "pickle/dangerous-global"),
        Sample("zip/version-needed-64.pt", craft.archive([craft.Record(b"a/data.pkl", EVIL, version_needed=64)]), "4",
               "pickle/dangerous-global"),
        Sample("zip/utf8-flag-not-utf8.pt", craft.archive([craft.Record(b"a/d\xffta.pkl", EVIL, flags=0x800)]), "4",
               "pickle/dangerous-global"),
        Sample("zip/local-name-differs.pt", renamed, "4", "archive/reader-differential"),
        Sample("zip/duplicate-names.pt", craft.archive([shown, hidden]), "4", "pickle/dangerous-global"),
        Sample("zip/appended-to-pickle.keras", BENIGN + corpus.zip_bytes({"a/data.pkl": EVIL}), "4",
               "pickle/dangerous-global"),
        Sample("zip/benign-torch.pt", corpus.torch_zip("archive", BENIGN), "4"),
        Sample("zip/benign-deflated.pt", corpus.zip_bytes({"archive/data.pkl": BENIGN}, zipfile.ZIP_DEFLATED), "4"),
    ]


def _containers() -> list[Sample]:
    out = [Sample(f"codec/evil.pkl.{suffix}", data, "5", "pickle/dangerous-global")
           for suffix, data in _codecs().items()]
    out.append(Sample("codec/benign.pkl.gz", gzip.compress(BENIGN, mtime=0), "5"))
    nested = EVIL
    for _ in range(6):
        nested = gzip.compress(nested, mtime=0)
    out += [Sample("codec/nested-6-deep.gz", nested, "5", "archive/limit"),
            Sample("7z/checkpoint.7z", _seven_zip({"ckpt/model.pt": corpus.torch_zip("archive", EVIL)}), "5",
                   "pickle/dangerous-global"),
            Sample("7z/benign.7z", _seven_zip({"ckpt/model.pt": corpus.torch_zip("archive", BENIGN)}), "5")]
    return out


def _detection() -> list[Sample]:
    floats = struct.pack("<512f", *[0.01 * (i % 13) for i in range(512)])
    storages = {"archive/data.pkl": BENIGN, "archive/data/0": b"\x80\x02" + floats,
                "archive/data/1": b"\x1f\x8b\x08\x00" + floats, "archive/data/2": struct.pack("<q", 640) + floats}
    long_first = b"\x80\x02X" + struct.pack("<I", 100_000) + b"A" * 100_000 + b"0" + EVIL[2:]
    return [Sample("detect/tensor-bytes-look-like-magic.pt", corpus.zip_bytes(storages), "11"),
            Sample("detect/raw-weights-80-02.bin", b"\x80\x02" + floats, "11"),
            Sample("detect/empty/__init__.py", b"", "11"),
            Sample("detect/long-leading-string.pkl", long_first, "4", "pickle/dangerous-global")]


def _npy(descr: str, shape: str = "(1,)") -> bytes:
    return corpus.npy_bytes(f"{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}", EVIL)


def _numpy() -> list[Sample]:
    benign = corpus.npy_bytes("{'descr': [('Obj', '<f8')], 'fortran_order': False, 'shape': (1,), }", b"\0" * 8)
    return [Sample("numpy/descr-object-word.npy", _npy("'object'"), "9", "pickle/dangerous-global"),
            Sample("numpy/descr-comma-object.npy", _npy("'i4,O'"), "9", "pickle/dangerous-global"),
            Sample("numpy/descr-nested-object.npy", _npy("[('a', [('b', '|O')])]"), "9", "pickle/dangerous-global"),
            Sample("numpy/python2-long-shape.npy", _npy("'|O'", "(1L,)"), "9", "pickle/dangerous-global"),
            Sample("numpy/benign-field-named-O.npy", benign, "9")]


def _keras() -> list[Sample]:
    text = json.dumps(keras_sequential([keras_lambda_layer_v3()])).replace('"class_name"', '"\\u0063lass_name"')
    h5 = keras_h5({"k": 1}).replace(json.dumps({"k": 1}).encode(), text.encode())
    wrapper = {"module": "keras.layers", "class_name": "TorchModuleWrapper", "config": {"module": "UEsDBA=="}}
    return [Sample("keras/escaped-keys.h5", h5, "6", "keras/lambda-layer"),
            Sample("keras/user-block-4096.h5", b"\0" * 4096 + h5, "6", "keras/lambda-layer"),
            Sample("keras/no-metadata.keras", corpus.zip_bytes({"config.json": text.encode()}), "6",
                   "keras/lambda-layer"),
            Sample("keras/architecture.json", text.encode(), "6", "keras/lambda-layer"),
            Sample("keras/torch-module-wrapper.keras",
                   corpus.zip_bytes({"config.json": json.dumps(keras_sequential([wrapper])).encode()}), "6",
                   "keras/unsafe-layer"),
            Sample("keras/benign.h5", keras_h5(keras_sequential()), "6")]


def _protobuf() -> list[Sample]:
    graph = pb_len(1, onnx_node("MatMul")) + pb_len(2, "main") + pb_len(5, onnx_tensor("w", "/etc/passwd"))
    reordered = pb_len(7, graph) + pb_len(99, "unknown") + pb_len(8, pb_int(2, 17)) + b"\x08\x89\x80\x00"
    node = pb_len(1, "n") + b"\x12\x86\x00PyFunc"
    saved = pb_len(2, pb_len(2, pb_len(1, node))) + pb_int(1, 1)
    pbtxt = b'meta_graphs {\n  graph_def {\n    node {\n      name: "p"\n      op: "PyFunc"\n    }\n  }\n}\n'
    return [Sample("onnx/reordered-unknown-overlong.onnx", reordered, "6", "onnx/external-data-path"),
            Sample("tf/saved_model.pb", saved, "6", "tf/dangerous-op"),
            Sample("tf/text/saved_model.pbtxt", pbtxt, "6", "tf/dangerous-op")]


def _templates() -> list[Sample]:
    escape = "{% set u = '%c'|format(95) %}{{ lipsum[u ~ u ~ 'globals' ~ u ~ u] }}"
    big = "{# " + "pad " * 300_000 + "#}" + "{{ cycler['\\N{LOW LINE}\\N{LOW LINE}init__'] }}"
    config = {"auto_map": {"AutoTokenizer": ["tokenization_x.XTokenizer", None]}}
    return [Sample("gguf/format-95.gguf", gguf_llm(escape + CHATML_TEMPLATE), "7", "gguf/chat-template-injection"),
            Sample("gguf/over-1-mib.gguf", gguf_llm(big + CHATML_TEMPLATE), "7", "gguf/chat-template-injection"),
            Sample("gguf/benign.gguf", gguf_llm(CHATML_TEMPLATE), "7"),
            Sample("hf/tokenizer-only/tokenizer_config.json", json.dumps(config).encode(), "8", "hf/auto-map")]


def samples() -> list[Sample]:
    """The whole corpus."""
    return [*_zip_differentials(), *_containers(), *_detection(), *_numpy(), *_keras(), *_protobuf(),
            *_templates()]


def write(root: Path) -> None:
    labels = {}
    for s in samples():
        (root / s.name).parent.mkdir(parents=True, exist_ok=True)
        (root / s.name).write_bytes(s.data)
        labels[s.name] = {"label": "malicious" if s.expect else "benign", "class": s.cls, "expect": s.expect}
    (root / "labels.json").write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]))
