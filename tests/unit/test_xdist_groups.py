"""`--dist loadgroup` (scripts/test) keeps an `xdist_group` on one worker, so a module fixture runs once: the act e2e
modules' fixtures are act runs of minutes each (tests/conftest.py's hook makes it so under pytest 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_MODULE = """
import os, pytest
pytestmark = [pytest.mark.xdist_group(name="g")]
@pytest.fixture(scope="module")
def once():
    with open(os.environ["SETUPS"], "a") as f:
        f.write("{name} " + os.environ["PYTEST_XDIST_WORKER"] + "\\n")
@pytest.mark.parametrize("i", range(12))
def test_it(once, i):
    pass
"""


def test_a_group_runs_on_one_worker_and_its_module_fixtures_once(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_collection_modifyitems\n")
    for name in ("a", "c"):
        (tmp_path / f"test_{name}.py").write_text(_MODULE.replace("{name}", name))
    (tmp_path / "test_b.py").write_text("import pytest\n@pytest.mark.parametrize('i', range(60))\n"
                                         "def test_free(i):\n    pass\n")
    setups = tmp_path / "setups.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SETUPS": str(setups)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p",
                           "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = setups.read_text().split()
    names, workers = lines[0::2], lines[1::2]
    assert sorted(names) == ["a", "c"], lines  # each module fixture once, not once per worker
    assert len(set(workers)) == 1, lines       # the whole group on one worker
