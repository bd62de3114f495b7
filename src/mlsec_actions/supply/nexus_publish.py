"""Upload a verified set to a Nexus raw repository, then read every object back and check its SHA-256.

The upload is Sonatype's documented form for raw (and Maven 2, YUM) hosted repositories: an HTTP PUT of the bytes
to `/repository/REPO/PATH`; a GET of the same path serves them. `--nexus URL` is the repository,
`https://HOST[/PREFIX]/repository/REPO` (`http://` only to loopback; a user or password in it is refused:
credentials come from `NEXUS_USERNAME` / `NEXUS_PASSWORD` as basic auth, and no message carries them).

Objects go to `URL/RELEASE-PATH/NAME`, the release path being `[--name/]--release`, or the set's digest without
`--release`; the names are S3's layout (`publish_plan.objects`: files, bundles, gate attestation, SBOM) plus
`mlsec-digests.json`, every object's SHA-256 and the set's digest. Every object is fetched before the first PUT:
one there with other bytes refuses the whole publish (a release path is never re-used for other bytes) and
nothing is uploaded; one with the same bytes is left alone, so re-publishing is a no-op. A redirect is an error,
never followed.
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from mlsec_actions.errors import InputError, UsageError
from mlsec_actions.tools import http_base
from mlsec_actions.tools.base import safe

if TYPE_CHECKING:
    from mlsec_actions.supply.publish_plan import Object, Plan

USER_ENV, PASSWORD_ENV = "NEXUS_USERNAME", "NEXUS_PASSWORD"
MANIFEST = "mlsec-digests.json"
REPOSITORY_PATH = re.compile(r"(?:/[A-Za-z0-9._~-]+)*/repository/[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
CHUNK = 1024 * 1024


def secrets() -> tuple[str, ...]:
    """The credential values in the environment (what no message may contain)."""
    return tuple(v for k in (PASSWORD_ENV, USER_ENV) if (v := os.environ.get(k)))


def scrub(text: str) -> str:
    """`text` without a Nexus credential, redacted, on one line."""
    for value in secrets():
        text = text.replace(value, "***")
    return safe(text)


def _fail(message: str) -> NoReturn:
    from mlsec_actions.stages.publish import PublishError

    raise PublishError(scrub(message))


def check_url(url: str) -> str:
    """The repository URL (no trailing slash), or UsageError: https:// (http:// to loopback), no credentials,
    a path ending in `/repository/REPO`; and NEXUS_USERNAME / NEXUS_PASSWORD both set or neither."""
    try:
        base = http_base.check_base_uri(url, "Nexus", f"{USER_ENV} and {PASSWORD_ENV}")
    except ValueError as e:
        raise UsageError(f"--nexus: {e}") from None
    path = urllib.parse.urlsplit(base).path
    if not REPOSITORY_PATH.fullmatch(path) or any(s in (".", "..") for s in path.split("/")):
        raise UsageError(f"--nexus: {base[:100]!r} is not a raw repository URL (https://HOST/repository/REPO)")
    if bool(os.environ.get(USER_ENV)) != bool(os.environ.get(PASSWORD_ENV)):
        raise UsageError(f"--nexus: set both {USER_ENV} and {PASSWORD_ENV}, or neither")
    return base


def release_path(plan: Plan, name: str | None, release: str | None) -> str:
    """`[NAME/]RELEASE`, or the set's digest without a release label (both checked by the stage)."""
    return f"{name}/{release}" if name and release else (release or plan.digest)


