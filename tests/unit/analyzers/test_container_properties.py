"""Property: any damage to any container or format never crashes an analyzer and never hides a payload before it."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import tarfile
import zipfile
import zlib

import lz4.frame  # type: ignore[import-untyped]
from backports import zstd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlsec_actions.analyzers import archive
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.dispatch import Dispatcher
from tests import model_corpus as corpus
from tests.model_corpus_formats import gguf_llm, keras_h5, keras_sequential, onnx_plain

EVIL = corpus.call("os", "system", "touch /nonexistent/canary")


def _tar(data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        info = tarfile.TarInfo("m/evil.pkl")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return out.getvalue()


SEEDS = {
    "torch-zip": corpus.torch_zip("archive", EVIL),
    "deflated-zip": corpus.zip_bytes({"a/data.pkl": EVIL, "a/x": b"y" * 300}, zipfile.ZIP_DEFLATED),
    "keras-zip": corpus.zip_bytes({"config.json": json.dumps(keras_sequential()).encode()}),
    "tar": _tar(EVIL),
    "gzip": gzip.compress(EVIL, mtime=0),
    "bz2": bz2.compress(EVIL),
    "xz": lzma.compress(EVIL),
    "lzma": lzma.compress(EVIL, format=lzma.FORMAT_ALONE),
    "zlib": zlib.compress(EVIL),
    "lz4": lz4.frame.compress(EVIL),
    "zstd": zstd.compress(EVIL),
    "npy": corpus.npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", EVIL),
    "hdf5": keras_h5(keras_sequential()),
    "onnx": onnx_plain(),
    "gguf": gguf_llm("{% for m in messages %}{{ m['content'] }}{% endfor %}"),
}


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_inputs_never_crash_an_analyzer(data: bytes) -> None:
    dispatcher = Dispatcher(limits=archive.Limits(max_member_bytes=8 * 1024 * 1024))
    dispatcher.scan_file(Blob("x.bin", None, len(data), lambda: io.BytesIO(data)))
    assert dispatcher.errors == {}


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["gzip", "bz2", "xz", "zlib", "lz4", "zstd", "lzma"]), st.binary(max_size=64))
def test_trailing_garbage_after_a_stream_keeps_the_payload(codec: str, tail: bytes) -> None:
    data = SEEDS[codec] + tail
    findings = Dispatcher().scan_file(Blob("x.bin", None, len(data), lambda: io.BytesIO(data)))
    assert "pickle/dangerous-global" in {f.rule.id for f in findings}
