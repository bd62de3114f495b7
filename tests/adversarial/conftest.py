"""The hostile repository, built once per test module (no test mutates it: every run writes elsewhere).

It lives outside pytest's temporary folder: its ~1,000-deep tree would break every recursive walk over
that folder (the session's SARIF validation hook globs it), and its committed stale SARIF is meant to be
invalid. `rm -rf` removes it (shutil.rmtree recurses per level too).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial import hostile_repo
from tests.adversarial.hostile_repo import HostileRepo


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileRepo]:
    base = Path(tempfile.mkdtemp(prefix="mlsec-hostile-"))
    try:
        yield hostile_repo.build(base)
    finally:
        subprocess.run(["rm", "-rf", "--", str(base)], check=False)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """Where a command's outputs go: outside the root, like a runner's temp folder."""
    return tmp_path / "work"


def pytest_configure(config: pytest.Config) -> None:
    # test_act.py groups its act run with the other act tests on one xdist worker; with `-p no:xdist` (the
    # documented way to run this folder) the mark must still be known to --strict-markers.
    config.addinivalue_line("markers", "xdist_group(name): run in the named xdist group (pytest-xdist)")
