"""safetensors header validation: each broken header has a valid twin that yields nothing."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from mlsec_actions.analyzers import safetensors
from tests.model_corpus_formats import assert_documented, blob, file_blob, mutations, safetensors_raw, safetensors_valid


def _ids(data: bytes) -> list[str]:
    return [f.rule.id for f in safetensors.analyze(blob(data, "model.safetensors"))]


def test_valid_file_has_no_findings() -> None:
    assert _ids(safetensors_valid()) == []
    assert _ids(safetensors_valid(metadata={"format": "pt"})) == []
    assert _ids(safetensors_valid(tensors=[])) == []


@pytest.mark.parametrize("data", [
    b"", b"\x01\x02\x03",                                   # shorter than the length prefix
    struct.pack("<Q", 200 * 1024 * 1024) + b"{}",           # over 100 MB
    struct.pack("<Q", 64) + b"{}",                          # longer than the file
    safetensors_raw(b"{not json"),
    safetensors_raw(b"[1, 2]"),                             # JSON but not an object
    safetensors_raw(b"\xff\xfe{}"),                         # not UTF-8
    safetensors_raw(b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                    b'"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', bytes(4)),  # duplicate key
], ids=["empty", "short", "huge-length", "length-past-file", "not-json", "array", "not-utf8", "duplicate-key"])
def test_malformed_header(data: bytes) -> None:
    found = safetensors.analyze(blob(data, "model.safetensors"))
    assert [f.rule.id for f in found] == ["safetensors/malformed-header"]
    assert found[0].location.path == "model.safetensors"


def _entry(dtype: object = "F32", shape: object = (2,), offsets: object = (0, 8)) -> dict[str, object]:
    return {"dtype": dtype, "shape": list(shape) if isinstance(shape, tuple) else shape,
            "data_offsets": list(offsets) if isinstance(offsets, tuple) else offsets}


@pytest.mark.parametrize(("entry", "needle"), [
    (_entry(dtype="F99"), "unknown dtype"),
    (_entry(dtype=7), "unknown dtype"),
    (_entry(shape=(-1,)), "shape"),
    (_entry(shape=[2.5]), "shape"),
    (_entry(shape=[True]), "shape"),
    (_entry(offsets=(8, 0)), "after end"),
    (_entry(offsets=(0, 9000)), "past the data section"),
    (_entry(offsets=[0]), "data_offsets"),
    (_entry(shape=(3,)), "needs 12 bytes"),
    ("not an object", "not an object"),
])
def test_invalid_tensor(entry: object, needle: str) -> None:
    found = safetensors.analyze(blob(safetensors_raw({"t": entry}, bytes(8))))
    assert [f.rule.id for f in found] == ["safetensors/invalid-tensor"]
    assert needle in found[0].message
    assert found[0].location.logical == "t"


def test_overlapping_tensors() -> None:
    header = {"a": _entry(shape=(4,), offsets=(0, 16)), "b": _entry(shape=(2,), offsets=(8, 16))}
    found = safetensors.analyze(blob(safetensors_raw(header, bytes(16))))
    assert [f.rule.id for f in found] == ["safetensors/invalid-tensor"]
    assert "overlap" in found[0].message and "'a'" in found[0].message


def test_overlap_with_an_earlier_longer_tensor() -> None:
    header = {"a": _entry(shape=(6,), offsets=(0, 24)), "b": _entry(shape=(1,), offsets=(4, 8)),
              "c": _entry(shape=(1,), offsets=(12, 16))}
    found = safetensors.analyze(blob(safetensors_raw(header, bytes(24))))
    assert sorted(f.location.logical or "" for f in found) == ["b", "c"]


def test_empty_tensors_share_an_offset_without_overlap() -> None:
    header = {"a": _entry(shape=(0,), offsets=(0, 0)), "b": _entry(shape=(2,), offsets=(0, 8))}
    assert _ids(safetensors_raw(header, bytes(8))) == []


def test_unreferenced_bytes_gap_and_trailing() -> None:
    header = {"a": _entry(shape=(1,), offsets=(0, 4)), "b": _entry(shape=(1,), offsets=(8, 12))}
    found = safetensors.analyze(blob(safetensors_raw(header, bytes(12) + b"PAYLOAD")))
    assert [f.rule.id for f in found] == ["safetensors/unreferenced-bytes"]
    assert "4 bytes in gaps" in found[0].message and "7 trailing" in found[0].message


@pytest.mark.parametrize("metadata", [{"k": 1}, ["x"], {"k": {"nested": "v"}}])
def test_metadata_must_be_string_to_string(metadata: object) -> None:
    assert _ids(safetensors_valid(metadata=metadata)) == ["safetensors/invalid-metadata"]  # type: ignore[arg-type]


def test_many_invalid_tensors_are_capped() -> None:
    header = {f"t{i}": _entry(dtype="BAD") for i in range(50)}
    found = safetensors.analyze(blob(safetensors_raw(header)))
    assert len(found) == safetensors.MAX_REPORTED + 1
    assert "30 more" in found[-1].message


def test_sub_byte_dtypes() -> None:
    header = {"q": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]}}
    assert _ids(safetensors_raw(header, bytes(2))) == []


def test_sparse_10gb_file_reads_only_the_header(tmp_path: Path) -> None:
    size = 10 * 1024**3
    header = json.dumps({"w": {"dtype": "F32", "shape": [size // 4], "data_offsets": [0, size]}}).encode()
    path = tmp_path / "big.safetensors"
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        fh.truncate(8 + len(header) + size)
    reads: list[int] = []
    real = file_blob(path, tmp_path)

    class Counting:
        def __init__(self) -> None:
            self.fh = path.open("rb")

        def read(self, n: int = -1) -> bytes:
            reads.append(n)
            return self.fh.read(n)

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    probe = type(real)(path=real.path, member=None, size=real.size, open=Counting)  # type: ignore[arg-type]
    assert safetensors.analyze(probe) == []
    assert sum(reads) <= 8 + len(header)


def test_rules_are_documented() -> None:
    assert_documented(safetensors.RULES)


def test_damaged_files_never_raise() -> None:
    for data in mutations(safetensors_valid(metadata={"format": "pt"})):
        for finding in safetensors.analyze(blob(data)):
            assert finding.rule in safetensors.RULES
