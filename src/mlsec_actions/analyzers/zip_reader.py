"""Our own zip reader: every entry any loader could see, and every disagreement between the views.

Python's `zipfile` and PyTorch's miniz read one archive differently. `zipfile` finds the central
directory at `end-record position - its size` (it tolerates data prepended to the archive and shifts
every offset by that amount), refuses the whole archive for a `version needed` above 6.3 or a name
flagged UTF-8 that is not, and keeps the last of two entries with one name. miniz takes the declared
offsets as they are. A streaming reader follows the local headers from byte 0 and sees entries no
central directory lists. This module reads all three views (bounded: entries, bytes scanned), returns
the union of entries, and reports each disagreement: an archive that reads differently in two loaders
was built to.
"""

from __future__ import annotations

import itertools
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

_EOCD = b"PK\x05\x06"
_EOCD64 = b"PK\x06\x06"
_LOCATOR64 = b"PK\x06\x07"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_TAIL = 65535 + 22
_MAX_VERSION = 63  # zipfile.MAX_EXTRACT_VERSION: above it, zipfile refuses the archive
_UTF8 = 0x800
_DESCRIPTOR = 0x8


@dataclass(frozen=True)
class Entry:
    """One entry as a directory (central or local) describes it."""

    name: str
    """Its name (UTF-8 when flagged and valid, else cp437 as zipfile decodes it)."""
    raw_name: bytes
    """The name's bytes."""
    header_offset: int
    """Where its local header starts (in this view's reading of offsets)."""
    method: int
    """Compression method (0 stored, 8 deflate...)."""
    flags: int
    """General-purpose flag bits."""
    compress_size: int
    """Compressed size."""
    file_size: int
    """Uncompressed size."""
    version_needed: int
    """`version needed to extract`."""
    external_attr: int = 0
    """External attributes (the unix mode in the high 16 bits); central directory only."""
    source: str = "central"
    """Which view listed it: `central` (declared offsets, miniz), `shifted` (zipfile's), `local` (headers)."""


@dataclass
class ZipView:
    """Everything read from one archive."""

    entries: list[Entry] = field(default_factory=list)
    """The union of entries, one per local header offset, central-directory entries first."""
    problems: list[str] = field(default_factory=list)
    """Disagreements between the views and structural faults, one sentence each."""
    truncated: bool = False
    """More entries than the limit: the rest were not read."""
    found_directory: bool = False
    """Some central directory could be read."""


def read(stream: BinaryIO, size: int, max_entries: int) -> ZipView:
    """Read the central directories (declared and shifted) and the local headers of the zip in `stream`."""
    view = ZipView()
    directories = _directories(stream, size, view)
    listed: dict[int, Entry] = {}
    names: dict[str, set[int]] = {}
    readable = 0
    for source, start, length, shift in directories:
        entries = list(_central(stream, start, length, shift, source, max_entries, view))
        present = [e for e in entries if local_header(stream, e.header_offset) is not None]
        if len(present) < len(entries):
            view.problems.append(f"{len(entries) - len(present)} entries of the central directory at byte {start} "
                                 "point to no local header")
        if present or (length == 0 and source == "central"):
            readable += 1
        for entry in present:
            names.setdefault(entry.name, set()).add(entry.header_offset)
            listed.setdefault(entry.header_offset, entry)
    view.found_directory = readable > 0
    if readable > 1:
        view.problems.append("the central directory at the declared offset (miniz, torch.load) and the one where "
                             "the end record implies (Python's zipfile) are two different directories")
    for name, offsets in names.items():
        if len(offsets) > 1:
            view.problems.append(f"entry name {name!r} is listed {len(offsets)} times with different data "
                                 "(loaders pick different ones)")
    for entry in _locals(stream, size, max_entries, view):
        known = listed.get(entry.header_offset)
        if known is None:
            view.problems.append(f"local header at byte {entry.header_offset} ({entry.name!r}) is in no central "
                                 "directory (a streaming reader sees it; zipfile and miniz do not)")
            listed[entry.header_offset] = entry
        else:
            _compare(known, entry, view)
    _overlaps(stream, listed, view)
    view.entries = sorted(listed.values(), key=lambda e: (e.source == "local", e.header_offset))
    if len(view.entries) > max_entries:
        view.entries, view.truncated = view.entries[:max_entries], True
    _zipfile_opinion(stream, view)
    return view


