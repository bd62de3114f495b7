"""Hugging Face Hub downloads with plain HTTP GETs of the Hub's resolve URL (no `huggingface_hub` client: it
reads `~/.cache/huggingface`, token files and more of the environment than a pin needs).

    {HF_ENDPOINT}/[datasets/|spaces/]OWNER/REPO/resolve/{commit}/{quoted path}

The revision is always the full commit SHA the lock pins. The Hub answers a small file itself and redirects
a large (LFS/Xet) one to a CDN host, or a renamed repository to its new path on the same host. Redirects are
followed by hand, at most `download.MAX_REDIRECTS`, each only to `https://` (plain `http://` only from a
loopback endpoint to a loopback host: the tests' stand-in). `HF_TOKEN` goes only to the endpoint's own origin
(scheme, host and port): a hop to any other origin gets no `Authorization`, and no message carries the token.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from mlsec_actions.oci.reference import is_loopback
from mlsec_actions.supply import sources
from mlsec_actions.supply.lock import Source
from mlsec_actions.tools.base import safe

_REDIRECTS = (301, 302, 303, 307, 308)
_DEFAULT_PORTS = {"https": 443, "http": 80}


def resolve_url(endpoint: str, source: Source) -> str:
    """The Hub's download URL of `source` (checked by `sources`) under `endpoint`."""
    return f"{endpoint}/{source.host}/resolve/{source.revision}/{quote(source.path, safe='/')}"


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of `url`: the unit the token is bound to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def redirect_allowed(endpoint: str, target: str) -> bool:
    """A hop to `target` is followed: https://, or plain http:// between loopback hosts only."""
    scheme, host, _ = origin(target)
    if scheme == "https":
        return bool(host)
    start_scheme, start_host, _ = origin(endpoint)
    return scheme == "http" and start_scheme == "http" and is_loopback(start_host) and is_loopback(host)


def headers_for(endpoint: str, url: str) -> dict[str, str]:
    """Request headers for `url`: the token only when `url` is on the endpoint's own origin."""
    headers = {"User-Agent": "mlsec-fetch", "Accept-Encoding": "identity"}
    token = os.environ.get(sources.HF_TOKEN_ENV)
    if token and origin(url) == origin(endpoint):
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _scrub(text: str) -> str:
    token = os.environ.get(sources.HF_TOKEN_ENV)
    return safe(text.replace(token, "***") if token else text)


def _opener() -> urllib.request.OpenerDirector:
    # No redirect handler (redirects are ours to check) and no file:, ftp: or data: handler.
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def _chunks(response: Any, size: int) -> Iterator[bytes]:
    yield from iter(lambda: response.read(size), b"")


def stream(source: Source, timeout: float, max_redirects: int) -> tuple[int | None, Iterator[bytes], Any]:
    """Open the download of `source`: (announced length, chunks, closable response)."""
    from mlsec_actions.supply.download import CHUNK, DownloadError

    endpoint = sources.hf_endpoint()
    url = resolve_url(endpoint, source)
    opener = _opener()
    for _ in range(max_redirects + 1):
        request = urllib.request.Request(url, headers=headers_for(endpoint, url))  # noqa: S310 -- checked scheme
        try:
            response = opener.open(request, timeout=max(1.0, min(timeout, 60.0)))
        except urllib.error.HTTPError as e:
            location = e.headers.get("Location") if e.code in _REDIRECTS else None
            error_code = e.headers.get("X-Error-Code", "")
            e.close()
            if location is None:
                detail = f" ({error_code[:60]})" if error_code else ""
                raise DownloadError(_scrub(f"Hugging Face answered HTTP {e.code} {e.reason}{detail}")) from None
            target = urljoin(url, location)
            if not redirect_allowed(endpoint, target):
                scheme = urlsplit(target).scheme or "relative"
                raise DownloadError(_scrub(f"Hugging Face redirect to a {scheme[:20]} URL refused (only https:// "
                                           "is followed)")) from None
            url = target
            continue
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise DownloadError(_scrub(f"cannot download from Hugging Face: {getattr(e, 'reason', e)}")) from None
        length = response.headers.get("Content-Length")
        announced = int(length) if length and length.isdigit() else None
        return announced, _chunks(response, CHUNK), response
    raise DownloadError(f"Hugging Face: more than {max_redirects} redirects")
