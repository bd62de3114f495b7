"""actions/_setup/install.sh with the tool-venv cache: a restored venv runs only when it is the one installed.

Real installs into a runner temp folder. A "job" that installs fresh (MLSEC_SETUP_VENV_SAVE) gives the digest and
key; a later "job" (the same runner temp path, as on hosted runners, and none of the first job's own records) finds
a copy of that venv in place, as actions/cache/restore leaves it, and is given the digest. The copy is used when
it is faithful; a copy with one byte changed (its package writes a canary when imported), or a venv put in place
without a digest to check it against, is removed and installed fresh, and the canary never appears.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ACTIONS = Path(os.environ.get("MLSEC_MUTATION_ACTIONS", str(ROOT / "actions")))
INSTALL = ACTIONS / "_setup" / "install.sh"
CANARY = "import pathlib; pathlib.Path({path!r}).write_text('x')\n"


def _env(runner_temp: Path, output: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("MLSEC_", "GITHUB_", "PIP_", "UV_", "PYTHON", "VIRTUAL_ENV"))}
    cache = Path.home() / ".cache" / "mlsec-setup-test"  # uv's cache, kept between runs as test_setup_isolation's
    return {**keep, "RUNNER_TEMP": str(runner_temp), "MLSEC_SETUP_EXTRAS": "", "MLSEC_SETUP_CACHE_DIR": str(cache),
            "GITHUB_OUTPUT": str(output), **extra}


def _install(runner_temp: Path, tmp: Path, name: str, **extra: str) -> tuple[subprocess.CompletedProcess[str],
                                                                               dict[str, str]]:
    output = tmp / f"{name}.out"
    output.write_text("", encoding="utf-8")
    got = subprocess.run(["bash", str(INSTALL)], cwd=tmp, env=_env(runner_temp, output, **extra),
                         capture_output=True, text=True, timeout=600, check=False)
    outputs = dict(line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines() if "=" in line)
    return got, outputs


def _new_job(runner_temp: Path) -> None:
    """What a new job on a fresh runner has: nothing of the earlier job's (its venv, its own records)."""
    for name in ("mlsec-venv", "mlsec-setup"):
        shutil.rmtree(runner_temp / name, ignore_errors=True)


