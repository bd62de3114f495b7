"""Upload a verified set to S3 (`tools/s3.py`'s environment-only client): `PREFIX/DIGEST/NAME` with the file's
SHA-256 as object metadata, bundles beside as `NAME.sigstore.json`, and the gate attestation and the SBOM beside
by their file names with their SHA-256 too (`publish_plan.objects`). An object already there with the same
digest is left alone (idempotent); one with another digest is refused before anything is uploaded, never
overwritten."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mlsec_actions.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mlsec_actions.supply.publish_plan import Object, Plan


def target(url: str) -> tuple[str, str]:
    """(bucket, prefix) of `s3://BUCKET/PREFIX`, else UsageError (checked before anything is published)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise UsageError(f"--s3: {url[:100]!r} is not s3://BUCKET/PREFIX")
    return parts.netloc, parts.path.strip("/")


def _existing(client: Any, bucket: str, key: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return str((head.get("Metadata") or {}).get("sha256", ""))


def publish(url: str, plan: Plan, objects: Sequence[Object], timeout: float) -> dict[str, list[str]]:
    """Upload what is not there yet (`objects`: `publish_plan.objects(plan)`); returns the keys uploaded and the
    ones unchanged."""
    from mlsec_actions.stages.publish import PublishError
    from mlsec_actions.tools import s3

    bucket, prefix = target(url)
    client = s3.client(timeout)
    base = f"{prefix}/{plan.digest}" if prefix else plan.digest
    todo = [(f"{base}/{o.name}", o.path, o.sha256) for o in objects]
    there = {key: _existing(client, bucket, key) for key, _, _ in todo}
    for key, _, sha in todo:  # every object checked before the first upload: a refusal leaves S3 as it was
        if there[key] is not None and there[key] != sha:
            raise PublishError(f"s3://{bucket}/{key} exists with other bytes (sha256 {str(there[key])[:16]}...); "
                               "refusing to overwrite it")
    uploaded: list[str] = []
    unchanged: list[str] = []
    for key, path, sha in todo:
        if there[key] == sha:
            unchanged.append(key)
            continue
        with path.open("rb") as fh:
            client.put_object(Bucket=bucket, Key=key, Body=fh, Metadata={"sha256": sha})
        uploaded.append(key)
    return {"uploaded": uploaded, "unchanged": unchanged, "prefix": [f"s3://{bucket}/{base}"]}
