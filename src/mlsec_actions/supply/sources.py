"""Lock sources beyond plain URLs: Hugging Face repositories at a commit and MLflow models and runs.

    hf://OWNER/REPO@<40-hex commit>/path/in/repo          (a model repository)
    hf://datasets/OWNER/REPO@<40-hex commit>/path          (a dataset; `spaces/` for a Space)
    models:/NAME/VERSION/path/in/version                   (an MLflow registered model version, by number)
    runs:/RUN_ID/path/in/run                               (an MLflow run's artifact)

The digest in the lock decides; these only say where the bytes come from. A mutable reference is not a pin
and is refused: a branch, tag or short SHA as the Hugging Face revision, an MLflow alias (`@champion`),
stage (`Production`) or `latest`. Every path is a plain relative POSIX path (no `..`, `.`, empty component,
backslash, `%`, `?`, `#`, control character): it is quoted when the request is built, so nothing in it can
move the request elsewhere on the server.

The servers come from the environment, never the lock: `HF_ENDPOINT` (default https://huggingface.co) and
`MLFLOW_TRACKING_URI`, each `https://` (plain `http://` only to a loopback address) without credentials;
`check_environment` refuses a bad one (exit 2) before anything is downloaded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mlsec_actions.errors import InputError, UsageError

if TYPE_CHECKING:
    from mlsec_actions.supply.lock import Artifact, Source

HF_SCHEME, MODELS_SCHEME, RUNS_SCHEME = "hf", "models", "runs"
SCHEMES = (HF_SCHEME, MODELS_SCHEME, RUNS_SCHEME)
HF_ENDPOINT_ENV, HF_TOKEN_ENV = "HF_ENDPOINT", "HF_TOKEN"
HF_DEFAULT_ENDPOINT = "https://huggingface.co"
MLFLOW_URI_ENV = "MLFLOW_TRACKING_URI"
HF_REPO_TYPES = ("datasets", "spaces")
"""URL prefixes of the Hub's non-model repository types (a model repository has none)."""
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REPO_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,255}")
_VERSION = re.compile(r"[1-9][0-9]{0,9}")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,255}")


def path_problem(rel: str) -> str | None:
    """Why `rel` is not a plain relative path inside a repository or run, or None."""
    if not rel:
        return "has no file path"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in rel) or any(c in rel for c in "\\%?#"):
        return "has a control character, backslash, '%', '?' or '#' in its path"
    if rel.startswith("/"):
        return "has an absolute path"
    if any(p in ("", ".", "..") for p in rel.split("/")):
        return "has an empty, '.' or '..' path component"
    return None


def parse(url: str, scheme: str, where: str, path: Path) -> Source:
    """A checked `hf://`, `models:/` or `runs:/` source; anything else is an InputError naming `where`."""
    if scheme == HF_SCHEME:
        return _hf(url, where, path)
    return _mlflow(url, scheme, where, path)


def _hf(url: str, where: str, path: Path) -> Source:
    from mlsec_actions.supply.lock import Source

    form = "hf://[datasets/|spaces/]OWNER/REPO@<40-hex commit>/PATH"
    rest = url[len("hf://"):] if url[:5].lower() == "hf://" else ""
    head, at, tail = rest.partition("@")
    if not at:
        raise InputError(path, f"{where}: a Hugging Face URL needs a commit: {form}")
    revision, slash, rel = tail.partition("/")
    if not _COMMIT.fullmatch(revision):
        raise InputError(path, f"{where}: Hugging Face revision {revision[:60]!r} is not a full 40-hex commit SHA "
                               "(a branch, tag or short SHA can move: it is not a pin)")
    parts = head.split("/")
    prefix = parts[0] + "/" if len(parts) == 3 and parts[0] in HF_REPO_TYPES else ""
    repo = parts[1:] if prefix else parts
    if (len(repo) != 2 or not all(_REPO_PART.fullmatch(p) for p in repo)
            or any(".." in p or "--" in p or p.endswith(".git") for p in repo)):
        raise InputError(path, f"{where}: not a Hugging Face repository {head[:100]!r}: {form}")
    problem = path_problem(rel) if slash else "has no file path"
    if problem:
        raise InputError(path, f"{where}: Hugging Face URL {problem}: {form}")
    return Source(url, HF_SCHEME, prefix + "/".join(repo), rel, revision)