def _directories(stream: BinaryIO, size: int, view: ZipView) -> list[tuple[str, int, int, int]]:
    """(source, start, length, offset shift) of each central directory the end record points to."""
    tail_start = max(0, size - _TAIL)
    stream.seek(tail_start)
    tail = stream.read(size - tail_start)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        view.problems.append("no end of central directory record")
        return []
    eocd_pos = tail_start + at
    _, _, _, _, count, cd_size, cd_offset, _ = struct.unpack("<4s4H2IH", tail[at:at + 22])
    end_of_cd = eocd_pos
    if at >= 20 and tail[at - 20:at - 16] == _LOCATOR64:
        (eocd64,) = struct.unpack("<Q", tail[at - 12:at - 4])
        record = b""
        if eocd64 + 56 <= size:  # an offset past the end (up to 2**64, more than seek takes) points to nothing
            stream.seek(eocd64)
            record = stream.read(56)
        if len(record) == 56 and record[:4] == _EOCD64:
            cd_size, cd_offset = struct.unpack("<QQ", record[40:56])
            end_of_cd = eocd64
        else:
            view.problems.append("zip64 locator points to no zip64 end record")
    out = []
    if cd_offset + cd_size <= size:
        out.append(("central", cd_offset, cd_size, 0))
    shift = end_of_cd - cd_size - cd_offset
    if shift != 0 and end_of_cd - cd_size >= 0:
        out.append(("shifted", end_of_cd - cd_size, cd_size, shift))
    if not out:
        view.problems.append(f"central directory at byte {cd_offset} runs past the end of the file")
    del count
    return out


def _central(stream: BinaryIO, start: int, length: int, shift: int, source: str, max_entries: int,
             view: ZipView) -> Iterator[Entry]:
    stream.seek(start)
    data = stream.read(min(length, max_entries * 1024 + 65536))
    pos = 0
    for _ in range(max_entries + 1):
        if pos + 46 > len(data) or data[pos:pos + 4] != _CENTRAL:
            if pos < len(data) and pos < length:
                view.problems.append(f"central directory entry at byte {start + pos} is damaged; reading stopped")
            return
        (version_needed, flags, method, compress_size, file_size, n_len, x_len, c_len, external,
         offset) = _cd_fields(data, pos)
        raw = data[pos + 46:pos + 46 + n_len]
        extra = data[pos + 46 + n_len:pos + 46 + n_len + x_len]
        compress_size, file_size, offset = _zip64(extra, compress_size, file_size, offset)
        yield Entry(_decode(raw, flags), raw, offset + shift, method, flags, compress_size, file_size,
                    version_needed, external, source)
        pos += 46 + n_len + x_len + c_len


def _cd_fields(data: bytes, pos: int) -> tuple[int, ...]:
    (_, _, version_needed, flags, method, _, _, _, compress_size, file_size, n_len, x_len, c_len, _, _,
     external, offset) = struct.unpack("<4s6H3L5H2L", data[pos:pos + 46])
    return version_needed, flags, method, compress_size, file_size, n_len, x_len, c_len, external, offset


