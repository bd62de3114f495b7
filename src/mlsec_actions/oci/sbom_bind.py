"""Whether a CycloneDX SBOM is of this image: what it says it describes, against the image being signed or verified.

A signature over an SBOM says only that someone attested those bytes about a digest; an SBOM of another image
(the last build's, a base image's) would be attested just as well. So sign-image refuses, and verify-image
rejects, an SBOM whose `metadata.component` names another image: trivy's (what the build stage writes) names the
image config's digest (`aquasecurity:trivy:ImageID`) and, for a pulled image, the manifest digests it was pulled
by (`aquasecurity:trivy:RepoDigest`, `HOST/REPO@sha256:...`). An image index has no one config to compare with:
an SBOM that names an image ID cannot be checked against it and is refused (fail closed). An SBOM that names
neither is taken as it is (other generators); it is still bound to the digest by the signed statement's subject.
"""

from __future__ import annotations

from typing import Any

from mlsec_actions.oci.client import Client
from mlsec_actions.oci.reference import Reference

IMAGE_ID = "aquasecurity:trivy:ImageID"
REPO_DIGEST = "aquasecurity:trivy:RepoDigest"


def config_digest(client: Client, pinned: Reference) -> str | None:
    """The image config's digest of the manifest at `pinned` (its bytes checked by the client); None for an index."""
    manifest = client.get_manifest(pinned.repository, pinned.digest)
    config = manifest.json().get("config") if manifest is not None else None
    digest = config.get("digest") if isinstance(config, dict) else None
    return digest if isinstance(digest, str) else None


def _claims(sbom: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(image IDs, repo digests) that the SBOM's described component names."""
    meta = sbom.get("metadata")
    component = meta.get("component") if isinstance(meta, dict) else None
    props = component.get("properties") if isinstance(component, dict) else None
    ids: list[str] = []
    repo_digests: list[str] = []
    for p in props if isinstance(props, list) else []:
        if isinstance(p, dict) and isinstance(p.get("value"), str):
            if p.get("name") == IMAGE_ID:
                ids.append(p["value"])
            elif p.get("name") == REPO_DIGEST:
                repo_digests.append(p["value"])
    return ids, repo_digests


def mismatch(sbom: Any, manifest_digest: str, config: str | None) -> str | None:
    """Why `sbom` is not an SBOM of the image `manifest_digest` (config digest `config`); None when it may be."""
    if not isinstance(sbom, dict) or sbom.get("bomFormat") != "CycloneDX":
        return "not a CycloneDX SBOM (needs \"bomFormat\": \"CycloneDX\")"
    ids, repo_digests = _claims(sbom)
    if ids and config is None:
        return f"the SBOM describes image {ids[0]}, and {manifest_digest} is an index with no one config to match"
    wrong = [i for i in ids if i != config]
    if wrong:
        return f"the SBOM describes image {wrong[0]}, not this one (config {config} of {manifest_digest})"
    pinned = [d.rpartition("@")[2] for d in repo_digests]
    if pinned and manifest_digest not in pinned:
        return f"the SBOM describes an image pulled as {repo_digests[0]}, not {manifest_digest}"
    return None
