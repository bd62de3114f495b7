"""Small test images pushed with our own client: an OCI manifest, its config and one gzip'd tar layer.

Each call with a different `marker` makes a different image (a different digest), so a test can move a tag or
sign one image and present another. Nothing here needs a container engine.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile

from mlsec_actions.oci.client import OCI_MANIFEST, Client, sha256


def _layer(marker: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = f"hello from {marker}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def push_image(client: Client, repo: str, tag: str, marker: str) -> str:
    """Push a one-file image under `repo:tag`; its manifest digest."""
    layer = _layer(marker)
    diff_id = sha256(gzip.decompress(layer))
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                   "digest": client.put_blob(repo, config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": len(layer),
                    "digest": client.put_blob(repo, layer)}]}).encode()
    client.put_manifest(repo, tag, manifest, OCI_MANIFEST)
    return sha256(manifest)
