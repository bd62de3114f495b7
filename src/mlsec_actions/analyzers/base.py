"""The interface between the model-scan stage and its analyzers.

The stage detects each file's format by content (`formats.py`), opens archives with limits, and hands
every blob to the analyzer registered for its format. An analyzer never executes or loads what it
reads: it parses bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from mlsec_actions.findings import Finding, Location, Rule

DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/"
MODEL_SCAN_DOCS = DOCS + "model-scan.md"
FORMATS_DOCS = DOCS + "model-scan-formats.md"


def model_rule(base_tags: tuple[str, ...], page: str, rid: str, name: str, short: str, full: str, fix: str,
               tags: tuple[str, ...] = (), precision: str = "high") -> Rule:
    """A model-scan rule whose help link is its section in `page` (the anchor is the id without '/').

    Analyzers bind `base_tags` and `page` once with `functools.partial`.
    """
    return Rule(id=rid, name=name, short_description=short, full_description=full, help_text=fix,
                help_uri=f"{page}#{rid.replace('/', '')}", tags=(*base_tags, *tags), precision=precision)


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
