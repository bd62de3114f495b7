"""A real OCI distribution registry on loopback for the image stages' tests: Debian's `docker-registry` (the
CNCF distribution registry, v2 API) with filesystem storage in a session temporary folder, plain HTTP on
127.0.0.1. Tests push with `buildah push --tls-verify=false IMG docker://HOST/REPO:TAG` or over the HTTP API.

Import the fixture into a test module (`from tests.oci_registry import oci_registry`). scripts/bootstrap dev
installs the package (as root); a missing binary is an error, never a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.supply_servers import _wait, free_port


@dataclass(frozen=True)
class Registry:
    """A running registry."""

    host: str
    """`127.0.0.1:PORT`, the reference prefix (`{host}/repo:tag`)."""
    root: Path
    """Its storage folder (tests may inspect what was written)."""

    @property
    def url(self) -> str:
        """The API base, `http://127.0.0.1:PORT`."""
        return f"http://{self.host}"


def start_registry(folder: Path) -> tuple[Registry, subprocess.Popen[bytes]]:
    """Start `docker-registry serve` with storage under `folder`; wait until `/v2/` answers."""
    binary = shutil.which("docker-registry")
    assert binary, "docker-registry (Debian's package) is not installed: run scripts/bootstrap dev as root"
    port = free_port()
    storage = folder / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yml"
    # Deletes are enabled so tests can check that a stage never deletes; no auth, no TLS (loopback only).
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n",
        encoding="utf-8")
    log = (folder / "registry.log").open("wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/v2/", proc, 30)
    except BaseException:
        proc.kill()
        raise
    return Registry(f"127.0.0.1:{port}", storage), proc


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One registry for the session; repositories are per test (use a unique name)."""
    registry, proc = start_registry(tmp_path_factory.mktemp("oci-registry"))
    try:
        yield registry
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
