"""Tolerant, bounded archive reading: zip, tar and gzip/bz2/xz wrappers.

Members are read from the local headers ourselves, so an encrypted-flag bit on an unencrypted entry, a
bad CRC or an odd name does not hide content (PyTorch's loader ignores all three; so must a scanner).
Everything is bounded: entries, bytes produced per member and in total, compression ratio. Names with
`..` or absolute paths, and links pointing outside, are findings; nothing is ever extracted or followed.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import posixpath
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from mlsec_actions.analyzers import archive_rules as rules
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.findings import Finding, Rule, Severity

_CHUNK = 1 << 20
READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, tarfile.TarError, OSError, ValueError, EOFError,
               NotImplementedError, RuntimeError, struct.error, OverflowError)
"""What reading a damaged or hostile archive can raise (zipfile raises NotImplementedError, RuntimeError...)."""


@dataclass(frozen=True)
class Limits:
    """How far archive reading may go."""

    max_entries: int = 10_000
    """Members read per archive."""
    max_member_bytes: int = 512 * 1024 * 1024
    """Bytes a single member may decompress to before it is reported and skipped."""
    max_total_bytes: int = 4 * 1024 * 1024 * 1024
    """Bytes all members of one scanned file may decompress to."""
    max_depth: int = 4
    """Archive nesting depth."""
    max_ratio: float = 200.0
    """Uncompressed/compressed ratio above which a member (over 1 MiB) is a bomb."""


@dataclass
class Budget:
    """Bytes left to decompress for one top-level file; shared by nested archives."""

    remaining: int
    """What is left."""
    exhausted: bool = False
    """Set once a read hit the limit (reported once)."""


@dataclass(frozen=True)
class Member:
    """One readable entry of an archive."""

    name: str
    """Its name inside the archive."""
    size: int
    """Uncompressed size (as declared for zip)."""
    open: Callable[[], BinaryIO]
    """The content: a window onto stored data, or decompressed (bounded; raises `LimitExceededError`)."""
    head: Callable[[int], bytes]
    """The first n bytes, without reading the rest (format detection)."""
    stored: bool = False
    """Uncompressed in the archive: it cannot be a bomb, and opening it copies nothing."""


@dataclass
class Listing:
    """What an archive holds: readable members and findings about the archive itself."""

    members: list[Member] = field(default_factory=list)
    """Entries to scan."""
    findings: list[Finding] = field(default_factory=list)
    """Traversal, links, bombs, malformed structure."""


class LimitExceededError(Exception):
    """A member decompressed past a limit."""


def _finding(blob: Blob, rule: Rule, severity: Severity, member: str | None, message: str) -> Finding:
    return Finding(rule=rule, severity=severity, message=message, location=blob.location(member))


def unsafe_name(name: str) -> bool:
    """An entry name that would land outside the extraction folder."""
    norm = name.replace("\\", "/")
    return norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or ".." in norm.split("/")


def escapes(member: str, target: str) -> bool:
    """Whether a link at `member` pointing to `target` leaves the archive root."""
    target = target.replace("\\", "/")
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        return True
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(member), target))
    return joined == ".." or joined.startswith("../")


def _bounded(read: Callable[[int], bytes], limit: int, budget: Budget) -> bytes:
    out = io.BytesIO()
    while True:
        want = min(_CHUNK, limit - out.tell() + 1, budget.remaining + 1)
        chunk = read(want)
        if not chunk:
            return out.getvalue()
        out.write(chunk)
        budget.remaining -= len(chunk)
        if out.tell() > limit or budget.remaining < 0:
            budget.exhausted = budget.remaining < 0
            raise LimitExceededError(f"decompresses to more than {min(limit, out.tell()) // (1024 * 1024)} MiB")


def _zip_reader(stream: BinaryIO, info: zipfile.ZipInfo, archive: zipfile.ZipFile) -> Callable[[int], bytes]:
    """A chunk reader over one member's decompressed bytes, ignoring flag bits and CRCs."""
    start = _data_start(stream, info)
    left = [info.compress_size]
    state = {"pos": start}

    def raw(n: int) -> bytes:
        stream.seek(state["pos"])
        data = stream.read(min(n, left[0]))
        state["pos"] += len(data)
        left[0] -= len(data)
        return data

    if info.compress_type == zipfile.ZIP_STORED:
        return raw
    if info.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-15)
        pending = [b""]

        def inflate(n: int) -> bytes:
            out = b""
            while len(out) < n:
                data = pending[0] or raw(_CHUNK)
                if not data:
                    return out + inflater.flush()
                out += inflater.decompress(data, n - len(out))
                pending[0] = inflater.unconsumed_tail
                if inflater.eof:
                    break
            return out

        return inflate
    # Rare methods (bzip2, LZMA...): zipfile's own reader, with the encryption bit cleared.
    info.flag_bits &= ~0x1
    handle = archive.open(info)
    return handle.read


