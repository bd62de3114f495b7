"""The distribution API client: manifests and blobs by GET/HEAD/PUT, monolithic uploads, bounded and digest-checked.

Every registry answer is hostile: a body is read up to a limit (a larger one is refused, not truncated), every
manifest and blob read is hashed and compared with the digest it was asked for (or, for a tag, with the
`Docker-Content-Digest` the registry claims), redirects are followed at most `MAX_REDIRECTS` times, never from
HTTPS to HTTP and never carrying our credentials, and any failure is one `RegistryError` line.

HTTPS always, except loopback hosts (127.0.0.0/8, ::1, localhost), which are spoken to over plain HTTP: the
test registry and a local `registry:2`. Credentials come from the environment: `MLSEC_REGISTRY_TOKEN` (a bearer
token), else `MLSEC_REGISTRY_USERNAME` + `MLSEC_REGISTRY_PASSWORD` (basic, or exchanged for a bearer token when
the registry's `WWW-Authenticate` challenge asks for one, as ghcr.io does).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from http.client import HTTPMessage
from typing import Any

from mlsec_actions import gha
from mlsec_actions.errors import ExitCode, MlsecError
from mlsec_actions.oci.reference import DIGEST, is_loopback
from mlsec_actions.sanitize import log_line

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
"""Distribution's own manifest limit; larger answers are refused."""
MAX_REDIRECTS = 5
"""Blob GETs may be redirected to storage; a longer chain is a loop."""
ENV_TOKEN = "MLSEC_REGISTRY_TOKEN"  # noqa: S105 - a variable name
ENV_USERNAME = "MLSEC_REGISTRY_USERNAME"
ENV_PASSWORD = "MLSEC_REGISTRY_PASSWORD"  # noqa: S105 - a variable name
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(MlsecError):
    """The registry refused, failed, or answered something we cannot trust (exit 1, one line)."""

    exit_code = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(log_line(message, 600))


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry served it, its digest checked."""

    data: bytes
    """The exact bytes (what the digest is over)."""
    media_type: str
    """Its `mediaType` field (or the Content-Type when the field is absent)."""
    digest: str
    """`sha256:<hex>` of `data`."""

    def json(self) -> dict[str, Any]:
        """The parsed manifest (a RegistryError when it is not a JSON object)."""
        try:
            doc = json.loads(self.data)
        except (ValueError, RecursionError):
            raise RegistryError(f"manifest {self.digest} is not JSON") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return doc


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS
    max_repeats = 1

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: HTTPMessage, newurl: str) -> urllib.request.Request | None:
        target = urllib.parse.urlsplit(newurl)
        if target.scheme != "https" and not (target.scheme == "http" and is_loopback(target.netloc)):
            raise RegistryError(f"registry redirected to {newurl!r}: only HTTPS (or HTTP on loopback) is followed")
        if urllib.parse.urlsplit(req.full_url).scheme == "https" and target.scheme != "https":
            raise RegistryError(f"registry redirected from HTTPS to {newurl!r}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Client:
    """One registry host; `timeout` bounds every request."""

    def __init__(self, host: str, *, timeout: float = 30.0) -> None:
        self.host = host
        self.base = f"{'http' if is_loopback(host) else 'https'}://{host}"
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_Redirects())
        self._tokens: dict[str, str] = {}
        token = os.environ.get(ENV_TOKEN, "")
        user, password = os.environ.get(ENV_USERNAME, ""), os.environ.get(ENV_PASSWORD, "")
        for secret in (token, password):
            if secret:
                gha.mask(secret)
        self._basic = base64.b64encode(f"{user}:{password}".encode()).decode() if user and password else ""
        self._static = token

    # -- requests -----------------------------------------------------------------------------------------------
    def _request(self, method: str, url: str, *, body: bytes | None = None, headers: Mapping[str, str] | None = None,
                 limit: int = MAX_MANIFEST_BYTES, ok: tuple[int, ...] = (200,), missing_ok: bool = False,
                 scope: str = "") -> tuple[int, bytes, Message]:
        for attempt in (0, 1):
            req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))  # noqa: S310 - http(s) only
            auth = self._auth_header(scope)
            if auth:  # never forwarded on a redirect (storage backends get a pre-signed URL instead)
                req.add_unredirected_header("Authorization", auth)
            try:
                with self._opener.open(req, timeout=self.timeout) as resp:  # HEAD: Content-Length is the blob's
                    if resp.status not in ok:  # another 2xx (urllib raises for the rest) is not what was asked
                        raise RegistryError(f"{method} {url}: HTTP {resp.status}, expected "
                                            f"{' or '.join(map(str, ok))}")
                    return resp.status, b"" if method == "HEAD" else _read(resp, limit, url), resp.headers
            except urllib.error.HTTPError as e:
                with e:
                    if e.code == 401 and attempt == 0 and self._challenge(e.headers, scope):
                        continue
                    if e.code == 404 and missing_ok:
                        return 404, b"", e.headers
                    raise RegistryError(f"{method} {url}: HTTP {e.code} {_error_text(e, url)}".rstrip()) from None
            except RegistryError:
                raise
            except (OSError, ValueError) as e:
                raise RegistryError(f"{method} {url}: {type(e).__name__}: {e}") from None
        raise RegistryError(f"{method} {url}: HTTP 401 (credentials refused)")

    def _auth_header(self, scope: str) -> str:
        if scope in self._tokens:
            return f"Bearer {self._tokens[scope]}"
        if self._static:
            return f"Bearer {self._static}"
        return f"Basic {self._basic}" if self._basic else ""

    def _challenge(self, headers: Message, scope: str) -> bool:
        """Exchange credentials for a bearer token when the registry asks for one; True when it got one."""
        challenge = headers.get("WWW-Authenticate", "")
        if not challenge.lower().startswith("bearer ") or scope in self._tokens:
            return False
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.get("realm", "")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.netloc)):
            raise RegistryError(f"registry token realm {realm!r} is not HTTPS")
        query = urllib.parse.urlencode({k: v for k, v in (("service", params.get("service", "")),
                                                          ("scope", scope or params.get("scope", ""))) if v})
        req = urllib.request.Request(f"{realm}?{query}" if query else realm)  # noqa: S310 - scheme checked
        if self._basic:
            req.add_unredirected_header("Authorization", f"Basic {self._basic}")
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                doc = json.loads(_read(resp, 64 * 1024, realm))
        except (OSError, ValueError) as e:
            raise RegistryError(f"registry token from {realm}: {type(e).__name__}: {e}") from None
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"registry token from {realm}: no token in the answer")
        gha.mask(token)
        self._tokens[scope] = token
        return True

    def _url(self, repo: str, kind: str, ref: str) -> str:
        return f"{self.base}/v2/{repo}/{kind}/{urllib.parse.quote(ref, safe=':')}"

    # -- manifests ----------------------------------------------------------------------------------------------
    def get_manifest(self, repo: str, ref: str, *, missing_ok: bool = False) -> Manifest | None:
        """The manifest at a tag or digest, its bytes checked against the digest (None when absent and allowed)."""
        url = self._url(repo, "manifests", ref)
        status, data, headers = self._request("GET", url, headers={"Accept": ", ".join(MANIFEST_TYPES)},
                                              missing_ok=missing_ok, scope=f"repository:{repo}:pull")
        if status == 404:
            return None
        actual = sha256(data)
        claimed = headers.get("Docker-Content-Digest", "")
        expected = ref if DIGEST.fullmatch(ref) else claimed
        if expected and actual != expected:
            raise RegistryError(f"GET {url}: the registry served a manifest whose digest is {actual}, not {expected}")
        manifest = Manifest(data, "", actual)
        media = manifest.json().get("mediaType")
        return Manifest(data, media if isinstance(media, str) else headers.get("Content-Type", ""), actual)

    def head_manifest(self, repo: str, ref: str) -> str | None:
        """The digest the registry says a tag or digest points to (None when absent); a hint, never trusted alone."""
        status, _, headers = self._request("HEAD", self._url(repo, "manifests", ref), limit=0, missing_ok=True,
                                           headers={"Accept": ", ".join(MANIFEST_TYPES)},
                                           scope=f"repository:{repo}:pull")
        return None if status == 404 else headers.get("Docker-Content-Digest") or None

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> Message:
        """Store a manifest under a tag or its digest; returns the answer's headers (`OCI-Subject` and so on)."""
        url = self._url(repo, "manifests", ref)
        _, _, headers = self._request("PUT", url, body=data, headers={"Content-Type": media_type}, ok=(201,),
                                      limit=64 * 1024, scope=f"repository:{repo}:pull,push")
        returned = headers.get("Docker-Content-Digest", "")
        if returned and returned != sha256(data):
            raise RegistryError(f"PUT {url}: the registry stored digest {returned}, not {sha256(data)}")
        return headers

    # -- blobs --------------------------------------------------------------------------------------------------
    def get_blob(self, repo: str, digest: str, *, limit: int) -> bytes:
        """A blob, refused when larger than `limit` or when its bytes do not hash to `digest`."""
        if not DIGEST.fullmatch(digest):
            raise RegistryError(f"blob digest {digest!r} is not a sha256 digest")
        url = self._url(repo, "blobs", digest)
        _, data, _ = self._request("GET", url, limit=limit, scope=f"repository:{repo}:pull")
        if sha256(data) != digest:
            raise RegistryError(f"GET {url}: the registry served a blob whose digest is {sha256(data)}, not {digest}")
        return data

    def has_blob(self, repo: str, digest: str) -> bool:
        status, _, _ = self._request("HEAD", self._url(repo, "blobs", digest), limit=0, missing_ok=True,
                                     scope=f"repository:{repo}:pull")
        return status != 404

    def put_blob(self, repo: str, data: bytes) -> str:
        """Upload a blob monolithically (POST then one PUT with the digest) unless it is there; its digest."""
        digest = sha256(data)
        if self.has_blob(repo, digest):
            return digest
        scope = f"repository:{repo}:pull,push"
        _, _, headers = self._request("POST", f"{self.base}/v2/{repo}/blobs/uploads/", body=b"", ok=(202,),
                                      limit=64 * 1024, scope=scope)
        location = headers.get("Location", "")
        if not location:
            raise RegistryError(f"POST {self.base}/v2/{repo}/blobs/uploads/: no upload Location")
        url = urllib.parse.urljoin(self.base + "/", location)
        if urllib.parse.urlsplit(url).netloc != urllib.parse.urlsplit(self.base).netloc:
            raise RegistryError(f"upload Location {location!r} is on another host")
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
        self._request("PUT", url, body=data, headers={"Content-Type": "application/octet-stream"}, ok=(201,),
                      limit=64 * 1024, scope=scope)
        return digest

    def referrers(self, repo: str, digest: str) -> dict[str, Any] | None:
        """The OCI 1.1 referrers index of `digest`, or None when the registry has no referrers API (404)."""
        url = self._url(repo, "referrers", digest)
        status, data, _ = self._request("GET", url, headers={"Accept": OCI_INDEX}, missing_ok=True,
                                        scope=f"repository:{repo}:pull")
        if status == 404:
            return None
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            raise RegistryError(f"GET {url}: the referrers answer is not JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
            raise RegistryError(f"GET {url}: the referrers answer is not an image index")
        return doc


def _read(resp: Any, limit: int, url: str) -> bytes:
    length = resp.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise RegistryError(f"{url}: the registry announced {length} bytes, more than the {limit} allowed")
    data: bytes = resp.read(limit + 1) if limit else b""
    if len(data) > limit:
        raise RegistryError(f"{url}: the registry sent more than the {limit} bytes allowed")
    return data


def _error_text(e: urllib.error.HTTPError, url: str) -> str:
    try:
        doc = json.loads(_read(e, 16 * 1024, url) or b"{}")
    except (RegistryError, ValueError, OSError, RecursionError):
        return ""
    errors = doc.get("errors") if isinstance(doc, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    return f"{first.get('code', '')} {first.get('message', '')}".strip()
