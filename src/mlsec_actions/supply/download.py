"""Bounded downloads into a folder of ours, hashed while they are written (each byte read once).

HTTP(S): `urllib` with TLS verification, at most `MAX_REDIRECTS` redirects and only to `https://` (or, from
a loopback `http://` mirror, to the same loopback host): a redirect to `file:`, `ftp:` or plain http elsewhere
is refused. S3: `tools/s3.py`'s client (environment-only configuration). Hugging Face: `hf_fetch.py`; MLflow
models and runs: `mlflow_fetch.py`. All stop at the size cap (the
announced length is checked first, the bytes counted as they arrive) and at the deadline.

The target is created with `O_EXCL | O_NOFOLLOW` in the quarantine folder, under a neutral name the caller
chooses: nothing from the lock or the server names a file here.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mlsec_actions.oci.reference import is_loopback
from mlsec_actions.supply.lock import Source

CHUNK = 1024 * 1024
MAX_REDIRECTS = 3


class DownloadError(Exception):
    """The bytes could not be fetched (network, HTTP status, refused redirect): a tool failure."""


class LimitError(Exception):
    """The artifact is larger than allowed, or took longer than the deadline: a finding, nothing kept."""


@dataclass(frozen=True)
class Fetched:
    """A finished download."""

    path: Path
    """Where the bytes are (inside the quarantine folder)."""
    sha256: str
    """SHA-256 of what was written, hex."""
    size: int
    """Bytes written."""


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def __init__(self, origin: Source) -> None:
        self.origin = origin

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        from urllib.parse import urlsplit

        target = urlsplit(newurl)
        scheme = target.scheme.lower()
        allowed = scheme == "https" or (scheme == "http" and self.origin.scheme == "http"
                                        and target.hostname == self.origin.host and is_loopback(self.origin.host))
        if not allowed:
            raise DownloadError(f"redirect to a {scheme or 'relative'!s} URL refused (only https:// is followed)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _http_stream(source: Source, timeout: float) -> tuple[int | None, Iterator[bytes], Any]:
    # Only the HTTP(S) handlers: no file:, ftp: or data: opener exists to be redirected to.
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    _Redirects(source), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    headers = {"User-Agent": "mlsec-fetch", "Accept-Encoding": "identity"}
    request = urllib.request.Request(source.url, headers=headers)  # noqa: S310 -- lock.parse_url checked the scheme
    try:
        response = opener.open(request, timeout=max(1.0, min(timeout, 60.0)))
    except DownloadError:
        raise
    except urllib.error.HTTPError as e:
        raise DownloadError(f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"cannot download: {reason}") from None
    length = response.headers.get("Content-Length")
    announced = int(length) if length and length.isdigit() else None
    return announced, iter(lambda: response.read(CHUNK), b""), response


def _s3_stream(source: Source, timeout: float) -> tuple[int | None, Iterator[bytes], Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    from mlsec_actions.tools import s3

    try:
        got = s3.client(timeout).get_object(Bucket=source.host, Key=source.path)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "error")
        raise DownloadError(f"S3 {code}") from None
    except BotoCoreError as e:
        raise DownloadError(f"S3: {e}") from None
    body = got["Body"]
    announced = got.get("ContentLength")
    return int(announced) if isinstance(announced, int) else None, _s3_chunks(body), body


def _s3_chunks(body: Any) -> Iterator[bytes]:
    from botocore.exceptions import BotoCoreError, IncompleteReadError

    try:
        yield from iter(lambda: body.read(CHUNK), b"")
    except IncompleteReadError:  # the body ended short of its ContentLength: fetch says so, with the counts
        return
    except BotoCoreError as e:  # a read timeout or a broken stream mid-body
        raise DownloadError(f"S3 download interrupted: {e}") from None


def _open(source: Source, timeout: float) -> tuple[int | None, Iterator[bytes], Any]:
    if source.scheme == "s3":
        return _s3_stream(source, timeout)
    if source.scheme == "hf":
        from mlsec_actions.supply import hf_fetch

        return hf_fetch.stream(source, timeout, MAX_REDIRECTS)
    if source.scheme in ("models", "runs"):
        from mlsec_actions.supply import mlflow_fetch

        return mlflow_fetch.stream(source, timeout)
    return _http_stream(source, timeout)


def fetch(source: Source, target: Path, max_bytes: int, timeout: float) -> Fetched:
    """Download `source` to `target` (a new file), hashing as it goes; raise on failure or limit."""
    deadline = time.monotonic() + timeout
    announced, chunks, closer = _open(source, timeout)
    try:
        if announced is not None and announced > max_bytes:
            raise LimitError(f"announced {announced} bytes; the limit is {max_bytes}")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            got = _copy(chunks, out, target, max_bytes, deadline)
    except (OSError, ValueError) as e:  # a reset connection mid-body, a read timeout
        raise DownloadError(f"download interrupted: {e}") from None
    finally:
        closer.close()
    if announced is not None and got.size < announced:  # http.client ends a short body quietly, as if complete
        raise DownloadError(f"{source.url}: connection closed after {got.size} of {announced} bytes")
    return got


def _copy(chunks: Iterator[bytes], out: IO[bytes], target: Path, max_bytes: int, deadline: float) -> Fetched:
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise LimitError(f"more than {max_bytes} bytes; stopped")
        if time.monotonic() > deadline:
            raise LimitError("took longer than the timeout; stopped")
        digest.update(chunk)
        out.write(chunk)
    return Fetched(target, digest.hexdigest(), size)