def list_zip(stream: BinaryIO, blob: Blob, limits: Limits, budget: Budget) -> Listing:
    out = Listing()
    try:
        archive = zipfile.ZipFile(stream)
    except READ_ERRORS as e:
        out.findings.append(_finding(blob, rules.MALFORMED, Severity.MEDIUM, None, f"Zip cannot be read: {e}."))
        return out
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        out.findings.append(_finding(blob, rules.LIMIT, Severity.MEDIUM, None,
                                     f"Zip has {len(infos)} entries; only the first {limits.max_entries} "
                                     "were scanned."))
    flagged: list[str] = []
    for info in infos[:limits.max_entries]:
        name = info.filename
        if unsafe_name(name):
            out.findings.append(_finding(blob, rules.TRAVERSAL, Severity.HIGH, name,
                                         f"Zip entry {name!r} would be written outside the extraction folder."))
        if info.flag_bits & 0x1:
            flagged.append(name)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            target = _zip_link_target(stream, info, archive)
            if target is None or escapes(name, target):
                out.findings.append(_finding(blob, rules.SYMLINK, Severity.HIGH, name,
                                             f"Zip entry {name!r} is a symlink to {target!r}, outside the archive."))
            continue
        if info.is_dir():
            continue
        if info.file_size > 1024 * 1024 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            out.findings.append(_finding(blob, rules.BOMB, Severity.HIGH, name,
                                         f"Zip entry {name!r} expands {info.file_size // max(info.compress_size, 1)}"
                                         f"x ({info.compress_size} -> {info.file_size} bytes); not decompressed."))
            continue
        out.members.append(Member(name, info.file_size, _zip_opener(stream, info, archive, limits, budget),
                                  _zip_head(stream, info, archive), info.compress_type == zipfile.ZIP_STORED))
    if flagged:
        more = f" and {len(flagged) - 1} more entries" if len(flagged) > 1 else ""
        out.findings.append(_finding(blob, rules.ENCRYPTED, Severity.MEDIUM, flagged[0],
                                     f"Zip entry {flagged[0]!r}{more} carry the encryption flag; they were read "
                                     "as plain data (loaders such as torch.load ignore the flag)."))
    return out


def _zip_opener(stream: BinaryIO, info: zipfile.ZipInfo, archive: zipfile.ZipFile, limits: Limits,
                budget: Budget) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        if info.compress_type == zipfile.ZIP_STORED:
            return io.BufferedReader(_Window(stream, _data_start(stream, info), info.compress_size))
        return io.BytesIO(_bounded(_zip_reader(stream, info, archive), limits.max_member_bytes, budget))
    return opener


def _zip_head(stream: BinaryIO, info: zipfile.ZipInfo, archive: zipfile.ZipFile) -> Callable[[int], bytes]:
    def head(n: int) -> bytes:
        read = _zip_reader(stream, info, archive)
        out = b""
        while len(out) < n:
            chunk = read(n - len(out))
            if not chunk:
                break
            out += chunk
        return out
    return head


def _data_start(stream: BinaryIO, info: zipfile.ZipInfo) -> int:
    stream.seek(info.header_offset)
    header = stream.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"no local header at byte {info.header_offset}")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return int(info.header_offset) + 30 + int(name_len) + int(extra_len)


class _Window(io.RawIOBase):
    """A read-only, seekable view of `length` bytes of `parent` from `start`; copies nothing."""

    def __init__(self, parent: BinaryIO, start: int, length: int) -> None:
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


def _zip_link_target(stream: BinaryIO, info: zipfile.ZipInfo, archive: zipfile.ZipFile) -> str | None:
    try:
        return _zip_reader(stream, info, archive)(4096).decode("utf-8", errors="replace")
    except READ_ERRORS:
        return None


def list_tar(stream: BinaryIO, blob: Blob, limits: Limits, budget: Budget) -> Listing:
    out = Listing()
    try:
        archive = tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115 - lives as long as the readers
        for count, info in enumerate(archive, start=1):
            if count > limits.max_entries:
                out.findings.append(_finding(blob, rules.LIMIT, Severity.MEDIUM, None,
                                             f"Tar has more than {limits.max_entries} entries; the rest were "
                                             "not scanned."))
                break
            _tar_entry(archive, info, blob, limits, budget, out)
    except READ_ERRORS as e:
        out.findings.append(_finding(blob, rules.MALFORMED, Severity.MEDIUM, None, f"Tar cannot be read: {e}."))
    return out


def _tar_entry(archive: tarfile.TarFile, info: tarfile.TarInfo, blob: Blob, limits: Limits, budget: Budget,
               out: Listing) -> None:
    name = info.name
    if unsafe_name(name):
        out.findings.append(_finding(blob, rules.TRAVERSAL, Severity.HIGH, name,
                                     f"Tar entry {name!r} would be written outside the extraction folder."))
    if info.issym() or info.islnk():
        base = name if info.issym() else ""
        if escapes(base, info.linkname):
            out.findings.append(_finding(blob, rules.SYMLINK, Severity.HIGH, name,
                                         f"Tar entry {name!r} links to {info.linkname!r}, outside the archive."))
        return
    if not info.isfile():
        return

    def opener() -> BinaryIO:
        handle = archive.extractfile(info)
        if handle is None:
            return io.BytesIO(b"")
        return io.BytesIO(_bounded(handle.read, limits.max_member_bytes, budget))

    def head(n: int) -> bytes:
        handle = archive.extractfile(info)
        return handle.read(n) if handle is not None else b""

    out.members.append(Member(name, info.size, opener, head))


def decompress(stream: BinaryIO, kind: str, limits: Limits, budget: Budget) -> bytes:
    """gzip/bz2/xz content, bounded; raises LimitExceededError or the codec's error."""
    stream.seek(0)
    handle: gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile
    if kind == "gzip":
        handle = gzip.GzipFile(fileobj=stream, mode="rb")
    elif kind == "bz2":
        handle = bz2.BZ2File(stream)
    else:
        handle = lzma.LZMAFile(stream)  # noqa: SIM115 - closed by the `with` below
    with handle:
        return _bounded(handle.read, limits.max_member_bytes, budget)
