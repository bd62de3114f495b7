"""The artifact stand-ins keep and hand back the layout the real actions give (the e2e tests rely on it).

upload-artifact keeps paths relative to the least common ancestor folder; download-artifact with a
pattern puts each artifact in its own folder, with a name straight into the destination.
"""

from __future__ import annotations

import json
import os
import shutil
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


CACHE = STANDINS / "cache" / "cache.py"


def _cache(op: str, tmp: Path, key: str, path: Path, **extra: str) -> tuple[subprocess.CompletedProcess[str],
                                                                            dict[str, str]]:
    out = tmp / "github_output"
    out.write_text("", encoding="utf-8")
    env = {**os.environ, "E2E_RECORD_DIR": str(tmp / "record"), "E2E_CACHE_DIR": str(tmp / "store"),
           "GITHUB_OUTPUT": str(out), "CACHE_KEY": key, "CACHE_PATH": f"{path}\n", **extra}
    got = subprocess.run([sys.executable, str(CACHE), op], env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    return got, dict(line.split("=", 1) for line in out.read_text(encoding="utf-8").splitlines() if "=" in line)


def _folder(at: Path, text: str) -> Path:
    (at / "bin").mkdir(parents=True)
    (at / "bin" / "tool").write_text(text, encoding="utf-8")
    (at / "bin" / "tool").chmod(0o750)
    (at / "bin" / "python").symlink_to("/usr/bin/python3")
    return at


def test_the_cache_keeps_a_folder_under_its_exact_key_and_the_first_save_wins(tmp_path: Path) -> None:
    venv = _folder(tmp_path / "venv", "first")
    assert _cache("save", tmp_path, "k-1", venv)[0].returncode == 0
    (venv / "bin" / "tool").write_text("second", encoding="utf-8")
    got, _ = _cache("save", tmp_path, "k-1", venv)
    assert got.returncode == 0 and "::warning::Failed to save" in got.stdout
    shutil.rmtree(venv)
    got, out = _cache("restore", tmp_path, "k-1", venv)
    assert got.returncode == 0 and out["cache-hit"] == "true" and out["cache-matched-key"] == "k-1"
    assert (venv / "bin" / "tool").read_text(encoding="utf-8") == "first"
    assert (venv / "bin" / "tool").stat().st_mode & 0o777 == 0o750
    assert (venv / "bin" / "python").readlink() == Path("/usr/bin/python3")
    # Exact keys only: a prefix or a longer key is a miss, and a miss leaves the path alone.
    for other in ("k-", "k-12"):
        got, out = _cache("restore", tmp_path, other, tmp_path / "elsewhere")
        assert got.returncode == 0 and out["cache-hit"] == "false" and out["cache-matched-key"] == ""
        assert not (tmp_path / "elsewhere").exists()
    got, _ = _cache("restore", tmp_path, "nope", tmp_path / "elsewhere", FAIL_ON_MISS="true")
    assert got.returncode == 1
    records = [json.loads(line) for line in (tmp_path / "record" / "cache.jsonl").read_text().splitlines()]
    assert [r["result"] for r in records] == ["saved", "exists", "hit", "miss", "miss", "miss"]


def test_the_cache_refuses_what_github_refuses_and_what_it_does_not_do(tmp_path: Path) -> None:
    venv = _folder(tmp_path / "venv", "x")
    for key in ("a,b", "", "k" * 513):
        assert _cache("save", tmp_path, key, venv)[0].returncode == 1
    assert _cache("restore", tmp_path, "k", venv, RESTORE_KEYS="k-")[0].returncode == 1
    assert _cache("save", tmp_path, "k", tmp_path / "missing")[0].returncode == 1
