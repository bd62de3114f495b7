"""Compressed streams and containers loaders open: each codec hides a payload; each benign twin stays clean."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zlib
from collections.abc import Callable

import lz4.frame  # type: ignore[import-untyped]
import py7zr
import pytest
from backports import zstd

from mlsec_actions.analyzers import archive
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.dispatch import Dispatcher
from mlsec_actions.findings import Finding, GapKind, Severity
from tests import model_corpus as corpus

EVIL = corpus.call("os", "system", "touch /nonexistent/canary")
BENIGN = corpus.torch_state_dict_pickle()
DANGER = "pickle/dangerous-global"


def _joblib_zf(data: bytes) -> bytes:
    """joblib < 0.10's zlib format: b"ZF", the length in hex padded to 19 bytes, then a zlib stream."""
    return b"ZF" + f"0x{len(data):x}".ljust(19).encode() + zlib.compress(data)


CODECS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda d: gzip.compress(d, mtime=0),
    "bz2": bz2.compress,
    "xz": lambda d: lzma.compress(d, format=lzma.FORMAT_XZ),
    "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),  # joblib's compress="lzma"
    "zlib": zlib.compress,                                       # joblib's compress="zlib"
    "joblib-zf": _joblib_zf,
    "lz4": lz4.frame.compress,                                   # joblib's compress="lz4"
    "zstd": zstd.compress,                                       # pandas' .pkl.zst
}


def scan(data: bytes, name: str = "model.bin", limits: archive.Limits | None = None) -> tuple[list[Finding],
                                                                                           Dispatcher]:
    dispatcher = Dispatcher(limits=limits or archive.Limits())
    blob = Blob(name, None, len(data), lambda: io.BytesIO(data))
    return dispatcher.scan_file(blob), dispatcher


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule.id for f in findings}


@pytest.mark.parametrize("codec", list(CODECS))
def test_each_codec_is_opened(codec: str) -> None:
    findings, _ = scan(CODECS[codec](EVIL))
    assert rules(findings) == {DANGER}
    [hit] = findings
    expected = "zlib" if codec == "joblib-zf" else codec
    assert hit.location.logical == f"<{expected}>::offset 2::os.system"


@pytest.mark.parametrize("codec", list(CODECS))
def test_each_codec_benign_is_clean(codec: str) -> None:
    assert scan(CODECS[codec](BENIGN))[0] == []
    assert scan(CODECS[codec](corpus.sklearn_pickle()))[0] == []


@pytest.mark.parametrize("codec", ["zlib", "lz4", "lzma"])
def test_joblib_compressed_files(codec: str) -> None:
    evil = corpus.joblib_like(("os", "system"))
    assert DANGER in rules(scan(CODECS[codec](evil))[0])
    assert scan(CODECS[codec](corpus.joblib_like(None)))[0] == []


def test_nested_codecs_chain_their_names() -> None:
    data = gzip.compress(zstd.compress(lz4.frame.compress(EVIL)), mtime=0)
    [hit] = scan(data)[0]
    assert hit.location.logical == "<gzip>!<zstd>!<lz4>::offset 2::os.system"


def test_nesting_past_the_limit_is_a_gap_and_a_finding() -> None:
    data = EVIL
    for _ in range(6):
        data = gzip.compress(data, mtime=0)
    findings, dispatcher = scan(data, limits=archive.Limits(max_depth=4))
    assert rules(findings) == {"archive/limit"}
    assert [f.severity for f in findings] == [Severity.HIGH]  # a medium would pass the default gate
    [gap] = dispatcher.gaps
    assert gap.kind is GapKind.LIMIT_REACHED and gap.path == "model.bin"
    assert DANGER in rules(scan(data, limits=archive.Limits(max_depth=6))[0])


def test_zip_in_tar_in_gzip_past_the_limit() -> None:
    inner = corpus.torch_zip("archive", EVIL)
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        info = tarfile.TarInfo("ckpt/model.pt")
        info.size = len(inner)
        t.addfile(info, io.BytesIO(inner))
    data = gzip.compress(tar.getvalue(), mtime=0)
    assert DANGER in rules(scan(data)[0])
    findings, dispatcher = scan(data, limits=archive.Limits(max_depth=2))
    assert "archive/limit" in rules(findings) and dispatcher.gaps


