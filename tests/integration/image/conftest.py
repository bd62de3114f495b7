"""One image for the image tests: the service context (tests/oci_layout.py) built once per session with the real
`mlsec build` (buildah), as an OCI layout and a docker-archive; and the loopback registry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.oci_layout import Layout, mlsec, service_context
from tests.oci_registry import oci_registry

__all__ = ["Built", "built_image", "oci_registry"]


@dataclass(frozen=True)
class Built:
    """The session's built image."""

    context: Path
    """The build context (its Containerfile is the one built)."""
    layout: Layout
    """The OCI layout written."""
    archive: Path
    """The docker-archive written."""
    image: dict[str, object]
    """The stage's image JSON."""
    sarif: Path
    """The build stage's SARIF."""


@pytest.fixture(scope="session")
def built_image(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("built-image")
    context = service_context(base / "ctx")
    out = base / "out"
    proc = mlsec("build", str(context), "--sarif", str(out / "build.sarif"), "--layout", str(out / "layout"),
                 "--archive", str(out / "image.tar"), "--image-json", str(out / "image.json"),
                 "--sbom", str(out / "image.cdx.json"),
                 "--tag", "mlsec-test/service:1")
    assert proc.returncode == 0, proc.stderr
    return Built(context, Layout(out / "layout"), out / "image.tar", json.loads((out / "image.json").read_text()),
                 out / "build.sarif")
