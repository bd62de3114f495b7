"""Reading what the build stage wrote, for the image tests: an OCI layout's manifest, config and layer files,
and `mlsec build` run as a process. Only the standard library: tests inspect the image, they do not trust
the stage's own JSON for it."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AWS_KEY_ID = "AKIA" + "Z7QW3ERTY5UIOP2S"  # shaped like an AWS key id (split so no scanner flags this file)
AWS_SECRET = "k9Jd8s7Hq2Lm4Np6Rt0V" + "x3Zb5Cf7Gh9Kj1Mn3Pq4"


@dataclass(frozen=True)
class Layout:
    """An OCI layout folder."""

    root: Path

    def blob(self, digest: str) -> bytes:
        algo, _, hexd = digest.partition(":")
        return (self.root / "blobs" / algo / hexd).read_bytes()

    def manifest_digest(self) -> str:
        index = json.loads((self.root / "index.json").read_text())
        return str(index["manifests"][0]["digest"])

    def manifest(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.blob(self.manifest_digest()))
        return doc

    def config(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.blob(self.manifest()["config"]["digest"]))
        return doc

    def files(self) -> dict[str, bytes]:
        """The image's final filesystem: every regular file of every layer, later layers win, whiteouts delete."""
        out: dict[str, bytes] = {}
        for layer in self.manifest()["layers"]:
            data = self.blob(layer["digest"])
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for member in tar.getmembers():
                    name = member.name.lstrip("./")
                    folder, _, base = name.rpartition("/")
                    if base.startswith(".wh."):
                        out.pop(f"{folder}/{base[4:]}".lstrip("/"), None)
                    elif member.isfile():
                        f = tar.extractfile(member)
                        out[name] = f.read() if f else b""
        return out


def service_context(folder: Path, *, secret: bool = True) -> Path:
    """A build context: busybox-static (Debian's, copied in), a RUN step, a config file with a key that a later
    layer deletes (so it is gone from the final filesystem and still in the image)."""
    folder.mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is not installed: run scripts/bootstrap dev as root"
    shutil.copy(busybox, folder / "busybox")
    (folder / "config").mkdir(exist_ok=True)
    if secret:
        (folder / "config" / "aws.env").write_text(
            f"AWS_ACCESS_KEY_ID={AWS_KEY_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n")
    else:
        (folder / "config" / "app.conf").write_text("port=8080\n")
    (folder / "Containerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "sh", "-c", "echo built > /built.txt"]\n'
        "COPY config/ /etc/app/\n"
        + ('RUN ["/bin/busybox", "rm", "/etc/app/aws.env"]\n' if secret else "")
        + "USER 65532\n"
        'ENTRYPOINT ["/bin/busybox"]\n')
    return folder


def mlsec(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
          timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-I", "-m", "mlsec_actions", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout, check=False)
