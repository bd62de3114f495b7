"""dast's own passive check: directory listings on the target and the pages it links to (same origin only).

wapiti has no module for directory listings. This reads the target page and up to `MAX_PAGES` links on it that
stay on the target's origin, with plain GETs (`web_targets.send`: no redirect followed), and flags a page
whose body is a server-generated index (Apache/nginx "Index of /", Python's "Directory listing for", IIS).
"""

from __future__ import annotations

import re
import urllib.parse

from mlsec_actions import web_targets
from mlsec_actions.findings import Finding, Location, Rule, Severity
from mlsec_actions.web_targets import Target

DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/dast.md"
MAX_PAGES = 40
LISTING = re.compile(r"<title>\s*(Index of /|Directory listing for /)|<h1>\s*(Index of /|Directory listing for /)|"
                     r"\[To Parent Directory\]", re.IGNORECASE)
_HREF = re.compile(r"""href\s*=\s*["']([^"'#<>\s]{1,500})""", re.IGNORECASE)

DIRECTORY_LISTING = Rule(
    id="dast/directory-listing", name="DirectoryListing",
    short_description="The web server lists a folder's files",
    full_description="A URL of the service answers with a server-generated index of a folder, showing every "
                     "file in it (backups, configuration, source) to anyone.",
    help_text="Turn directory indexes off (`autoindex off`, `Options -Indexes`) and serve an explicit page or 403.",
    help_uri=f"{DOCS}#dast-directory-listing", tags=("dast", "web", "misconfiguration"))
RULES = (DIRECTORY_LISTING,)


def _links(target: Target, body: str) -> list[str]:
    """Same-origin paths linked from `body`, in order, deduplicated."""
    out: list[str] = []
    for href in _HREF.findall(body):
        joined = urllib.parse.urljoin(f"{target.origin}{target.path}", href)
        parts = urllib.parse.urlsplit(joined)
        if parts.scheme != target.scheme or (parts.hostname or "").lower() != target.host:
            continue
        if (parts.port or target.port) != target.port:
            continue
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if path not in out:
            out.append(path)
    return out


def directory_listings(target: Target, timeout: float) -> tuple[list[Finding], int]:
    """(findings, pages read) for one target."""
    first = target.with_query(target.query)
    pages, findings, read = [first], [], 0
    while pages and read < MAX_PAGES:
        path = pages.pop(0)
        got = web_targets.send(target, "GET", path, timeout=timeout)
        read += 1
        if got.status is None:
            continue
        if got.status == 200 and LISTING.search(got.body):
            findings.append(Finding(DIRECTORY_LISTING, f"{target.origin}{path} answers with a directory listing.",
                                    Severity.MEDIUM, Location(f"{target.host}:{target.port}/{path.lstrip('/')}"),
                                    properties=(("url", f"{target.origin}{path}"),)))
        if path == first:
            pages += [p for p in _links(target, got.body) if p != first][:MAX_PAGES]
    return findings, read
