"""`mlsec.lock`: every external artifact fetch may bring in, pinned by SHA-256.

The lock is hostile input like any file of the repository: it is read bounded (`inputs.load_json`), checked
against a JSON Schema (`data/mlsec-lock.schema.json`), then every name and URL is checked again here, so a
bad lock is one line naming the file, the entry and the problem (exit 2) before anything is downloaded.

Names are where the artifact lands, relative to the destination folder: plain relative POSIX paths, no `..`,
no empty or dot component, no backslash, no control character, no leading dash, each component at most
255 bytes; two entries may not name the same file or one another's folder. URLs are `https://` or `s3://`;
plain `http://` only to a loopback address (a local mirror; the digest still protects the bytes); or a
Hugging Face repository at a commit (`hf://`) or an MLflow model version or run (`models:/`, `runs:/`),
checked by `supply/sources.py`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from mlsec_actions import inputs
from mlsec_actions.errors import InputError
from mlsec_actions.oci.reference import is_loopback
from mlsec_actions.supply import sources

LOCK_NAME = "mlsec.lock"
MAX_LOCK_BYTES = 1024 * 1024
MAX_URL = 2048
_SHA256 = re.compile(r"[0-9a-f]{64}")
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
SCHEMES = ("https", "s3", "http", *sources.SCHEMES)


@dataclass(frozen=True)
class Source:
    """Where bytes come from."""

    url: str
    """The URL as written in the lock."""
    scheme: str
    """`https`, `http` (loopback only), `s3`, `hf`, `models` or `runs`."""
    host: str
    """Host name (https/http), bucket (s3), repository with its type prefix (hf), model name or run id."""
    path: str
    """URL path with query (https/http), object key (s3), or the file's path in the repository, version or run."""
    revision: str = ""
    """The Hugging Face commit SHA or the MLflow model version; empty for the others."""


@dataclass(frozen=True)
class Artifact:
    """One pinned artifact."""

    name: str
    """Where it lands, relative to the destination folder (checked: no traversal)."""
    source: Source
    """Where it is downloaded from."""
    sha256: str
    """Expected SHA-256, lower-case hex."""
    size: int | None
    """Expected size in bytes, when pinned (checked before and while downloading)."""
    bundle: Source | None
    """Where its signature bundle is, when it has one."""


@dataclass(frozen=True)
class Lock:
    """A parsed, checked `mlsec.lock`."""

    path: Path
    """The file it was read from."""
    artifacts: tuple[Artifact, ...]
    """The pins, in file order."""
    require_signatures: bool
    """Every artifact must have a bundle that verifies."""


@cache
def schema() -> dict[str, Any]:
    text = resources.files("mlsec_actions").joinpath("data/mlsec-lock.schema.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def parse_url(url: str, where: str, path: Path) -> Source:
    """A checked source URL; anything else is an InputError naming `where` in `path`."""
    if len(url) > MAX_URL or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise InputError(path, f"{where}: URL is over {MAX_URL} characters or holds a space or control character")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InputError(path, f"{where}: URL scheme {scheme or '(none)'!r} is not allowed (https://, s3://, hf://, "
                               "models:/, runs:/)")
    if scheme in sources.SCHEMES:
        return sources.parse(url, scheme, where, path)
    if parts.username is not None or parts.password is not None:
        raise InputError(path, f"{where}: credentials in a URL are not allowed (use the environment)")
    if scheme == "s3":
        key = parts.path.lstrip("/")
        if not _S3_BUCKET.fullmatch(parts.netloc) or not key or parts.query or parts.fragment:
            raise InputError(path, f"{where}: not an s3://BUCKET/KEY URL")
        return Source(url, scheme, parts.netloc, key)
    host = parts.hostname or ""
    if not host:
        raise InputError(path, f"{where}: URL has no host")
    try:
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        raise InputError(path, f"{where}: URL has a bad port") from None
    if scheme == "http" and not is_loopback(host):
        raise InputError(path, f"{where}: plain http:// is allowed only to a loopback address; use https://")
    if parts.fragment:
        raise InputError(path, f"{where}: URL has a fragment")
    return Source(url, scheme, host, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))


def check_name(name: str, where: str, path: Path) -> str:
    """`name` if it is a safe relative destination path, else an InputError."""
    problem = _name_problem(name)
    if problem:
        raise InputError(path, f"{where}: name {name[:80]!r} {problem}")
    return name


def _name_problem(name: str) -> str | None:
    if not name or len(name) > 1024:
        return "is empty or over 1024 characters"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name) or "\\" in name:
        return "holds a control character or a backslash"
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        return "is absolute"
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "has an empty, '.' or '..' component"
    if any(p.startswith("-") or len(p.encode("utf-8", "surrogatepass")) > 255 for p in parts):
        return "has a component starting with '-' or over 255 bytes"
    if parts[-1].endswith(".sigstore.json"):
        return "ends in .sigstore.json (reserved for signature bundles)"
    return None


def _entry(raw: dict[str, Any], index: int, path: Path) -> Artifact:
    where = f"artifacts[{index}]"
    name = check_name(str(raw["name"]), where, path)
    sha = str(raw["sha256"])
    if not _SHA256.fullmatch(sha):
        raise InputError(path, f"{where}: sha256 must be 64 lower-case hex digits")
    bundle = raw.get("bundle")
    return Artifact(name=name, source=parse_url(str(raw["url"]), f"{where}.url", path), sha256=sha,
                    size=raw.get("size"), bundle=None if bundle is None else parse_url(str(bundle), f"{where}.bundle",
                                                                                        path))


def _overlaps(artifacts: list[Artifact], path: Path) -> None:
    seen: set[str] = set()
    folders: set[str] = set()
    for i, a in enumerate(artifacts):
        key = unicodedata.normalize("NFC", a.name).casefold()  # also distinct on case-insensitive disks
        parents = {"/".join(key.split("/")[:n]) for n in range(1, key.count("/") + 1)}
        if key in seen or key in folders or parents & seen:
            raise InputError(path, f"artifacts[{i}]: name {a.name[:80]!r} clashes with another entry")
        seen.add(key)
        folders |= parents


def load(path: Path) -> Lock:
    """Read and check a lock file (exit 2 with one line on any problem)."""
    import jsonschema  # slow to import; only fetch needs it

    doc = inputs.load_json(path, "lock file", MAX_LOCK_BYTES, max_depth=8)
    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.absolute_path).lstrip(".")
        message = first.message if len(first.message) <= 200 else f"fails the schema's {first.validator!r} rule"
        raise InputError(path, f"{at or 'lock'}: {message}")
    artifacts = [_entry(raw, i, path) for i, raw in enumerate(doc["artifacts"])]
    _overlaps(artifacts, path)
    return Lock(path, tuple(artifacts), bool(doc.get("require_signatures", False)))
