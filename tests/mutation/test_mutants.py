"""Each hand-made mutant of a security check must be killed by the tests named beside it.

The mutant is applied to a copy of `src/` that is put first on `PYTHONPATH` for a child pytest, so the
tests run against the mutated package; the same tests must pass on the unmutated copy first (otherwise
a failing test would count as a kill). A mutant of a script under `actions/` is applied to a copy of
`actions/` (with what an install from it reads) named by MLSEC_MUTATION_ACTIONS, which its tests run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.mutation import failed_plugin
from tests.mutation.mutants import Mutant, load

REPO = Path(__file__).resolve().parents[2]
MUTANTS = load()


def _copy_src(dest: Path) -> Path:
    src = dest / "src"
    shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # The package finds its builtin policies beside src/ in a source checkout (the wheel carries them inside).
    shutil.copytree(REPO / "policies", dest / "policies")
    # The action scripts, beside src/ as in the checkout (install.sh installs from the folder above actions/).
    shutil.copytree(REPO / "actions", dest / "actions", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, dest / name)
    return src


def _pytest(src: Path, tests: tuple[str, ...], base: Path, failed: Path | None = None,
            validate_sarif: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join((str(src), str(REPO)))
    env["MLSEC_MUTATION_SRC"] = str(src)
    env["MLSEC_MUTATION_ACTIONS"] = str(src.parent / "actions")
    if failed is not None:
        env[failed_plugin.OUT_ENV] = str(failed)
    if not validate_sarif:  # the clean copy's SARIF is the suite's own, validated by the suite's run of these tests
        env["MUTANT_UNDER_TEST"] = "clean"
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
               "-p", "tests.mutation.failed_plugin", "--basetemp", str(base), *tests]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="session")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], bool]:
    """Test sets that pass on the unmutated copy (computed once per set)."""
    return {}


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_mutant_is_killed(mutant: Mutant, tmp_path: Path, baseline: dict[tuple[str, ...], bool]) -> None:
    src = _copy_src(tmp_path)
    target = src.parent / mutant.file
    text = target.read_text(encoding="utf-8")
    count = text.count(mutant.find)
    assert count == 1, (f"mutant {mutant.id}: its text occurs {count} times in {mutant.file}; the code changed, "
                        "update tests/mutation/mutants.toml")
    # Child sessions keep their temp files outside ours: our session hook must not validate a mutant's SARIF.
    scratch = Path(tempfile.mkdtemp(prefix=f"mlsec-mutant-{mutant.id}-"))
    try:
        _check(mutant, src, target, text, scratch, baseline)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check(mutant: Mutant, src: Path, target: Path, text: str, scratch: Path,
           baseline: dict[tuple[str, ...], bool]) -> None:
    # Mutated first (stops at the first failure), then the clean copy runs only the tests that failed: a kill
    # counts when they pass without the mutant. With no failing test to name (a collection error, a session-level
    # failure such as invalid SARIF), the clean copy runs the whole set, once per set.
    target.write_text(text.replace(mutant.find, mutant.replace), encoding="utf-8")
    failed = scratch / "failed.txt"
    mutated = _pytest(src, mutant.tests, scratch / "mutated", failed=failed)
    target.write_text(text, encoding="utf-8")
    assert mutated.returncode in (0, 1, 2), f"mutant {mutant.id}: pytest exited {mutated.returncode}:\n" \
        f"{mutated.stdout[-3000:]}"
    assert mutated.returncode != 0, (
        f"mutant {mutant.id} SURVIVED ({mutant.why or 'no reason given'}): {' '.join(mutant.tests)} still pass "
        f"with {mutant.file} changed from {mutant.find!r} to {mutant.replace!r}")
    killers = tuple(dict.fromkeys(failed.read_text(encoding="utf-8").split("\n"))) if failed.is_file() else ()
    killers = tuple(k for k in killers if k)
    if killers:
        clean = _pytest(src, killers, scratch / "clean", validate_sarif=False)
        assert clean.returncode == 0, (f"mutant {mutant.id}: {' '.join(killers)} fail without the mutant too, so "
                                       f"they kill nothing:\n{clean.stdout[-3000:]}")
        return
    if mutant.tests not in baseline:
        clean = _pytest(src, mutant.tests, scratch / "clean")
        baseline[mutant.tests] = clean.returncode == 0
    assert baseline[mutant.tests], f"tests for {mutant.id} fail without the mutant (run them on main to see why)"