def _init_py(venv: Path) -> Path:
    found = list(venv.glob("lib/python3*/site-packages/mlsec_actions/__init__.py"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """A fresh install with MLSEC_SETUP_VENV_SAVE: (runner temp, a copy of its venv as saved, its outputs)."""
    tmp = tmp_path_factory.mktemp("saver")
    runner_temp = tmp / "runner-temp"
    runner_temp.mkdir()
    got, outputs = _install(runner_temp, tmp, "save", MLSEC_SETUP_VENV_SAVE="true")
    assert got.returncode == 0, got.stdout + got.stderr
    saved_copy = tmp / "saved"
    shutil.copytree(runner_temp / "mlsec-venv", saved_copy, symlinks=True)
    return runner_temp, saved_copy, outputs


def test_a_fresh_install_gives_the_digest_of_what_it_installed_and_the_key_with_it(
        saved: tuple[Path, Path, dict[str, str]]) -> None:
    runner_temp, copy, outputs = saved
    digest = outputs["venv-digest"]
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert re.fullmatch(r"mlsec-venv-1-[a-z0-9.-]+-py3\.\d+\.\d+-[0-9a-f]{40}-" + digest, outputs["cache-key"])
    assert outputs["venv-dir"] == str(runner_temp / "mlsec-venv")
    got = subprocess.run(["python3", "-I", str(ACTIONS / "_setup" / "venv_cache.py"), "digest", str(copy)],
                         capture_output=True, text=True, timeout=60, check=True)
    assert got.stdout.strip() == digest


def test_key_mode_gives_the_same_key_and_an_empty_place_to_restore_into(
        saved: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    runner_temp, _, outputs = saved
    _new_job(runner_temp)
    (runner_temp / "mlsec-venv" / "lib").mkdir(parents=True)  # something in the way
    got, key = _install(runner_temp, tmp_path, "key", MLSEC_SETUP_MODE="key",
                        MLSEC_SETUP_VENV_DIGEST=outputs["venv-digest"])
    assert got.returncode == 0, got.stderr
    assert key == {"cache-key": outputs["cache-key"], "venv-dir": str(runner_temp / "mlsec-venv")}
    assert not (runner_temp / "mlsec-venv").exists()
    # Without a digest nothing is restored: no key.
    got, key = _install(runner_temp, tmp_path, "key2", MLSEC_SETUP_MODE="key")
    assert got.returncode == 0 and key["cache-key"] == "", got.stderr


def test_a_faithful_restore_is_used_without_installing(saved: tuple[Path, Path, dict[str, str]],
                                                       tmp_path: Path) -> None:
    runner_temp, copy, outputs = saved
    _new_job(runner_temp)
    shutil.copytree(copy, runner_temp / "mlsec-venv", symlinks=True)
    before = _init_py(runner_temp / "mlsec-venv").stat().st_ino
    got, out = _install(runner_temp, tmp_path, "restore", MLSEC_SETUP_VENV_DIGEST=outputs["venv-digest"])
    assert got.returncode == 0, got.stdout + got.stderr
    assert "restored from the tool-venv cache" in got.stdout and "::warning" not in got.stderr
    assert _init_py(runner_temp / "mlsec-venv").stat().st_ino == before  # the same files, not a reinstall
    assert out["python"] == str(runner_temp / "mlsec-venv" / "bin" / "python")
    # A second stage in the same job reuses it as it reuses a venv the job installed.
    got, _ = _install(runner_temp, tmp_path, "again", MLSEC_SETUP_VENV_DIGEST=outputs["venv-digest"])
    assert got.returncode == 0 and "already installed" in got.stdout, got.stdout + got.stderr


def _poisoned(copy: Path, into: Path, canary: Path) -> None:
    shutil.copytree(copy, into, symlinks=True)
    init = _init_py(into)
    init.write_text(init.read_text(encoding="utf-8") + CANARY.format(path=str(canary)), encoding="utf-8")


def test_a_poisoned_restore_is_installed_fresh_and_never_runs(saved: tuple[Path, Path, dict[str, str]],
                                                              tmp_path: Path) -> None:
    runner_temp, copy, outputs = saved
    canary = tmp_path / "PWNED"
    _new_job(runner_temp)
    _poisoned(copy, runner_temp / "mlsec-venv", canary)
    got, _ = _install(runner_temp, tmp_path, "poisoned", MLSEC_SETUP_VENV_DIGEST=outputs["venv-digest"])
    assert got.returncode == 0, got.stdout + got.stderr
    assert "::warning title=mlsec setup::tool-venv cache entry not used, installing fresh" in got.stderr
    assert "differ from the ones installed" in got.stderr
    assert not canary.exists(), "a file of the poisoned cache entry ran"
    assert _init_py(runner_temp / "mlsec-venv").read_bytes() == _init_py(copy).read_bytes()
    # The stage's own call of the venv does not run it either.
    run = subprocess.run([str(runner_temp / "mlsec-venv" / "bin" / "python"), "-I", "-m", "mlsec_actions",
                          "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0 and not canary.exists(), run.stderr


def test_a_venv_in_place_without_a_digest_is_never_reused(saved: tuple[Path, Path, dict[str, str]],
                                                           tmp_path: Path) -> None:
    # Its marker says "this checkout, these extras", but nothing this job did built or checked it.
    runner_temp, copy, _ = saved
    canary = tmp_path / "PWNED"
    _new_job(runner_temp)
    _poisoned(copy, runner_temp / "mlsec-venv", canary)
    got, _ = _install(runner_temp, tmp_path, "nodigest")
    assert got.returncode == 0, got.stdout + got.stderr
    assert "already installed" not in got.stdout and not canary.exists()
    assert _init_py(runner_temp / "mlsec-venv").read_bytes() == _init_py(copy).read_bytes()


@pytest.mark.parametrize(("name", "value", "message"), [
    ("MLSEC_SETUP_VENV_DIGEST", "abc", "MLSEC_SETUP_VENV_DIGEST must be empty or 64 lowercase hex digits"),
    ("MLSEC_SETUP_VENV_DIGEST", "A" * 64, "MLSEC_SETUP_VENV_DIGEST must be empty or 64 lowercase hex digits"),
    ("MLSEC_SETUP_VENV_SAVE", "yes", "MLSEC_SETUP_VENV_SAVE must be true or false"),
    ("MLSEC_SETUP_MODE", "restore", "MLSEC_SETUP_MODE must be install or key"),
])
def test_bad_settings_are_refused_in_one_line(tmp_path: Path, name: str, value: str, message: str) -> None:
    got, _ = _install(tmp_path, tmp_path, "bad", **{name: value})
    assert got.returncode == 2 and got.stderr.strip() == f"::error title=mlsec setup::{message}"
    assert not (tmp_path / "mlsec-venv").exists()


def test_a_second_install_with_other_extras_replaces_the_venv_that_is_first_on_path(tmp_path: Path) -> None:
    # The first install put its bin/ on PATH (GITHUB_PATH), so `python3` is the venv's own: the second install
    # must not make its new venv with the interpreter of the venv it removes.
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    got, first = _install(runner_temp, tmp_path, "first")
    assert got.returncode == 0, got.stderr
    path = f"{first['bin-dir']}{os.pathsep}{os.environ['PATH']}"
    got, second = _install(runner_temp, tmp_path, "second", MLSEC_SETUP_EXTRAS="sast", PATH=path)
    assert got.returncode == 0, got.stdout + got.stderr
    assert (Path(second["bin-dir"]) / "bandit").is_file()
