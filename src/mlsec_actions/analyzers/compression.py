"""Compressed streams: recognised by their structure, decoded with bounded memory.

Loaders open far more than gzip: joblib writes zlib, gzip, bz2, xz, lzma "alone" and lz4 frames; pandas
picks a codec from the suffix (`.pkl.zst`). Each codec is recognised by its real header (checksums,
reserved bits, a trial decode of the head), never by two bytes alone: fp16 weights that start `1f 8b`
are not gzip. Decoding streams into a spooled temporary file (memory stays at the spool size), stops at
the shared size, ratio and budget limits, and keeps what was decoded before an error or a limit: the
loader would have run that part too.
"""

from __future__ import annotations

import binascii
import bz2
import io
import lzma
import struct
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from mlsec_actions.analyzers.limits import Budget, LimitExceededError, Limits

SPOOL_BYTES = 8 * 1024 * 1024
"""Decoded data kept in memory before the spool moves to a temporary file."""
_CHUNK = 1 << 20
_RATIO_FLOOR = 1024 * 1024
# Name suffixes pandas' `compression="infer"` and joblib honour, with the codec they pick.
SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".lzma": "lzma", ".zst": "zstd", ".lz4": "lz4",
            ".z": "zlib"}
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_LZ4_MAGIC = b"\x04\x22\x4d\x18"
_JOBLIB_ZF = b"ZF"
_JOBLIB_ZF_HEADER = 2 + 19  # b"ZF" then the length as hex, space-padded (joblib < 0.10)
_MAX_MEMBERS = 10_000


def sniff(head: bytes) -> str | None:
    """The codec of a stream that starts with `head`, checked by structure and a trial decode."""
    for codec, looks, decoder in _CODECS:
        if looks(head) and _trial(decoder, head):
            return codec
    return None


def _skip_skippable(head: bytes) -> bytes:
    """zstd and lz4 decoders skip "skippable frames" (magic 0x184D2A5?): so does detection."""
    pos = 0
    while len(head) >= pos + 8 and head[pos + 1:pos + 4] == b"\x2a\x4d\x18" and 0x50 <= head[pos] <= 0x5F:
        (size,) = struct.unpack("<I", head[pos + 4:pos + 8])
        pos += 8 + size
    return head[pos:]


def _gzip(head: bytes) -> bool:
    return head[:3] == b"\x1f\x8b\x08" and len(head) >= 10 and not head[3] & 0xE0


def _zlib(head: bytes) -> bool:
    if head.startswith(_JOBLIB_ZF):
        head = head[_JOBLIB_ZF_HEADER:]
    return (len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and not head[1] & 0x20
            and ((head[0] << 8) | head[1]) % 31 == 0)


def _bz2(head: bytes) -> bool:
    return (len(head) >= 10 and head[:3] == b"BZh" and 0x31 <= head[3] <= 0x39
            and head[4:10] in (b"1AY&SY", b"\x17\x72\x45\x38\x50\x90"))


def _xz(head: bytes) -> bool:
    # Magic, two stream-flag bytes (first zero, reserved bits zero) and their CRC32.
    return bool(len(head) >= 12 and head[:6] == b"\xfd7zXZ\x00" and head[6] == 0 and not head[7] & 0xF0
                and struct.unpack("<I", head[8:12])[0] == binascii.crc32(head[6:8]))


def _lzma_alone(head: bytes) -> bool:
    # Properties byte (lc/lp/pb < 9*5*5), dictionary size, then 8 bytes of size (-1: unknown).
    if len(head) < 13 or head[0] >= 225:
        return False
    (dict_size,) = struct.unpack("<I", head[1:5])
    (size,) = struct.unpack("<Q", head[5:13])
    return bool(4096 <= dict_size <= 1 << 30 and (size == 2**64 - 1 or size < 1 << 48))


def _lz4(head: bytes) -> bool:
    head = _skip_skippable(head)
    return len(head) >= 7 and head[:4] == _LZ4_MAGIC and head[4] >> 6 == 1 and not head[4] & 0x02


def _zstd(head: bytes) -> bool:
    head = _skip_skippable(head)
    return len(head) >= 5 and head[:4] == _ZSTD_MAGIC and not head[4] & 0x08


def _decoder(codec: str) -> Any:
    """A fresh incremental decoder with `decompress(data, max_length)`, or None if its library is absent."""
    if codec == "gzip":
        return zlib.decompressobj(16 + 15)
    if codec == "zlib":
        return zlib.decompressobj(15)
    if codec == "deflate":
        return zlib.decompressobj(-15)
    if codec == "bz2":
        return bz2.BZ2Decompressor()
    if codec == "xz":
        return lzma.LZMADecompressor(lzma.FORMAT_XZ)
    if codec == "lzma":
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE)
    if codec == "lz4":
        try:
            import lz4.frame  # type: ignore[import-untyped]  # optional (models extra), only for lz4 data
        except ImportError:
            return None
        return lz4.frame.LZ4FrameDecompressor()
    try:
        from backports import zstd  # optional (models extra), only for zstd data
    except ImportError:
        try:
            from compression import zstd  # type: ignore[import-not-found, no-redef]  # Python 3.14+
        except ImportError:
            return None
    return zstd.ZstdDecompressor()


