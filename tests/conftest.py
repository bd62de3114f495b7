"""Shared fixtures, and the session hook that validates every SARIF file the tests wrote.

Any `*.sarif` under pytest's base temp folder at the end of the session is checked against the SARIF 2.1.0
schema, the SARIF Multitool's GitHub rules and our contract (tests/sarif_validation.py); one invalid file
fails the run. Tests that write deliberately broken SARIF name it `*.sarif.bad` or `*.json`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import sarif_validation

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture
def mlsec_bin() -> str:
    """The installed `mlsec` console script (next to this interpreter)."""
    path = Path(sys.executable).parent / "mlsec"
    assert path.is_file(), f"mlsec is not installed next to {sys.executable}; run scripts/test"
    return str(path)


@pytest.fixture
def run_mlsec(mlsec_bin: str):  # type: ignore[no-untyped-def]
    """Run the real `mlsec` CLI in a subprocess; returns CompletedProcess (text)."""

    def _run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_"))}
        full_env.update(env or {})
        return subprocess.run([mlsec_bin, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    return _run


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A fresh copy of examples/ml-project to scan or mutate."""
    dest = tmp_path / "ml-project"
    shutil.copytree(REPO / "examples" / "ml-project", dest)
    return dest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):  # xdist workers: the controller validates once
        return
    if "MUTANT_UNDER_TEST" in os.environ:  # a mutation child (sweep.py, test_mutants.py): the suite validates
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    base = factory.getbasetemp()
    files = sorted(p for p in base.rglob("*.sarif") if p.is_file())
    if not files:
        return
    problems = sarif_validation.validate(files)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"SARIF validation: {len(files)} files checked, {len(problems)} invalid")
        for path, errors in problems.items():
            for err in errors[:20]:
                reporter.write_line(f"  INVALID {path}: {err}", red=True)
    if problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    # The mutation harness runs the tests against a mutated copy of src/: make sure that copy is what loads.
    mutated = os.environ.get("MLSEC_MUTATION_SRC")
    if mutated:
        import mlsec_actions

        assert Path(mlsec_actions.__file__).is_relative_to(mutated), (
            f"mutation run imports {mlsec_actions.__file__}, not the mutated copy in {mutated}")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # pytest-xdist 3.8 puts an item in its `xdist_group` by appending `@group` to `item._nodeid`, which pytest 9 no
    # longer reads (the id lives in `_id`): `--dist loadgroup` then spread each group over both workers, and every
    # module fixture of the act e2e modules (an act run of minutes each) ran once per worker. Same renaming, where
    # pytest 9 reads it; tests/unit/test_xdist_groups.py checks that it takes effect.
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names and not item.nodeid.endswith("@" + "_".join(names)):
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")  # type: ignore[attr-defined]
