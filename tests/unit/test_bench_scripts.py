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
