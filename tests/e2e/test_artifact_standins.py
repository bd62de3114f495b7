"""The artifact stand-ins keep and hand back the layout the real actions give (the e2e tests rely on it).

upload-artifact keeps paths relative to the least common ancestor folder; download-artifact with a
pattern puts each artifact in its own folder, with a name straight into the destination.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

STANDINS = Path(__file__).parent / "standins"
KEEP = STANDINS / "upload-artifact" / "keep.py"


def _keep(cwd: Path, record: Path, name: str, files: str, if_none: str = "warn") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "E2E_RECORD_DIR": str(record), "NAME": name, "FILES": files, "IF_NONE": if_none}
    return subprocess.run([sys.executable, str(KEEP)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    for rel in ("models/m.safetensors.sigstore.json", "mlsec-results/sbom.cdx.json.sigstore.json",
                "mlsec-results/scan.json"):
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(rel, encoding="utf-8")
    return ws


def test_one_file_is_kept_by_its_name(tmp_path: Path) -> None:
    ws, record = _workspace(tmp_path), tmp_path / "record"
    assert _keep(ws, record, "mlsec-sarif-code-scan", "mlsec-results/scan.json").returncode == 0
    assert _tree(record / "artifacts") == ["mlsec-sarif-code-scan/scan.json"]


def test_files_keep_paths_below_their_common_folder(tmp_path: Path) -> None:
    ws, record = _workspace(tmp_path), tmp_path / "record"
    got = _keep(ws, record, "sigs", "models/m.safetensors.sigstore.json\nmlsec-results/sbom.cdx.json.sigstore.json\n")
    assert got.returncode == 0, got.stdout
    assert _tree(record / "artifacts" / "sigs") == ["mlsec-results/sbom.cdx.json.sigstore.json",
                                                     "models/m.safetensors.sigstore.json"]


def test_missing_files_and_reused_names_are_errors_when_asked(tmp_path: Path) -> None:
    ws, record = _workspace(tmp_path), tmp_path / "record"
    assert _keep(ws, record, "none", "nope.json", if_none="error").returncode == 1
    assert _keep(ws, record, "none", "nope.json").returncode == 0
    assert _keep(ws, record, "twice", "mlsec-results/scan.json").returncode == 0
    assert _keep(ws, record, "twice", "mlsec-results/scan.json").returncode == 1


def _download(tmp_path: Path, record: Path, **inputs: str) -> Path:
    action = yaml.safe_load((STANDINS / "download-artifact" / "action.yml").read_text(encoding="utf-8"))
    script = action["runs"]["steps"][0]["run"]
    ws = tmp_path / "dl"
    ws.mkdir(exist_ok=True)
    out = tmp_path / "out.txt"
    env = {**os.environ, "E2E_RECORD_DIR": str(record), "GITHUB_WORKSPACE": str(ws), "GITHUB_OUTPUT": str(out),
           "GITHUB_JOB": "gate", "NAME": inputs.get("name", ""), "PATTERN": inputs.get("pattern", ""),
           "DEST": inputs.get("path", "."), "MERGE": inputs.get("merge", "false")}
    got = subprocess.run(["bash", "-c", script], cwd=ws, env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert got.returncode == 0, got.stdout + got.stderr
    return ws


def test_download_by_pattern_gives_one_folder_per_artifact(tmp_path: Path) -> None:
    ws, record = _workspace(tmp_path), tmp_path / "record"
    _keep(ws, record, "mlsec-sarif-code-scan", "mlsec-results/scan.json")
    _keep(ws, record, "mlsec-gate-pre-train", "mlsec-results/sbom.cdx.json.sigstore.json")
    got = _download(tmp_path, record, pattern="mlsec-sarif-*", path="in")
    assert _tree(got / "in") == ["mlsec-sarif-code-scan/scan.json"]  # the gate artifact is not matched
    got = _download(tmp_path, record, name="mlsec-gate-pre-train", path="res")
    assert _tree(got / "res") == ["sbom.cdx.json.sigstore.json"]