def _mlflow(url: str, scheme: str, where: str, path: Path) -> Source:
    from mlsec_actions.supply.lock import Source

    form = "models:/NAME/VERSION/PATH" if scheme == MODELS_SCHEME else "runs:/RUN_ID/PATH"
    body = url[len(scheme) + 1:]
    if not body.startswith("/") or body.startswith("//"):
        raise InputError(path, f"{where}: not an MLflow URI: {form}")
    if scheme == RUNS_SCHEME:
        run_id, _, rel = body[1:].partition("/")
        if not _RUN_ID.fullmatch(run_id):
            raise InputError(path, f"{where}: MLflow run id {run_id[:60]!r} is not valid: {form}")
        problem = path_problem(rel)
        if problem:
            raise InputError(path, f"{where}: MLflow URI {problem}: {form}")
        return Source(url, RUNS_SCHEME, run_id, rel)
    name, _, after = body[1:].partition("/")
    version, _, rel = after.partition("/")
    if "@" in name or not _VERSION.fullmatch(version):
        ref = name.partition("@")[2] if "@" in name else version
        raise InputError(path, f"{where}: MLflow model reference {ref[:60]!r} is an alias, stage or 'latest', not "
                               f"a version number (it can move: it is not a pin): {form}")
    if not _MODEL_NAME.fullmatch(name):
        raise InputError(path, f"{where}: MLflow model name {name[:60]!r} is not valid: {form}")
    problem = path_problem(rel)
    if problem:
        raise InputError(path, f"{where}: MLflow URI {problem} (the file inside the model version): {form}")
    return Source(url, MODELS_SCHEME, name, rel, version)


def check_server(uri: str, variable: str) -> str:
    """`uri` without a trailing slash if it is https:// (http:// only to loopback) with a host and a good port,
    without credentials, query or fragment (`tools/http_base.py`'s check); else a UsageError naming the variable."""
    from mlsec_actions.tools import http_base

    parts = urlsplit(uri)
    try:
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        raise UsageError(f"{variable}: the server URI has a bad port") from None
    if not parts.hostname:
        raise UsageError(f"{variable}: the server URI has no host")
    try:
        return http_base.check_base_uri(uri, "server", "the token variable")
    except ValueError as e:
        raise UsageError(f"{variable}: {e}") from None


def hf_endpoint() -> str:
    """The Hub to download from (`HF_ENDPOINT`, checked)."""
    return check_server(os.environ.get(HF_ENDPOINT_ENV) or HF_DEFAULT_ENDPOINT, HF_ENDPOINT_ENV)


def mlflow_uri() -> str:
    """The MLflow tracking server (`MLFLOW_TRACKING_URI`, checked; required for models:/ and runs:/)."""
    uri = os.environ.get(MLFLOW_URI_ENV, "")
    if not uri:
        raise UsageError(f"{MLFLOW_URI_ENV}: not set; models:/ and runs:/ sources need the tracking server")
    return check_server(uri, MLFLOW_URI_ENV)


def check_server_for(source: Source) -> None:
    """Exit 2 when `source` needs a server the environment names badly (or not at all)."""
    if source.scheme == HF_SCHEME:
        hf_endpoint()
    elif source.scheme in (MODELS_SCHEME, RUNS_SCHEME):
        mlflow_uri()


def check_environment(artifacts: tuple[Artifact, ...] | list[Artifact]) -> None:
    """Exit 2 before any download when a source the lock uses needs a server the environment names badly."""
    for source in {s for a in artifacts for s in (a.source, a.bundle) if s is not None}:
        check_server_for(source)
