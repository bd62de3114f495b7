"""Publishing a verified model to an MLflow Model Registry and/or S3, idempotently.

What is published is identified by one digest: the SHA-256 of its manifest (`sha256  path` per file, sorted),
so re-publishing the same bytes finds the version already there and changes nothing, and a release label
(`--release`) already used for other bytes is refused. Every file's digest, the verdict, the SBOM's digest
and the model card go into the version's tags and description; the files, their bundles, the attestation
and the SBOM into the artifacts of a run of the `mlsec-publish` experiment that the version points at.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsec_actions.tools.mlflow_rest import RegistryError, Server

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,62}")
TAG_DIGEST, TAG_RELEASE, TAG_VERDICT = "mlsec.digest", "mlsec.release", "mlsec.verdict"
MAX_TAG = 5000
EXPERIMENT = "mlsec-publish"
ARTIFACTS = "mlflow-artifacts:/"


@dataclass(frozen=True)
class Item:
    """One file to publish."""

    rel: str
    """Its name in the published set (POSIX, relative)."""
    path: Path
    """The file on disk."""
    sha256: str
    """Its SHA-256 (hashed now, after verification)."""


@dataclass(frozen=True)
class Extras:
    """What goes beside the files."""

    bundles: tuple[tuple[str, Path], ...]
    """(name, bundle file) for every signed artifact."""
    attestation: Path
    """The gate attestation bundle."""
    sbom: Path | None
    """The CycloneDX SBOM, when given."""
    model_card: str
    """The model card's text (the version's description)."""


def manifest_digest(items: Sequence[Item]) -> str:
    """SHA-256 of `sha256  rel` lines, sorted: one digest for the whole set."""
    lines = "".join(f"{i.sha256}  {i.rel}\n" for i in sorted(items, key=lambda i: i.rel))
    return hashlib.sha256(lines.encode("utf-8", "surrogateescape")).hexdigest()


def _tags(version: dict[str, Any]) -> dict[str, str]:
    return {str(t.get("key")): str(t.get("value")) for t in version.get("tags") or [] if isinstance(t, dict)}


def versions(server: Server, name: str) -> list[dict[str, Any]]:
    """Every version of the registered model (paged)."""
    out: list[dict[str, Any]] = []
    token = ""
    for _ in range(100):
        query = {"filter": f"name='{name}'", "max_results": "1000", **({"page_token": token} if token else {})}
        doc = server.call("GET", "/api/2.0/mlflow/model-versions/search", query=query)
        out.extend(v for v in doc.get("model_versions") or [] if isinstance(v, dict))
        token = str(doc.get("next_page_token") or "")
        if not token:
            break
    return out


def publish_mlflow(server: Server, name: str, items: Sequence[Item], extras: Extras, release: str | None,
                   alias: str | None, sbom_sha: str | None) -> tuple[str, bool]:
    """Register (or find) the version for these bytes; returns (version, created)."""
    digest = manifest_digest(items)
    try:
        server.call("POST", "/api/2.0/mlflow/registered-models/create", {"name": name})
    except RegistryError as e:
        if e.code != "RESOURCE_ALREADY_EXISTS":
            raise
    for v in versions(server, name):
        tags = _tags(v)
        if release and tags.get(TAG_RELEASE) == release and tags.get(TAG_DIGEST) != digest:
            raise RegistryError(f"release {release} of {name} is version {v.get('version')} with other files "
                                f"(digest {tags.get(TAG_DIGEST, '?')[:16]}...); refusing to publish different bytes "
                                "under it")
        if tags.get(TAG_DIGEST) == digest:
            found = str(v.get("version"))
            if alias:
                set_alias(server, name, alias, found)
            return found, False
    run_id, base = _run(server, name, digest)
    for item in items:
        server.upload(f"{base}/files/{item.rel}", item.path)
    for rel, bundle in extras.bundles:
        server.upload(f"{base}/bundles/{rel}.sigstore.json", bundle)
    server.upload(f"{base}/attestation/{extras.attestation.name}", extras.attestation)
    if extras.sbom is not None:
        server.upload(f"{base}/sbom/{extras.sbom.name}", extras.sbom)
    server.call("POST", "/api/2.0/mlflow/runs/update", {"run_id": run_id, "status": "FINISHED"})
    files = json.dumps({i.rel: i.sha256 for i in items}, sort_keys=True)
    tags = {TAG_DIGEST: digest, TAG_VERDICT: "pass", "mlsec.verified": "true", "mlsec.files": str(len(items))}
    if len(files) <= MAX_TAG:
        tags["mlsec.sha256"] = items[0].sha256 if len(items) == 1 else files
    if release:
        tags[TAG_RELEASE] = release
    if sbom_sha:
        tags["mlsec.sbom.sha256"] = sbom_sha
    doc = server.call("POST", "/api/2.0/mlflow/model-versions/create", {
        "name": name, "source": f"{ARTIFACTS}{base}/files", "run_id": run_id,
        "description": extras.model_card[:MAX_TAG],
        "tags": [{"key": k, "value": v} for k, v in tags.items()]})
    version = str((doc.get("model_version") or {}).get("version", ""))
    if not version:
        raise RegistryError("MLflow created no version")
    if alias:
        set_alias(server, name, alias, version)
    return version, True


def _run(server: Server, name: str, digest: str) -> tuple[str, str]:
    """A run of the `mlsec-publish` experiment to hold the files (MLflow registers a version from a run's
    artifacts); returns (run id, its artifact path for the artifact proxy)."""
    try:
        got = server.call("GET", "/api/2.0/mlflow/experiments/get-by-name", query={"experiment_name": EXPERIMENT})
        experiment = str(got["experiment"]["experiment_id"])
    except RegistryError as e:
        if e.code != "RESOURCE_DOES_NOT_EXIST":
            raise
        experiment = str(server.call("POST", "/api/2.0/mlflow/experiments/create", {"name": EXPERIMENT})
                         ["experiment_id"])
    run = server.call("POST", "/api/2.0/mlflow/runs/create", {
        "experiment_id": experiment, "run_name": f"{name}-{digest[:12]}",
        "tags": [{"key": TAG_DIGEST, "value": digest}]})["run"]["info"]
    uri = str(run["artifact_uri"])
    if not uri.startswith(ARTIFACTS):
        raise RegistryError(f"the server's artifact store is not served by it ({uri[:80]}); start it with "
                            "--serve-artifacts")
    return str(run["run_id"]), uri.removeprefix(ARTIFACTS)


def set_alias(server: Server, name: str, alias: str, version: str) -> None:
    server.call("POST", "/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": alias, "version": version})


def rollback(server: Server, name: str, alias: str, version: str) -> str:
    """Point `alias` at an earlier version, only one that mlsec published after verification."""
    doc = server.call("GET", "/api/2.0/mlflow/model-versions/get", query={"name": name, "version": version})
    tags = _tags(doc.get("model_version") or {})
    if tags.get("mlsec.verified") != "true" or tags.get(TAG_VERDICT) != "pass" or not tags.get(TAG_DIGEST):
        raise RegistryError(f"version {version} of {name} was not published by mlsec after a passing gate and "
                            "verify; refusing to roll back to it")
    set_alias(server, name, alias, version)
    return tags[TAG_DIGEST]