def _trial(make: Callable[[], Any], head: bytes) -> bool:
    decoder = make()
    if decoder is None:
        return True  # the library is missing: trust the structure check, decoding reports the gap
    data = head[_JOBLIB_ZF_HEADER:] if head.startswith(_JOBLIB_ZF) else head
    try:
        decoder.decompress(data[:16384], 4096)
    except Exception:  # every codec raises its own error type on data that is not its format
        return False
    return True


_CODECS: tuple[tuple[str, Callable[[bytes], bool], Callable[[], Any]], ...] = (
    ("gzip", _gzip, lambda: _decoder("gzip")),
    ("bz2", _bz2, lambda: _decoder("bz2")),
    ("xz", _xz, lambda: _decoder("xz")),
    ("zstd", _zstd, lambda: _decoder("zstd")),
    ("lz4", _lz4, lambda: _decoder("lz4")),
    ("zlib", _zlib, lambda: _decoder("zlib")),
    ("lzma", _lzma_alone, lambda: _decoder("lzma")),
)
CODECS = tuple(c for c, _, _ in _CODECS)
"""Every codec `sniff` knows, in the order it tries them."""


class MissingCodecError(Exception):
    """The library for this codec is not installed (a coverage gap, not a finding about the file)."""


@dataclass
class Decoded:
    """What decoding produced: a spooled copy of the output, and why it stopped early (if it did)."""

    data: IO[bytes]
    """The decoded bytes (the caller closes it)."""
    size: int
    """How many."""
    error: str | None = None
    """The codec's complaint about damaged input after `size` bytes (the loader fails there too)."""
    limit: str | None = None
    """The limit that stopped decoding (a bomb or too much data); the rest was not decoded."""


def decode(stream: BinaryIO, codec: str, limits: Limits, budget: Budget) -> Decoded:
    """Decode `stream` (from its start) with `codec`; bounded by size, ratio and the shared budget."""
    decoder = _decoder(codec)
    if decoder is None:
        raise MissingCodecError(f"the {codec} library is not installed")
    stream.seek(0)
    if codec == "zlib" and stream.read(2) == _JOBLIB_ZF:
        stream.seek(_JOBLIB_ZF_HEADER)
    else:
        stream.seek(0)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned to the caller
    out = Decoded(spool, 0)
    consumed = 0
    data = b""
    members = 0
    try:
        while True:
            if _wants_input(decoder):
                more = stream.read(_CHUNK)
                consumed += len(more)
                if not more and not data:
                    if not getattr(decoder, "eof", False):
                        out.error = "the stream ends before its end marker (truncated)"
                    break
                data += more
            chunk = decoder.decompress(data, _CHUNK)
            data = bytes(getattr(decoder, "unconsumed_tail", b""))
            if chunk:
                _account(out, chunk, consumed, limits, budget)
            if getattr(decoder, "eof", False):
                members += 1
                data = bytes(decoder.unused_data or b"") + data
                if not data:
                    data = stream.read(_CHUNK)
                    consumed += len(data)
                if not data.strip(b"\x00") or members >= _MAX_MEMBERS:
                    break
                # Readers go on to a concatenated next stream (gzip members, joblib's zlib/lzma files).
                decoder = _decoder(codec)
                if not _trial(lambda: _decoder(codec), data):
                    break  # trailing bytes that are not a stream: the stdlib readers stop there too
    except LimitExceededError as e:
        out.limit = str(e)
    except Exception as e:  # the codec's own error: damaged or crafted input
        out.error = f"{type(e).__name__}: {e}"
    spool.seek(0)
    return out


def _wants_input(decoder: Any) -> bool:
    # zlib keeps unread input in unconsumed_tail (handled by the caller); the others say needs_input.
    if hasattr(decoder, "unconsumed_tail"):
        return not decoder.unconsumed_tail
    return bool(getattr(decoder, "needs_input", True))


def _account(out: Decoded, chunk: bytes, consumed: int, limits: Limits, budget: Budget) -> None:
    room = min(limits.max_member_bytes - out.size, budget.remaining)
    if len(chunk) > room:
        out.data.write(chunk[:max(room, 0)])
        out.size += max(room, 0)
        budget.remaining -= max(room, 0)
        budget.exhausted = budget.remaining <= 0
        raise LimitExceededError(f"decodes to more than {out.size // (1 << 20)} MiB")
    out.data.write(chunk)
    out.size += len(chunk)
    budget.remaining -= len(chunk)
    if out.size > _RATIO_FLOOR and out.size > limits.max_ratio * max(consumed, 1):
        raise LimitExceededError(f"expands more than {limits.max_ratio:g}x ({consumed} -> {out.size}+ bytes)")


def opener(decoded: Decoded) -> Callable[[], BinaryIO]:
    """Fresh read handles onto the spooled output (for a Blob)."""
    def open_() -> BinaryIO:
        return io.BufferedReader(Window(decoded.data, 0, decoded.size))
    return open_


class Window(io.RawIOBase):
    """A read-only, seekable view of `length` bytes of `parent` from `start`; copies nothing."""

    def __init__(self, parent: IO[bytes], start: int, length: int) -> None:
        super().__init__()
        self._parent = parent
        self._start, self._length, self._pos = start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._length - self._pos)
        if want <= 0:
            return 0
        self._parent.seek(self._start + self._pos)
        data = self._parent.read(want)
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)


