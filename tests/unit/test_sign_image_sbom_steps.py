"""devsecops.yml's sign-image job: which SBOM is attested (`sign-image-sbom`), and the repository's SBOM path read as
hostile input. The job's own shell steps are run with bash, as the runner runs them, on each case."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _steps() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((REPO / ".github" / "workflows" / "devsecops.yml").read_text())
    return {s["name"]: s for s in doc["jobs"]["sign-image"]["steps"]}


def _run(step: dict[str, Any], tmp_path: Path, env: dict[str, str]) -> tuple[int, dict[str, str], str]:
    out = tmp_path / "github_output"
    out.write_text("")
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=30, env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(out), **env},
                          check=False)
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    return proc.returncode, outputs, proc.stdout + proc.stderr


def _step_env(step: dict[str, Any], image: str, sbom: str, builder: str = "buildah") -> dict[str, str]:
    assert step["env"] == {"IMAGE": "${{ inputs.sign-image }}", "BUILDER": "${{ inputs.builder }}",
                           "SBOM": "${{ inputs.sign-image-sbom }}"}  # inputs only through env
    return {"IMAGE": image, "BUILDER": builder, "SBOM": sbom}


EXPLICIT = "ghcr.io/o/app@sha256:" + "0" * 64


@pytest.mark.parametrize(("image", "sbom", "builder", "expected"), [
    ("built", "", "buildah", {"generate": "false", "file": "mlsec-image-sbom/image.cdx.json", "checkout": "false"}),
    ("built", "", "buildx", {"generate": "false", "file": "", "checkout": "false"}),
    (EXPLICIT, "", "buildah", {"generate": "true", "file": "", "checkout": "false"}),
    (EXPLICIT, "none", "buildah", {"generate": "false", "file": "", "checkout": "false"}),
    (EXPLICIT, "sbom/app.cdx.json", "buildah",
     {"generate": "false", "file": "mlsec-caller/sbom/app.cdx.json", "checkout": "true"}),
])
def test_which_sbom_is_attested(tmp_path: Path, image: str, sbom: str, builder: str, expected: dict[str, str]) -> None:
    step = _steps()["SBOM to attest"]
    code, outputs, log = _run(step, tmp_path, _step_env(step, image, sbom, builder))
    assert (code, outputs) == (0, expected), log


@pytest.mark.parametrize(("image", "sbom", "problem"), [
    ("built", "sbom.json", "sign-image-sbom is for an explicit image"),
    (EXPLICIT, "/etc/passwd", "must be a path relative to your repository root"),
    (EXPLICIT, "../other/sbom.json", "must be a path relative to your repository root"),
    (EXPLICIT, "a/../../b.json", "must be a path relative to your repository root"),
    (EXPLICIT, "a b.json", "must be a path relative to your repository root"),
    (EXPLICIT, "x.json\n::error::forged", "must be a path relative to your repository root"),
    (EXPLICIT, ".git/config", "must be a path relative to your repository root"),
])
def test_a_bad_sbom_input_fails_the_job(tmp_path: Path, image: str, sbom: str, problem: str) -> None:
    step = _steps()["SBOM to attest"]
    code, outputs, log = _run(step, tmp_path, _step_env(step, image, sbom))
    assert code == 2 and problem in log and not outputs, log


def test_the_repository_file_must_be_a_regular_file_inside_it(tmp_path: Path) -> None:
    step = _steps()["The repository's SBOM is a regular file inside it"]
    assert step["if"] == "steps.sbom.outputs.checkout == 'true'"
    repo = tmp_path / "mlsec-caller"
    (repo / "sbom").mkdir(parents=True)
    (repo / "sbom" / "app.cdx.json").write_text("{}")
    (tmp_path / "outside.json").write_text("{}")
    (repo / "link.json").symlink_to(tmp_path / "outside.json")
    (repo / "dir").symlink_to(tmp_path)  # a folder link: the file resolves outside the repository
    (repo / "sub").mkdir()
    cases = {"mlsec-caller/sbom/app.cdx.json": 0, "mlsec-caller/link.json": 2, "mlsec-caller/dir/outside.json": 2,
             "mlsec-caller/missing.json": 2, "mlsec-caller/sub": 2}
    for file, expected in cases.items():
        code, _, log = _run(step, tmp_path, {"FILE": file})
        assert code == expected, (file, log)
        if expected:
            assert "is not a regular file of the repository" in log


def test_the_sign_step_takes_what_the_sbom_step_chose() -> None:
    steps = _steps()
    sign = steps["sign-image"]["with"]
    assert sign["sbom"] == "${{ steps.sbom.outputs.file }}"
    assert sign["generate-sbom"] == "${{ steps.sbom.outputs.generate }}"
    checkout = steps["Check out the repository (the SBOM file)"]
    assert checkout["with"] == {"path": "mlsec-caller", "persist-credentials": False}
    names = list(steps)
    # The repository is in its own folder (never over the downloaded verdict) before sign-image reads it.
    assert names.index("Check out the repository (the SBOM file)") < names.index("sign-image")