@dataclass(frozen=True)
class Repository:
    """One raw repository."""

    base: str
    """Its URL, checked by `check_url`."""
    timeout: float
    """Seconds per request."""

    def url(self, name: str) -> str:
        """Each segment percent-encoded whole: a name cannot add a path segment, a query or a fragment."""
        return f"{self.base}/" + "/".join(urllib.parse.quote(s, safe="") for s in name.split("/"))

    def _open(self, request: urllib.request.Request, name: str) -> Any:
        user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
        if user and password:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            return http_base.opener().open(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            if request.get_method() == "GET" and e.code == 404:
                return None
            why = {301: "a redirect, not followed", 302: "a redirect, not followed", 303: "a redirect, not followed",
                   307: "a redirect, not followed", 308: "a redirect, not followed",
                   401: f"check {USER_ENV} / {PASSWORD_ENV}", 403: "the user may not write this repository"}
            extra = f" ({why[e.code]})" if e.code in why else ""
            _fail(f"Nexus answered HTTP {e.code}{extra} to {request.get_method()} {self.url(name)}")
        except (urllib.error.URLError, OSError, ValueError) as e:
            _fail(f"cannot reach Nexus at {self.base}: {getattr(e, 'reason', e)}")

    def sha256(self, name: str, size: int) -> str | None:
        """The SHA-256 of the object (of its first `size + 1` bytes at most: more is other bytes anyway), or
        None when it is not there."""
        response = self._open(urllib.request.Request(self.url(name), method="GET"), name)  # noqa: S310
        if response is None:
            return None
        digest, left = hashlib.sha256(), size + 1
        with response:
            while left > 0 and (chunk := response.read(min(CHUNK, left))):
                digest.update(chunk)
                left -= len(chunk)
        return digest.hexdigest()

    def put(self, name: str, data: Path | bytes) -> None:
        """PUT the bytes (a file streamed); any answer but 2xx fails the publish."""
        size = data.stat().st_size if isinstance(data, Path) else len(data)
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        if isinstance(data, bytes):
            request = urllib.request.Request(self.url(name), data=data, method="PUT", headers=headers)  # noqa: S310
            self._open(request, name).close()
            return
        with data.open("rb") as fh:
            request = urllib.request.Request(self.url(name), data=fh, method="PUT", headers=headers)  # noqa: S310
            self._open(request, name).close()


def _objects(objects: Sequence[Object], plan: Plan) -> list[tuple[str, Path | bytes, str, int]]:
    for o in objects:
        if "%" in o.name:  # a server or a proxy in front of it may decode it once more
            raise InputError(o.path, f"{o.name[:100]!r} is not published to Nexus (a '%' in the name)")
        if o.name == MANIFEST:
            raise InputError(o.path, f"{MANIFEST!r} is the name of the digests manifest")
    manifest = json.dumps({"digest": plan.digest, "objects": {o.name: o.sha256 for o in objects}}, indent=1,
                          sort_keys=True).encode() + b"\n"
    todo: list[tuple[str, Path | bytes, str, int]] = [(o.name, o.path, o.sha256, o.path.stat().st_size)
                                                      for o in objects]
    todo.append((MANIFEST, manifest, hashlib.sha256(manifest).hexdigest(), len(manifest)))  # last: a set is whole
    return todo


def publish(url: str, plan: Plan, objects: Sequence[Object], path: str, timeout: float) -> dict[str, list[str]]:
    """Upload what is not there yet under `url/path`, then read each upload back; returns the names uploaded
    and unchanged, and the release URL."""
    todo = _objects(objects, plan)
    repo = Repository(f"{check_url(url)}/{path}", timeout)
    there = {name: repo.sha256(name, size) for name, _, _, size in todo}
    for name, _, sha, _ in todo:  # every object checked before the first PUT: a refusal uploads nothing
        if there[name] is not None and there[name] != sha:
            _fail(f"{repo.url(name)} exists with other bytes; refusing to publish different bytes under "
                  f"release path {path}")
    uploaded = [name for name, _, sha, _ in todo if there[name] != sha]
    for name, data, _, _ in todo:
        if name in uploaded:
            repo.put(name, data)
    for name, _, sha, size in todo:
        if name in uploaded and repo.sha256(name, size) != sha:
            _fail(f"{repo.url(name)} reads back with other bytes than were uploaded")
    return {"uploaded": uploaded, "unchanged": [n for n, _, _, _ in todo if n not in uploaded],
            "prefix": [repo.base]}
