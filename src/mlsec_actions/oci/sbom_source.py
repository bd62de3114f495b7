"""Where sign-image's SBOM comes from: a CycloneDX JSON file the caller names, or trivy run on the image being signed.

A named file is hostile input (in CI it is a file of the repository): only a regular file, at most 32 MiB, nested at
most 128 levels, parsed as JSON, `bomFormat: CycloneDX` with a `specVersion` that has a JSON schema (1.2 to 1.7),
and valid against that schema (cyclonedx-python-lib's copy). Any problem is one line naming the file (exit 2).

Without a file, `generate` asks trivy for the SBOM of the pinned registry reference (`trivy image --image-src remote
--format cyclonedx HOST/REPO@sha256:...`; plain HTTP, `--insecure`, for a loopback registry only), with the registry
credentials sign-image itself uses handed over as trivy's own variables. trivy failing, timing out or writing no
CycloneDX is a tool error (exit 1): the image is then not signed rather than signed without its SBOM. Either way the
SBOM is then loaded the same way and checked to be of the image (`sbom_bind`) before anything is signed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlsec_actions.errors import InputError, ToolError
from mlsec_actions.oci.reference import Reference, is_loopback

MAX_SBOM_BYTES = 32 * 1024 * 1024
JSON_SPEC_VERSIONS = ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")
"""The CycloneDX versions with a JSON schema (1.0 and 1.1 are XML only)."""
_MESSAGE_CHARS = 200


def _schema_problem(doc: dict[str, Any], version: str) -> str | None:
    """Why `doc` is not valid against the CycloneDX JSON schema of `version` (one line), or None."""
    import json

    try:
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonValidator
    except ImportError:  # fail closed: an SBOM we cannot check is not attested
        raise ToolError("sign-image: checking an SBOM needs cyclonedx-python-lib (the `sbom` extra)") from None
    error = JsonValidator(SchemaVersion.from_version(version)).validate_str(json.dumps(doc))
    if error is None:
        return None
    data = getattr(error, "data", None)
    message = str(getattr(data, "message", None) or error).splitlines()[0]
    where = "/".join(str(p) for p in getattr(data, "absolute_path", ()) or ())
    if len(message) > _MESSAGE_CHARS:
        message = message[:_MESSAGE_CHARS] + "..."
    return f"{message} (at /{where})" if where else message


def load(path: Path, what: str = "SBOM") -> dict[str, Any]:
    """The CycloneDX JSON document at `path`, checked as hostile input; `InputError` naming the file otherwise."""
    from mlsec_actions.inputs import load_json

    doc = load_json(path, what, MAX_SBOM_BYTES)
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise InputError(path, f"not a CycloneDX JSON {what} (needs \"bomFormat\": \"CycloneDX\")")
    version = doc.get("specVersion")
    if version not in JSON_SPEC_VERSIONS:
        raise InputError(path, f"{what} specVersion {str(version)[:20]!r} is not a CycloneDX JSON version "
                               f"({', '.join(JSON_SPEC_VERSIONS)})")
    problem = _schema_problem(doc, str(version))
    if problem:
        raise InputError(path, f"{what} is not valid CycloneDX {version}: {problem}")
    return doc


def _registry_env() -> dict[str, str]:
    """sign-image's registry credentials (oci.client's variables) as the ones trivy reads."""
    from mlsec_actions.oci.client import ENV_PASSWORD, ENV_TOKEN, ENV_USERNAME

    token, user, password = (os.environ.get(v, "") for v in (ENV_TOKEN, ENV_USERNAME, ENV_PASSWORD))
    if token:
        return {"TRIVY_REGISTRY_TOKEN": token}
    if user and password:
        return {"TRIVY_USERNAME": user, "TRIVY_PASSWORD": password}
    return {}


def generate(pinned: Reference, out: Path, timeout: float) -> Path:
    """Write trivy's CycloneDX SBOM of the registry image `pinned` (a digest reference) to `out`; ToolError if not."""
    from mlsec_actions.findings import ToolStatus
    from mlsec_actions.tools import trivy_image

    if not pinned.digest:
        raise ValueError(f"{pinned}: generate an SBOM of a digest, never of a tag")
    target = trivy_image.ImageTarget("registry", str(pinned), plain_http=is_loopback(pinned.host))
    run = trivy_image.sbom_of(target, out, timeout, env=_registry_env())
    if run.status is not ToolStatus.OK:
        raise ToolError(f"sign-image: no SBOM of {pinned} from trivy ({run.status.value}): {run.message}")
    return out
