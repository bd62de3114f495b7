"""Image references: `HOST[:PORT]/REPO[:TAG][@sha256:HEX]`, with the registry host always explicit.

There is no default registry (no `docker.io` guess): a reference names the host it is fetched from, so a typo
cannot send a signature to a registry nobody meant. Names follow the distribution spec's grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from mlsec_actions.errors import UsageError
from mlsec_actions.sanitize import log_line

_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                   r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(?::[0-9]{1,5})?")
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPO = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
"""The only digest form accepted (the distribution spec's registered sha256, lower-case hex)."""


@dataclass(frozen=True)
class Reference:
    """One parsed image reference."""

    host: str
    """Registry host with optional port (`127.0.0.1:5000`, `ghcr.io`)."""
    repository: str
    """Repository path inside the registry (`owner/app`)."""
    tag: str = ""
    """Tag, when the reference named one (empty otherwise)."""
    digest: str = ""
    """`sha256:<hex>` when the reference named one (empty otherwise)."""

    @property
    def name(self) -> str:
        """`HOST/REPO`: what cosign's simple-signing payload calls the docker-reference."""
        return f"{self.host}/{self.repository}"

    def at(self, digest: str) -> Reference:
        """The same repository pinned to `digest` (the tag is dropped: a digest reference names one manifest)."""
        return replace(self, tag="", digest=digest)

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse(text: str) -> Reference:
    """Parse a reference; a malformed one is a UsageError (exit 2) naming it."""
    shown = log_line(repr(text), 300)
    rest, _, digest = text.partition("@")
    if digest and not DIGEST.fullmatch(digest):
        raise UsageError(f"image reference {shown}: the digest must be sha256: and 64 lower-case hex digits")
    host, slash, path = rest.partition("/")
    if not slash or not _HOST.fullmatch(host) or not ("." in host or ":" in host or host == "localhost"):
        raise UsageError(f"image reference {shown}: name the registry host (HOST[:PORT]/REPO), e.g. "
                         "ghcr.io/owner/app or 127.0.0.1:5000/app")
    repo, tag = path, ""
    if ":" in path.rsplit("/", 1)[-1]:
        repo, _, tag = path.rpartition(":")
        if not _TAG.fullmatch(tag):
            raise UsageError(f"image reference {shown}: {tag!r} is not a valid tag")
    if not _REPO.fullmatch(repo) or len(repo) > 255:
        raise UsageError(f"image reference {shown}: {repo!r} is not a valid repository name (lower-case "
                         "letters, digits and . _ - separators)")
    return Reference(host, repo, tag, digest)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost (with or without a port): the only hosts spoken to over HTTP."""
    import ipaddress

    if host.startswith("["):
        bare = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        bare = host.partition(":")[0]
    else:
        bare = host
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return bare == "localhost"
