"""Zip archives assembled record by record, so tests can make the readers disagree. Nothing is loaded.

`Record` is one entry; `local`, `central` and `end` write the three record kinds with every field the
tests tamper with exposed (names that differ, version needed, flags, offsets).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    """One zip entry's fields."""

    name: bytes
    """Entry name bytes."""
    data: bytes
    """Stored (uncompressed) content."""
    flags: int = 0
    """General-purpose flags (0x800: UTF-8 name)."""
    version_needed: int = 20
    """`version needed to extract` (zipfile refuses above 63)."""


def local(record: Record, name: bytes | None = None) -> bytes:
    """A local header (optionally with a different name) and the stored data."""
    raw = record.name if name is None else name
    crc = zlib.crc32(record.data)
    return struct.pack("<4s5H3L2H", b"PK\x03\x04", record.version_needed, record.flags, 0, 0, 0x5021, crc,
                       len(record.data), len(record.data), len(raw), 0) + raw + record.data


def central(record: Record, offset: int) -> bytes:
    """A central directory entry pointing at a local header at `offset`."""
    crc = zlib.crc32(record.data)
    return struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 0x0314, record.version_needed, record.flags, 0, 0, 0x5021,
                       crc, len(record.data), len(record.data), len(record.name), 0, 0, 0, 0, 0o100644 << 16,
                       offset) + record.name


def end(count: int, size: int, offset: int) -> bytes:
    """The end of central directory record."""
    return struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, size, offset, 0)


def archive(records: list[Record]) -> bytes:
    """A plain, consistent archive of stored entries."""
    body: list[bytes] = []
    directory: list[bytes] = []
    at = 0
    for record in records:
        directory.append(central(record, at))
        body.append(local(record))
        at += len(body[-1])
    cd = b"".join(directory)
    return b"".join(body) + cd + end(min(len(records), 0xFFFF), len(cd), at)
