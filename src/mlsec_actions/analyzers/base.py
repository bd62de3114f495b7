"""The interface between the model-scan stage and its analyzers.

The stage detects each file's format by content (`formats.py`), opens archives with limits, and hands
every blob to the analyzer registered for its format. An analyzer never executes or loads what it
reads: it parses bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from mlsec_actions.findings import Finding, Location


@dataclass(frozen=True)
class Blob:
    """One thing to analyze: a file on disk or a member of an archive."""

    path: str
    """The on-disk file, relative to the scanned root (POSIX); the SARIF physical location."""
    member: str | None
    """Where inside the file, for archive members: `archive/data.pkl`, nested as `outer.zip!inner/x.pkl`."""
    size: int
    """Size in bytes of this blob's content."""
    open: Callable[[], BinaryIO]
    """Opens the content for reading (a seekable stream); the caller closes it."""

    def location(self, detail: str | None = None, kind: str = "member") -> Location:
        """A finding location: the file, plus the member and `detail` (offset, global, layer) as logical location."""
        parts = [p for p in (self.member, detail) if p]
        return Location(self.path, logical="::".join(parts) or None, logical_kind=kind)


Analyzer = Callable[[Blob], list[Finding]]
"""An analyzer: reads the blob, returns findings. Malformed input is a finding (never an exception)."""
