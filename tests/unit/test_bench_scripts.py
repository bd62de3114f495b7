"""Every benchmark runs as its documented command (`.venv/bin/python benchmarks/NAME.py`), from any folder:
a script that only works as a module (`from benchmarks import ...` without the repository on sys.path) fails
for the user who copies the command from benchmarks/README.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


def test_there_are_benchmark_scripts() -> None:
    assert len(SCRIPTS) >= 10, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_each_benchmark_script_starts_from_another_folder(script: Path, tmp_path: Path) -> None:
    got = subprocess.run([sys.executable, "-I", str(script), "--help"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert got.returncode == 0, got.stderr[-2000:]
    assert got.stdout.startswith("usage:"), got.stdout[:200]


@pytest.mark.parametrize("with_semgrep", [False, True])
def test_code_scan_bounds_the_stage_only_by_tools_it_runs(tmp_path: Path, with_semgrep: bool) -> None:
    """semgrep is opt-in: without `--semgrep` the stage does not run it, so bare semgrep (the slowest tool) must
    not be the bound the stage is compared with; with it, both sides have it."""
    from benchmarks import code_scan

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "app.py").write_text("import pickle\n")
    work = tmp_path / "work"
    work.mkdir()
    found = {c.name: c for c in code_scan.contenders(tree, str(work), with_semgrep)}
    assert ("semgrep" in found) is with_semgrep
    assert ("--semgrep" in found[code_scan.FULL].argv) is with_semgrep
