"""Upload a verified set to S3 (`tools/s3.py`'s environment-only client): `PREFIX/DIGEST/NAME` with the file's
SHA-256 as object metadata, bundles beside as `NAME.sigstore.json`. An object already there with the same
digest is left alone (idempotent); one with another digest is refused, never overwritten."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mlsec_actions.errors import UsageError

if TYPE_CHECKING:
    from mlsec_actions.supply.publish_plan import Plan


def _target(url: str) -> tuple[str, str]:
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


def publish(url: str, plan: Plan, timeout: float) -> dict[str, list[str]]:
    """Upload what is not there yet; returns the keys uploaded and the ones unchanged."""
    from mlsec_actions.stages.publish import PublishError
    from mlsec_actions.tools import s3

    bucket, prefix = _target(url)
    client = s3.client(timeout)
    base = f"{prefix}/{plan.digest}" if prefix else plan.digest
    todo = [(f"{base}/{i.rel}", i.path, i.sha256) for i in plan.items]
    import hashlib

    for name, bundle in plan.extras.bundles:
        todo.append((f"{base}/{name}.sigstore.json", bundle, hashlib.sha256(bundle.read_bytes()).hexdigest()))
    uploaded: list[str] = []
    unchanged: list[str] = []
    for key, path, sha in todo:
        there = _existing(client, bucket, key)
        if there == sha:
            unchanged.append(key)
            continue
        if there is not None:
            raise PublishError(f"s3://{bucket}/{key} exists with other bytes (sha256 {there[:16]}...); "
                               "refusing to overwrite it")
        with path.open("rb") as fh:
            client.put_object(Bucket=bucket, Key=key, Body=fh, Metadata={"sha256": sha})
        uploaded.append(key)
    return {"uploaded": uploaded, "unchanged": unchanged, "prefix": [f"s3://{bucket}/{base}"]}
