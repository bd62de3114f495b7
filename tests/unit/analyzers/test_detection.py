"""Formats recognised by structure: tensor bytes that look like magic are not formats; odd real pickles are."""

from __future__ import annotations

import io
import random
import struct
import time
import zipfile
from pathlib import Path

import pytest

from mlsec_actions.analyzers import archive, pickle_sniff
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.dispatch import Dispatcher
from mlsec_actions.analyzers.formats import Format, detect
from mlsec_actions.findings import Finding
from tests import model_corpus as corpus

EVIL = corpus.call("os", "system", "touch /nonexistent/canary")
DANGER = "pickle/dangerous-global"


def scan(data: bytes) -> list[Finding]:
    return Dispatcher(limits=archive.Limits()).scan_file(Blob("w.bin", None, len(data), lambda: io.BytesIO(data)))


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule.id for f in findings}


def _floats(seed: int, n: int = 1024) -> bytes:
    rng = random.Random(  # noqa: S311 - reproducible test data
        seed)
    return struct.pack(f"<{n}f", *(rng.gauss(0, 0.02) for _ in range(n)))


@pytest.mark.parametrize("prefix", [b"\x80\x02", b"\x80\x04", b"\x80\x05", b"\x80\x02\x00\x00\x00\x00\x00\x00"],
                         ids=["proto2", "proto4", "proto5", "storage-size-header"])
def test_tensor_bytes_that_start_like_a_pickle_are_not_one(prefix: bytes) -> None:
    for seed in range(50):
        data = prefix + _floats(seed)
        assert detect(io.BytesIO(data)) is not Format.PICKLE, seed
        assert scan(data) == []


def test_random_data_after_proto_is_rarely_plausible_and_never_a_finding() -> None:
    rng = random.Random(  # noqa: S311 - reproducible test data
        7)
    samples = [b"\x80\x02" + rng.randbytes(4096) for _ in range(2000)]
    # `80 02 29 2e` is a real pickle of `()`: random data can start with one, nothing worse.
    assert sum(pickle_sniff.plausible(io.BytesIO(s)) for s in samples) <= 2
    assert [s[:8] for s in samples if scan(s)] == []


def test_storage_members_of_a_torch_zip_stay_clean() -> None:
    members = {"archive/data.pkl": corpus.torch_state_dict_pickle(), "archive/version": b"3\n"}
    members |= {f"archive/data/{i}": p + _floats(i) for i, p in enumerate((b"\x80\x02", b"\x1f\x8b\x08\x00",
                                                                           b"\x80\x04\x95", b"PK\x03\x04"))}
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        assert scan(corpus.zip_bytes(members, method)) == []


def _long_string_first(protocol: int, size: int) -> bytes:
    """A pickle whose first value is a long string, then the payload: the whole head is string."""
    rng = random.Random(  # noqa: S311 - reproducible test data
        size)
    filler = bytes(rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(size))  # not a ratio bomb when deflated
    if protocol == 0:
        return b"V" + filler + b"\n0" + EVIL[2:]
    string = b"\x8d" + struct.pack("<Q", size) if protocol >= 4 else b"X" + struct.pack("<I", size)
    return bytes([0x80, protocol]) + string + filler + b"0" + EVIL[2:]


@pytest.mark.parametrize(("protocol", "size"), [(0, 1_000_000), (2, 100_000), (4, 100_000), (4, 3_000_000)])
def test_long_leading_string_does_not_hide_the_pickle(protocol: int, size: int) -> None:
    data = _long_string_first(protocol, size)
    assert detect(io.BytesIO(data)) is Format.PICKLE
    assert DANGER in rules(scan(data))
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        inner = scan(corpus.zip_bytes({"archive/data.pkl": data}, method))
        assert DANGER in rules(inner), method


def test_declared_huge_argument_is_skipped_not_read(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.pkl"
    with sparse.open("wb") as out:
        out.write(b"\x80\x04\x8e" + struct.pack("<Q", 2 * 1024**3))
        out.seek(11 + 2 * 1024**3)
        out.write(b"0" + EVIL[2:])
    start = time.perf_counter()
    with sparse.open("rb") as stream:
        assert pickle_sniff.plausible(stream)
    assert time.perf_counter() - start < 1.0  # a seek, not a 2 GB read


@pytest.mark.parametrize("text", ["(c) 2024 Example Corp.\nAll rights reserved.\n", "cos is a function\nok\n",
                                  "I think\n", "N/A\n", "}{\n", "]]>\n", "Version 2\n", "Klaus\n", "lorem\n"])
def test_text_that_starts_like_protocol_0_is_text(text: str) -> None:
    assert detect(io.BytesIO(text.encode())) is Format.TEXT


def test_truncated_and_deliberately_broken_pickles_are_still_pickles() -> None:
    assert detect(io.BytesIO(EVIL[:9])) is Format.PICKLE                 # cut inside the GLOBAL
    broken = EVIL[:-1] + b"\xff\xff garbage after the payload"             # nullifAI: payload, then an error
    assert detect(io.BytesIO(broken)) is Format.PICKLE
    assert DANGER in rules(scan(broken))
    assert detect(io.BytesIO(corpus.inst_protocol0("id"))) is Format.PICKLE


@pytest.mark.parametrize("data", [
    b"cbuiltins\n__import__\nS'os'\x85R.",              # a dunder import, then a STRING CPython refuses
    b"\x80\x05\x95\x1e\x00\x00\x00\x00\x00\x00\x00N\x95\x02\x00\x00\x00\x00\x00\x00\x00N.",  # frames that lie
    b"\x80\x02N)N.",                                   # STOP with values left under the top (CPython allows)
], ids=["dunder-then-broken", "frame-straddle", "stop-with-leftovers"])
def test_pickles_loaders_would_start_on_are_pickles(data: bytes) -> None:
    assert detect(io.BytesIO(data)) is Format.PICKLE


@pytest.mark.parametrize("text", ["cython\nnumpy\nscipy\n", "config\nsettings\n", "cmake\n"])
def test_package_lists_starting_with_c_stay_text(text: str) -> None:
    assert detect(io.BytesIO(text.encode())) is Format.TEXT
