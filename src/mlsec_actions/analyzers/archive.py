"""Tolerant, bounded archive reading: zip (our own reader, `zip_reader.py`) and tar.

Zip members are read from the local headers ourselves, so an encrypted-flag bit on an unencrypted entry,
a bad CRC or an odd name does not hide content (PyTorch's loader ignores all three; so must a scanner),
and every entry any loader's reading of the archive sees is scanned. Everything is bounded: entries,
bytes produced per member and in total, compression ratio; decoded data is spooled, not held. Names
with `..` or absolute paths, and links pointing outside, are findings; nothing is extracted or followed.
"""

from __future__ import annotations

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
from typing import BinaryIO, cast

from mlsec_actions.analyzers import archive_rules as rules
from mlsec_actions.analyzers import compression, zip_reader
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.compression import Window
from mlsec_actions.analyzers.limits import Budget, LimitExceededError, Limits
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Rule, Severity

READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, tarfile.TarError, OSError, ValueError, EOFError,
               NotImplementedError, RuntimeError, struct.error, OverflowError)
"""What reading a damaged or hostile archive can raise (zipfile raises NotImplementedError, RuntimeError...)."""
__all__ = ["Budget", "LimitExceededError", "Limits", "list_tar", "list_zip"]
_CHUNK = 1 << 20
# Zip compression methods we decode, with the codec: what miniz (stored, deflate) and zipfile read.
_ZIP_METHODS = {8: "deflate", 12: "bz2", 93: "zstd"}


@dataclass(frozen=True)
class Member:
    """One readable entry of an archive."""

    name: str
    """Its name inside the archive."""
    size: int
    """Uncompressed size (as declared for zip)."""
    open: Callable[[], BinaryIO]
    """The content: a window onto stored data, or decoded into a spool (bounded; raises `LimitExceededError`)."""
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
    """Traversal, links, bombs, malformed structure, reader differentials."""
    closers: list[Callable[[], None]] = field(default_factory=list)
    """Called once the members have been scanned (spools of decoded members)."""
    gaps: list[CoverageGap] = field(default_factory=list)
    """What could not be checked (encrypted text entries whose content cannot be read)."""


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


def list_zip(stream: BinaryIO, blob: Blob, limits: Limits, budget: Budget) -> Listing:
    """Every entry any reader sees (`zip_reader`), and each disagreement between readers as a finding."""
    out = Listing()
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    view = zip_reader.read(stream, size, limits.max_entries)
    if not view.entries:
        out.findings.append(_finding(blob, rules.MALFORMED, Severity.MEDIUM, None,
                                     f"Zip cannot be read: {'; '.join(view.problems) or 'no entries'}."))
        return out
    if view.truncated:
        out.findings.append(_finding(blob, rules.LIMIT, Severity.MEDIUM, None,
                                     f"Zip has more than {limits.max_entries} entries; only the first "
                                     f"{limits.max_entries} were scanned."))
    if view.problems and not view.found_directory:
        out.findings.append(_finding(blob, rules.MALFORMED, Severity.MEDIUM, None,
                                     f"Zip has no readable central directory ({view.problems[0]}); the entries "
                                     "its local headers describe were scanned."))
    elif view.problems:
        more = f" (and {len(view.problems) - 1} more disagreements)" if len(view.problems) > 1 else ""
        out.findings.append(_finding(blob, rules.DIFFERENTIAL, Severity.HIGH, None,
                                     f"Zip reads differently in different loaders: {view.problems[0]}{more}."))
    flagged: list[str] = []
    for entry in view.entries:
        _zip_entry(stream, size, entry, blob, limits, budget, out, flagged)
    _cap_bombs(out, blob)
    _encrypted(out, blob, flagged)
    return out


# Names of entries no model loader reads: when such an entry is really encrypted, its content is a coverage gap.
_TEXT_SUFFIXES = (".txt", ".md", ".rst", ".csv", ".tsv", ".log", ".json", ".yaml", ".yml", ".xml", ".html", ".ini",
                  ".cfg", ".toml")
_MAX_FLAG_CHECKS = 64


def _encrypted(out: Listing, blob: Blob, flagged: list[str]) -> None:
    """Judge entries carrying the encryption flag by what they could hide.

    Loaders ignore the flag and read the bytes as plain data, and so does the scan. An entry that could be a
    model or a pickle (by its name, or by what its plain bytes are) stays a finding: a scanner that skips
    flagged entries misses it, and a loader given the password reads what no scan saw. A text-named entry
    whose plain bytes are text was scanned like any other; one whose bytes are not readable (real
    ciphertext) holds nothing a loader runs, so it is recorded as a coverage gap, not a finding.
    """
    from mlsec_actions.analyzers.formats import Format, detect  # formats -> sevenzip -> archive: import late

    members = {m.name: m for m in out.members}
    risky: list[str] = []
    unreadable: list[str] = []
    for index, name in enumerate(flagged):
        if name.endswith("/"):
            continue
        member = members.get(name)
        if index >= _MAX_FLAG_CHECKS or member is None or not name.lower().endswith(_TEXT_SUFFIXES):
            risky.append(name)
            continue
        try:
            head = member.head(8192)
            fmt = detect(io.BytesIO(head), member.size)
        except (*READ_ERRORS, LimitExceededError):
            fmt = Format.UNKNOWN
        if fmt is Format.UNKNOWN or (fmt is Format.EMPTY and member.size > 0):
            unreadable.append(name)
        elif fmt is not Format.TEXT and fmt is not Format.EMPTY:
            risky.append(name)  # a text name over model bytes: what a flag-skipping scanner would miss
    if risky:
        more = f" and {len(risky) - 1} more entries" if len(risky) > 1 else ""
        out.findings.append(_finding(blob, rules.ENCRYPTED, Severity.MEDIUM, risky[0],
                                     f"Zip entry {risky[0]!r}{more} carry the encryption flag and could hold a "
                                     "model or pickle; they were read as plain data (loaders such as torch.load "
                                     "ignore the flag)."))
    if unreadable:
        where = f"{blob.path}!{blob.member}" if blob.member else blob.path
        more = f" and {len(unreadable) - 1} more text entries" if len(unreadable) > 1 else ""
        out.gaps.append(CoverageGap(GapKind.FILE_UNREADABLE,
                                    f"{where}: zip entry {unreadable[0]!r}{more} are encrypted; their content "
                                    "was not readable, so it was not checked.", blob.path))