def test_payload_before_damaged_stream_is_still_scanned() -> None:
    # A loader streams the decompressed pickle and runs it before reaching the damage.
    good = gzip.compress(EVIL + b"\0" * 50_000, mtime=0)
    damaged = good[:len(good) // 2] + b"\xff" * 64
    findings, _ = scan(damaged)
    assert DANGER in rules(findings) and "archive/malformed" in rules(findings)


def test_concatenated_streams_are_all_read() -> None:
    # gzip readers (and joblib's zlib/lzma files) go on to the next member: so does the scan.
    data = gzip.compress(b"", mtime=0) + gzip.compress(EVIL, mtime=0)
    assert DANGER in rules(scan(data)[0])


@pytest.mark.parametrize("codec", ["gzip", "bz2", "xz", "zstd", "lz4", "zlib", "lzma"])
def test_stream_bombs_stop_early_and_are_findings(codec: str) -> None:
    data = CODECS[codec](b"\0" * (64 * 1024 * 1024))
    findings, dispatcher = scan(data, limits=archive.Limits())
    assert rules(findings) == {"archive/bomb"}
    assert [g.kind for g in dispatcher.gaps] == [GapKind.LIMIT_REACHED]  # what was not decoded is a gap too


def test_member_limit_on_streams() -> None:
    data = gzip.compress(b"\x80\x02}q\x00." + bytes(range(256)) * 8192, mtime=0)  # 2 MiB, low ratio
    findings, _ = scan(data, limits=archive.Limits(max_member_bytes=1024 * 1024))
    assert rules(findings) == {"archive/bomb"}


def test_suffix_picks_the_codec_when_content_does_not() -> None:
    # A zstd skippable frame longer than the detection head hides the magic; pandas still decodes by suffix.
    skippable = struct.pack("<II", 0x184D2A50, 100_000) + b"\0" * 100_000
    data = skippable + zstd.compress(EVIL)
    assert DANGER in rules(scan(data, name="frame.pkl.zst")[0])


@pytest.mark.parametrize("data", [
    b"\x1f\x8b\x08\x00" + struct.pack("<512e", *([0.5] * 512)),  # fp16 weights that start like gzip
    b"\x1f\x8b" + bytes(range(256)) * 4,
    b"BZh9" + b"\x00" * 100,
    b"\x28\xb5\x2f\xfd" + b"\xff" * 64,
    b"\x04\x22\x4d\x18" + b"\xff" * 64,
    b"\x78\x9c" + b"\xff" * 64,
    b"\x5d\x00\x00\x80\x00" + b"\xff" * 64,
], ids=["fp16-gzip", "gzip-magic", "bz2-magic", "zstd-magic", "lz4-magic", "zlib-magic", "lzma-magic"])
def test_magic_bytes_alone_are_not_a_container(data: bytes) -> None:
    assert scan(data)[0] == []
    assert scan(corpus.zip_bytes({"archive/data.pkl": BENIGN, "archive/data/0": data}))[0] == []


def _seven_zip(members: dict[str, bytes], **kwargs: object) -> bytes:
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", **kwargs) as z:  # type: ignore[arg-type]
        for name, data in members.items():
            z.writestr(data, name)
    return out.getvalue()


def test_seven_zip_packed_checkpoint() -> None:
    data = _seven_zip({"ckpt/model.pt": corpus.torch_zip("archive", EVIL), "ckpt/readme.txt": b"hello"})
    findings, _ = scan(data)
    assert rules(findings) == {DANGER}
    [hit] = findings
    assert hit.location.logical == "ckpt/model.pt!archive/data.pkl::offset 2::os.system"
    assert scan(_seven_zip({"ckpt/model.pt": corpus.torch_zip("archive", BENIGN)}))[0] == []


def test_seven_zip_solid_bomb_is_not_decoded() -> None:
    data = _seven_zip({f"part{i}": b"\0" * (16 * 1024 * 1024) for i in range(8)} | {"z/evil.pkl": EVIL})
    findings, _ = scan(data)
    assert rules(findings) == {"archive/bomb"}


def test_seven_zip_encrypted_is_reported() -> None:
    data = _seven_zip({"evil.pkl": EVIL}, password="pw")
    assert rules(scan(data)[0]) == {"model/unscanned-format"}


def test_v7_tar_without_ustar_magic() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo("evil.pkl")
        info.size = len(EVIL)
        t.addfile(info, io.BytesIO(EVIL))
    data = bytearray(out.getvalue())
    data[257:265] = b"\0" * 8  # v7 header: no magic, the checksum still matches once recomputed
    checksum = sum(data[:148]) + 8 * 32 + sum(data[156:512])
    data[148:156] = f"{checksum:06o}\0 ".encode()
    assert DANGER in rules(scan(bytes(data))[0])
