"""7z archives (PyTorch checkpoints are shipped 7z-packed): listed and decoded with py7zr, bounded.

Nothing is extracted to a folder: py7zr writes each member into a spool of ours that refuses bytes past
the member limit and the file's budget, and moves to a temporary file once the members held in memory
pass a small total. Declared sizes are checked first: a member or a total beyond the limits, or a ratio
beyond the bomb ratio (solid archives decode everything before a member to reach it), is reported and
nothing is decoded. Names that escape are findings and are left out (py7zr refuses the whole archive
for them otherwise).
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, cast

from mlsec_actions.analyzers import archive_rules as rules
from mlsec_actions.analyzers.archive import READ_ERRORS, Listing, Member, escapes, unsafe_name
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.compression import Window
from mlsec_actions.analyzers.limits import Budget, LimitExceededError, Limits
from mlsec_actions.findings import Finding, Severity

MAGIC = b"7z\xbc\xaf\x27\x1c"
_MEMORY_TOTAL = 32 * 1024 * 1024
_SPOOL = 4 * 1024 * 1024


def looks_like(head: bytes) -> bool:
    """The 7z signature, a major version 0 and a start header whose CRC matches."""
    import binascii  # only for files that start with the 7z magic

    return (len(head) >= 32 and head[:6] == MAGIC and head[6] == 0
            and int.from_bytes(head[8:12], "little") == binascii.crc32(head[12:32]))


class MissingLibraryError(Exception):
    """py7zr is not installed (the `models` extra): a coverage gap."""


def _finding(blob: Blob, rule: Any, severity: Severity, member: str | None, message: str) -> Finding:
    return Finding(rule=rule, severity=severity, message=message, location=blob.location(member))


def list_7z(stream: BinaryIO, blob: Blob, limits: Limits, budget: Budget) -> Listing:
    try:
        import py7zr  # optional (models extra), imported for 7z files only
    except ImportError as e:
        raise MissingLibraryError("py7zr is not installed") from e
    out = Listing()
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    try:
        archive = py7zr.SevenZipFile(stream, "r")
    except (*READ_ERRORS, py7zr.exceptions.ArchiveError) as e:
        out.findings.append(_finding(blob, rules.MALFORMED, Severity.MEDIUM, None, f"7z cannot be read: {e}."))
        return out
    with archive:
        if archive.needs_password():
            out.findings.append(_finding(blob, rules.UNSCANNED, Severity.MEDIUM, None,
                                         "7z archive is encrypted; its members were not scanned."))
            return out
        infos = archive.list()
        wanted: list[str] = []
        for info in infos[:limits.max_entries]:
            name = info.filename
            if unsafe_name(name):
                out.findings.append(_finding(blob, rules.TRAVERSAL, Severity.HIGH, name,
                                             f"7z entry {name!r} would be written outside the extraction folder."))
                continue
            if info.is_directory:
                continue
            wanted.append(name)
        if len(infos) > limits.max_entries:
            out.findings.append(_finding(blob, rules.LIMIT, Severity.MEDIUM, None,
                                         f"7z has {len(infos)} entries; only the first {limits.max_entries} were "
                                         "scanned."))
        declared = sum(int(i.uncompressed or 0) for i in infos)
        biggest = max((int(i.uncompressed or 0) for i in infos), default=0)
        if biggest > limits.max_member_bytes or declared > budget.remaining or (
                declared > 1024 * 1024 and declared > limits.max_ratio * max(size, 1)):
            out.findings.append(_finding(blob, rules.BOMB, Severity.HIGH, None,
                                         f"7z declares {declared} bytes of content in {size} bytes (largest member "
                                         f"{biggest}); beyond the limits, not decompressed."))
            return out
        factory = _Factory(limits, budget)
        try:
            archive.extract(targets=wanted, factory=cast(Any, factory))  # duck-typed WriterFactory
        except LimitExceededError as e:
            out.findings.append(_finding(blob, rules.BOMB, Severity.HIGH, None, f"7z content {e}; not scanned."))
            factory.close()
            return out
        except (*READ_ERRORS, py7zr.exceptions.ArchiveError) as e:
            out.findings.append(_finding(blob, rules.MALFORMED, Severity.MEDIUM, None,
                                         f"7z content cannot be decoded: {e}."))
        links = {i.filename for i in infos if i.is_symlink}
    for name, spool in factory.products.items():
        if name in links:
            spool.data.seek(0)
            target = spool.data.read(4096).decode("utf-8", errors="replace")
            if escapes(name, target):
                out.findings.append(_finding(blob, rules.SYMLINK, Severity.HIGH, name,
                                             f"7z entry {name!r} is a symlink to {target!r}, outside the archive."))
            continue
        out.members.append(Member(name, spool.size, spool.opener, spool.head))
    out.closers.append(factory.close)
    return out


@dataclass
class _Spool:
    """One member's decoded bytes, bounded."""

    limits: Limits
    """The member limit."""
    budget: Budget
    """The file's byte budget."""
    data: IO[bytes] = field(default_factory=lambda: tempfile.SpooledTemporaryFile(max_size=_SPOOL))  # noqa: SIM115
    """Where they go."""
    size: int = 0
    """How many so far."""

    def write(self, s: bytes | bytearray) -> int:
        if self.size + len(s) > self.limits.max_member_bytes or len(s) > self.budget.remaining:
            raise LimitExceededError(f"decodes to more than {self.limits.max_member_bytes // (1 << 20)} MiB")
        self.budget.remaining -= len(s)
        self.size += len(s)
        return self.data.write(s)

    def read(self, size: int | None = None) -> bytes:
        return self.data.read(-1 if size is None else size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.data.seek(offset, whence)

    def flush(self) -> None:
        self.data.flush()

    def close(self) -> None:
        """py7zr calls this when the member is complete: it stays open for scanning."""

    def opener(self) -> BinaryIO:
        return io.BufferedReader(Window(self.data, 0, self.size))

    def head(self, n: int) -> bytes:
        self.data.seek(0)
        return self.data.read(n)


@dataclass
class _Factory:
    """py7zr's writer factory: one bounded spool per member; in-memory spools capped in total."""

    limits: Limits
    """The member limit."""
    budget: Budget
    """The file's byte budget."""
    products: dict[str, _Spool] = field(default_factory=dict)
    """Name -> spool."""

    def create(self, filename: str) -> _Spool:
        in_memory = sum(p.size for p in self.products.values() if not getattr(p.data, "_rolled", True))
        spool = _Spool(self.limits, self.budget)
        if in_memory > _MEMORY_TOTAL:
            spool.data.rollover()  # type: ignore[attr-defined]
        self.products[filename] = spool
        return spool

    def close(self) -> None:
        for spool in self.products.values():
            spool.data.close()
