"""Format detection by content (magic bytes and structure), never by file name or extension.

Attackers rename files (`model.bin` that is a PyTorch zip, `weights.txt` that is a pickle); scanners
that trust extensions skip them. `detect` reads a head of the data; `classify_zip` names a zip by its
members (PyTorch under any archive folder, Keras v3, npz).
"""

from __future__ import annotations

import enum
import pickletools
import struct
from collections.abc import Iterable
from typing import BinaryIO

from mlsec_actions.analyzers import compression, pickle_sniff, protobuf_sniff, sevenzip

HEAD_BYTES = 64 * 1024


class Format(enum.Enum):
    """What a blob is."""

    PICKLE = "pickle"
    JOBLIB = "joblib"
    NUMPY = "numpy"
    ZIP = "zip"
    TORCH_ZIP = "pytorch-zip"
    KERAS_ZIP = "keras-v3"
    NPZ = "npz"
    TAR = "tar"
    SEVEN_ZIP = "7z"
    GZIP = "gzip"
    BZ2 = "bz2"
    XZ = "xz"
    LZMA = "lzma"
    ZLIB = "zlib"
    LZ4 = "lz4"
    ZSTD = "zstd"
    HDF5 = "hdf5"
    ONNX = "onnx"
    SAFETENSORS = "safetensors"
    GGUF = "gguf"
    SAVED_MODEL = "tf-saved-model"
    TEXT = "text"
    EMPTY = "empty"
    UNKNOWN = "unknown"

    @property
    def is_archive(self) -> bool:
        return self in (Format.ZIP, Format.TORCH_ZIP, Format.KERAS_ZIP, Format.NPZ, Format.TAR, Format.SEVEN_ZIP)

    @property
    def is_compressed(self) -> bool:
        return self.value in compression.CODECS


_HDF5 = b"\x89HDF\r\n\x1a\n"
_PICKLE_PROTOCOL_MAX = 5
# First bytes of a ModelProto or SavedModel: the key of one of their fields, in any order.
_PROTOBUF_KEYS = frozenset(bytes([k]) for k in (0x08, 0x10, 0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA))
# CPython starts a load at any opcode (no PROTO needed, protocol 2-5 opcodes included): the skim decides.
_OLD_PICKLE_STARTS = frozenset(op.code.encode("latin-1")[0] for op in pickletools.opcodes)


def detect(stream: BinaryIO, size: int | None = None) -> Format:
    """The format of the data in `stream` (read from its start; position is not restored).

    Magic bytes only propose a format; its structure decides (checksums, reserved bits, a trial decode,
    an opcode walk): raw tensor bytes that happen to start like gzip or a pickle are not one.
    """
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    fmt = detect_head(head)
    if fmt in (Format.PICKLE, Format.JOBLIB) and not pickle_sniff.plausible(stream, 0, size):
        fmt = Format.TEXT if _is_text(head) else Format.UNKNOWN
    if fmt is Format.ZIP and not _is_zip(stream, head):
        fmt = Format.UNKNOWN
    if fmt is Format.UNKNOWN and _hdf5_after_user_block(stream, head):
        return Format.HDF5
    return fmt


def _hdf5_after_user_block(stream: BinaryIO, head: bytes) -> bool:
    """HDF5 allows a user block before the superblock: it then starts at 512, 1024, 2048... (h5py looks there)."""
    stream.seek(0, 2)
    size = stream.tell()
    offset = 512
    while offset + 8 <= size:
        if offset + 8 <= len(head):
            found = head[offset:offset + 8] == _HDF5
        else:
            stream.seek(offset)
            found = stream.read(8) == _HDF5
        if found:
            return True
        offset *= 2
    return False


def detect_head(head: bytes) -> Format:
    """The format proposed by the head; pickles still need `pickle_sniff.plausible` on the whole stream."""
    if not head:
        return Format.EMPTY
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return Format.ZIP
    if head.startswith(b"\x93NUMPY"):
        return Format.NUMPY
    if head.startswith(_HDF5):
        return Format.HDF5
    if head.startswith(b"GGUF"):
        return Format.GGUF
    if sevenzip.looks_like(head):
        return Format.SEVEN_ZIP
    codec = compression.sniff(head)
    if codec is not None:
        return Format(codec)
    if _is_tar(head):
        return Format.TAR
    if _is_safetensors(head):
        return Format.SAFETENSORS
    if head[0] == 0x80 and len(head) > 1 and head[1] <= _PICKLE_PROTOCOL_MAX:
        return Format.JOBLIB if b"joblib.numpy_pickle" in head else Format.PICKLE
    if head[:1] in _PROTOBUF_KEYS and protobuf_sniff.is_saved_model(head):
        return Format.SAVED_MODEL
    if head[:1] in _PROTOBUF_KEYS and protobuf_sniff.is_onnx(head):
        return Format.ONNX
    if head[0] in _OLD_PICKLE_STARTS:
        return Format.PICKLE  # protocol 0/1 have no PROTO: the opcode walk in `detect` decides
    if _is_text(head):
        return Format.TEXT
    return Format.UNKNOWN


_ZIP_METHODS = frozenset({0, 8, 9, 12, 14, 93, 95, 98})


def _is_zip(stream: BinaryIO, head: bytes) -> bool:
    """An end of central directory record in the tail (what zipfile and miniz need), or a sane first local
    header (a truncated archive): raw tensor bytes starting `PK\\3\\4` are neither."""
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(max(0, size - 65557))
    if b"PK\x05\x06" in stream.read():
        return True
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        return False
    version, _, method = struct.unpack("<HHH", head[4:10])
    (name_len,) = struct.unpack("<H", head[26:28])
    name = head[30:30 + name_len]
    return (version <= 0x3FF and method in _ZIP_METHODS and 0 < name_len == len(name)
            and all(32 <= c < 127 or c >= 128 for c in name))


def could_be_pickle(head: bytes) -> bool:
    """The head starts the way a pickle does (to be confirmed on the whole stream)."""
    return bool(head) and ((head[0] == 0x80 and len(head) > 1 and head[1] <= _PICKLE_PROTOCOL_MAX)
                           or head[0] in _OLD_PICKLE_STARTS)


def _is_tar(head: bytes) -> bool:
    """A ustar magic, or (v7/GNU tar) a header whose checksum field matches its bytes."""
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    field = head[148:156].split(b"\x00")[0].strip()
    if not field or not all(48 <= c <= 55 for c in field) or not head[:100].rstrip(b"\x00"):
        return False
    unsigned = sum(head[:148]) + 8 * 32 + sum(head[156:512])
    return int(field, 8) == unsigned


def classify_zip(names: Iterable[str]) -> Format:
    """Name a zip by its members: PyTorch (`<any folder>/data.pkl`), Keras v3, npz, or generic."""
    members = list(names)
    if any(n.endswith("/data.pkl") and n.count("/") == 1 for n in members):
        return Format.TORCH_ZIP
    roots = set(members)
    if "config.json" in roots:
        # Keras v3 reads config.json first (metadata.json is optional): the config check decides.
        return Format.KERAS_ZIP
    if members and all(n.endswith(".npy") for n in members):
        return Format.NPZ
    return Format.ZIP


def _is_safetensors(head: bytes) -> bool:
    if len(head) < 10:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= 100 * 1024 * 1024 and head[8:9] == b"{" and head[9:10] in b' "}\n\r\t'


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        # A multi-byte character cut at the end of the head is still text.
        return e.start >= len(head) - 3
    return True
