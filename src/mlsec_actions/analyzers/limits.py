"""The shared limits on reading containers: entries, bytes, ratio, depth, and the per-file byte budget."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """How far archive and stream reading may go."""

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


class LimitExceededError(Exception):
    """A member decompressed past a limit."""