def _zip64(extra: bytes, compress_size: int, file_size: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack("<HH", extra[pos:pos + 4])
        if tag == 0x0001:
            values = extra[pos + 4:pos + 4 + length]
            fields = [file_size, compress_size, offset]
            at = 0
            for i, value in enumerate(fields):
                if value == 0xFFFFFFFF and at + 8 <= len(values):
                    (fields[i],) = struct.unpack("<Q", values[at:at + 8])
                    at += 8
            return fields[1], fields[0], fields[2]
        pos += 4 + length
    return compress_size, file_size, offset


def _decode(raw: bytes, flags: int) -> str:
    if flags & _UTF8:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return raw.decode("cp437")


def local_header(stream: BinaryIO, offset: int) -> tuple[bytes, int, int, int, int, int] | None:
    """(name bytes, data start, method, flags, compressed size, uncompressed size) of the header at `offset`."""
    if offset < 0:
        return None  # a shifted offset before the start of the file
    stream.seek(offset)
    header = stream.read(30)
    if len(header) < 30 or header[:4] != _LOCAL:
        return None
    (_, _, flags, method, _, _, _, compress_size, file_size, n_len, x_len) = struct.unpack("<4s5H3L2H", header)
    name = stream.read(n_len)
    extra = stream.read(x_len)
    compress_size, file_size, _ = _zip64(extra, compress_size, file_size, 0)
    return name, offset + 30 + n_len + x_len, method, flags, compress_size, file_size


def _locals(stream: BinaryIO, size: int, max_entries: int, view: ZipView) -> list[Entry]:
    """Follow the local headers from byte 0, as a streaming reader does."""
    out: list[Entry] = []
    offset = 0
    while len(out) <= max_entries and offset + 30 <= size:
        header = local_header(stream, offset)
        if header is None:
            break
        raw, data_start, method, flags, compress_size, file_size = header
        stream.seek(offset + 4)
        (version_needed,) = struct.unpack("<H", stream.read(2))
        out.append(Entry(_decode(raw, flags), raw, offset, method, flags, compress_size, file_size, version_needed,
                         source="local"))
        if flags & _DESCRIPTOR and compress_size == 0:
            break  # the size is after the data: only the central directory can say where the next header is
        offset = data_start + compress_size
        stream.seek(offset)
        if stream.read(4) == b"PK\x07\x08":
            offset += 16
    return out


def _overlaps(stream: BinaryIO, listed: dict[int, Entry], view: ZipView) -> None:
    """Entries whose data ranges overlap: one kernel inflated many times (a non-recursive zip bomb)."""
    ranges = []
    for entry in listed.values():
        header = local_header(stream, entry.header_offset)
        if header is not None:
            ranges.append((entry.header_offset, header[1] + entry.compress_size, entry.name))
    ranges.sort()
    overlapping = sum(1 for (_, end, _), (start, _, _) in itertools.pairwise(ranges) if start < end)
    if overlapping:
        view.problems.append(f"{overlapping} entries start inside another entry's data (overlapping entries: one "
                             "compressed kernel read many times, a non-recursive zip bomb)")


def _compare(central: Entry, local: Entry, view: ZipView) -> None:
    if central.raw_name != local.raw_name:
        view.problems.append(f"entry {central.name!r} has the name {local.name!r} in its local header")
    if central.method != local.method:
        view.problems.append(f"entry {central.name!r} declares compression {central.method} centrally and "
                             f"{local.method} locally")
    sizes_in_descriptor = local.flags & _DESCRIPTOR and local.compress_size == 0
    if not sizes_in_descriptor and (central.compress_size, central.file_size) != (local.compress_size,
                                                                               local.file_size):
        view.problems.append(f"entry {central.name!r} declares sizes {central.compress_size}/{central.file_size} "
                             f"centrally and {local.compress_size}/{local.file_size} locally")


def _zipfile_opinion(stream: BinaryIO, view: ZipView) -> None:
    """What Python's zipfile makes of the archive: refusing what miniz reads is itself a differential."""
    for entry in view.entries:
        if entry.source != "local" and entry.version_needed > _MAX_VERSION:
            view.problems.append(f"entry {entry.name!r} needs version {entry.version_needed / 10:.1f}: Python's "
                                 "zipfile refuses the whole archive, torch.load (miniz) reads it")
            return
        if entry.flags & _UTF8 and entry.source != "local":
            try:
                entry.raw_name.decode("utf-8")
            except UnicodeDecodeError:
                view.problems.append(f"entry {entry.name!r} is flagged UTF-8 but is not: Python's zipfile refuses "
                                     "the whole archive, torch.load (miniz) reads it")
                return
    if view.found_directory and not view.truncated:  # (past the entry limit, zipfile's parse is the cost)
        try:
            stream.seek(0)
            zipfile.ZipFile(stream).close()
        except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError, EOFError) as e:
            view.problems.append(f"Python's zipfile refuses the archive ({type(e).__name__}: {e})")