_MAX_BOMB_FINDINGS = 20


def _cap_bombs(out: Listing, blob: Blob) -> None:
    """Thousands of bomb entries (overlapping-entry bombs) are a few findings and a count, not thousands."""
    bombs = [f for f in out.findings if f.rule is rules.BOMB]
    if len(bombs) <= _MAX_BOMB_FINDINGS:
        return
    extra = bombs[_MAX_BOMB_FINDINGS:]
    out.findings = [f for f in out.findings if f not in extra]
    out.findings.append(_finding(blob, rules.BOMB, Severity.HIGH, None,
                                 f"{len(extra)} more zip entries are bombs like the ones above; not decompressed."))


def _zip_entry(stream: BinaryIO, size: int, entry: zip_reader.Entry, blob: Blob, limits: Limits, budget: Budget,
               out: Listing, flagged: list[str]) -> None:
    name = entry.name
    if unsafe_name(name):
        out.findings.append(_finding(blob, rules.TRAVERSAL, Severity.HIGH, name,
                                     f"Zip entry {name!r} would be written outside the extraction folder."))
    if entry.flags & 0x1:
        flagged.append(name)
    header = zip_reader.local_header(stream, entry.header_offset)
    if header is None:
        return
    data_start = header[1]
    compress_size = entry.compress_size
    if entry.source == "local" and entry.flags & 0x8 and compress_size == 0:
        compress_size = size - data_start  # sizes in a trailing descriptor: the codec finds the end
    compress_size = max(0, min(compress_size, size - data_start))
    if stat.S_ISLNK(entry.external_attr >> 16):
        stream.seek(data_start)
        target = stream.read(min(compress_size, 4096)).decode("utf-8", errors="replace")
        if entry.method != zipfile.ZIP_STORED or escapes(name, target):
            out.findings.append(_finding(blob, rules.SYMLINK, Severity.HIGH, name,
                                         f"Zip entry {name!r} is a symlink to {target!r}, outside the archive."))
        return
    if name.endswith("/") and entry.file_size == 0:
        return
    if entry.file_size > 1024 * 1024 and entry.file_size > limits.max_ratio * max(compress_size, 1):
        out.findings.append(_finding(blob, rules.BOMB, Severity.HIGH, name,
                                     f"Zip entry {name!r} expands {entry.file_size // max(compress_size, 1)}x "
                                     f"({compress_size} -> {entry.file_size} bytes); not decompressed."))
        return
    if entry.method != zipfile.ZIP_STORED and entry.method not in _ZIP_METHODS:
        out.findings.append(_finding(blob, rules.UNSCANNED, Severity.MEDIUM, name,
                                     f"Zip entry {name!r} uses compression method {entry.method}, which the "
                                     "scanner does not decode; it was not scanned."))
        return
    raw = _window_opener(stream, data_start, compress_size)
    if entry.method == zipfile.ZIP_STORED:
        out.members.append(Member(name, compress_size, raw, _raw_head(raw), stored=True))
        return
    codec = _ZIP_METHODS[entry.method]
    out.members.append(Member(name, entry.file_size, _decoding_opener(raw, codec, limits, budget),
                              _decoded_head(raw, codec)))


def _window_opener(stream: BinaryIO, start: int, length: int) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        return io.BufferedReader(Window(stream, start, length))
    return opener


def _raw_head(raw: Callable[[], BinaryIO]) -> Callable[[int], bytes]:
    def head(n: int) -> bytes:
        with raw() as handle:
            return handle.read(n)
    return head


def _decoding_opener(raw: Callable[[], BinaryIO], codec: str, limits: Limits,
                     budget: Budget) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        with raw() as handle:
            decoded = compression.decode(handle, codec, limits, budget)
        if decoded.limit is not None:
            decoded.data.close()
            raise LimitExceededError(decoded.limit)
        if decoded.error is not None and decoded.size == 0:
            decoded.data.close()
            raise zipfile.BadZipFile(decoded.error)
        return _Spooled(decoded)
    return opener


def _decoded_head(raw: Callable[[], BinaryIO], codec: str) -> Callable[[int], bytes]:
    def head(n: int) -> bytes:
        with raw() as handle:
            decoded = compression.decode(handle, codec, Limits(max_member_bytes=n, max_ratio=float("inf")),
                                         Budget(n))
        with decoded.data:
            return decoded.data.read(n)
    return head


class _Spooled(io.BufferedReader):
    """A read handle onto decoded data that closes the spool with it."""

    def __init__(self, decoded: compression.Decoded) -> None:
        super().__init__(Window(decoded.data, 0, decoded.size))
        self._spool = decoded.data

    def close(self) -> None:
        super().close()
        self._spool.close()


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
        if not info.issparse():
            return cast(BinaryIO, handle)  # a window onto the tar's own bytes: nothing copied
        return io.BytesIO(_bounded(handle.read, limits.max_member_bytes, budget))

    def head(n: int) -> bytes:
        handle = archive.extractfile(info)
        return handle.read(n) if handle is not None else b""

    out.members.append(Member(name, info.size, opener, head, stored=not info.issparse()))
