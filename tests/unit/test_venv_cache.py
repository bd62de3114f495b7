"""actions/_setup/venv_cache.py on hostile trees: a restored tool venv is used only when it is the one installed.

The script runs as install.sh runs it (the job's interpreter, isolated mode, from bash). Each case starts from a
small venv-shaped tree whose digest is the expected one, changes one thing, and must be refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The mutation harness runs these tests against its copy of actions/.
SCRIPT = Path(os.environ.get("MLSEC_MUTATION_ACTIONS", str(ROOT / "actions"))) / "_setup" / "venv_cache.py"
PYTHON = os.path.realpath(sys.executable)
VERSION = ".".join(str(n) for n in sys.version_info[:3])


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    # Through bash, as install.sh starts it; the job's interpreter in isolated mode.
    return subprocess.run(["bash", "-c", '"$0" -I "$@"', PYTHON, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=60, check=False, env={"PATH": os.environ["PATH"], "LC_ALL": "C"})


def _digest(folder: Path) -> str:
    got = _run("digest", str(folder))
    assert got.returncode == 0, got.stderr
    return got.stdout.strip()


def _venv(at: Path, *, python: str = PYTHON, version: str = VERSION) -> Path:
    """A venv-shaped tree: bin/python linking to `python`, pyvenv.cfg naming `version`, a package, an entry script."""
    (at / "bin").mkdir(parents=True)
    (at / "bin" / "python").symlink_to(python)
    (at / "bin" / "python3").symlink_to("python")
    (at / "bin" / "mlsec").write_text(f"#!{at}/bin/python\nimport mlsec_actions\n", encoding="utf-8")
    (at / "bin" / "mlsec").chmod(0o755)
    pkg = at / "lib" / "python3" / "site-packages" / "mlsec_actions"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("VERSION = '0.1.0'\n", encoding="utf-8")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "__init__.pyc").write_bytes(b"\x00" * 40)
    (at / "pyvenv.cfg").write_text(f"home = {Path(python).parent}\nversion = {version}\n", encoding="utf-8")
    (at / ".mlsec-install").write_text("root [] https://pypi.org/simple", encoding="utf-8")
    return at


def _verify(folder: Path, expected: str) -> subprocess.CompletedProcess[str]:
    return _run("verify", str(folder), expected)


@pytest.fixture
def good(tmp_path: Path) -> tuple[Path, str]:
    venv = _venv(tmp_path / "installed")
    return venv, _digest(venv)


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def test_a_faithful_copy_passes_whatever_its_times(good: tuple[Path, str], tmp_path: Path) -> None:
    venv, expected = good
    copy = _copy(venv, tmp_path / "restored")
    for p in copy.rglob("*"):
        os.utime(p, (1_000_000, 1_000_000), follow_symlinks=False)
    assert _digest(copy) == expected
    got = _verify(copy, expected)
    assert got.returncode == 0, got.stderr


def test_one_changed_byte_is_refused(good: tuple[Path, str], tmp_path: Path) -> None:
    venv, expected = good
    copy = _copy(venv, tmp_path / "restored")
    init = copy / "lib" / "python3" / "site-packages" / "mlsec_actions" / "__init__.py"
    init.write_bytes(init.read_bytes().replace(b"0.1.0", b"0.1.1"))
    got = _verify(copy, expected)
    assert got.returncode == 1 and "differ from the ones installed" in got.stderr, got.stderr


def test_a_changed_bytecode_file_is_refused(good: tuple[Path, str], tmp_path: Path) -> None:
    # Python runs a valid .pyc without its source: bytecode is part of what is checked.
    venv, expected = good
    copy = _copy(venv, tmp_path / "restored")
    (copy / "lib" / "python3" / "site-packages" / "mlsec_actions" / "__pycache__" / "__init__.pyc").write_bytes(
        b"\x00" * 39 + b"\x01")
    assert _verify(copy, expected).returncode == 1


@pytest.mark.parametrize("added", ["lib/python3/site-packages/evil.pth", "lib/python3/site-packages/sitecustomize.py",
                                   "bin/.hidden", "empty-folder/"])
def test_an_added_file_or_folder_is_refused(good: tuple[Path, str], tmp_path: Path, added: str) -> None:
    venv, expected = good
    copy = _copy(venv, tmp_path / "restored")
    if added.endswith("/"):
        (copy / added).mkdir()
    else:
        (copy / added).write_text("import os\n", encoding="utf-8")
    assert _verify(copy, expected).returncode == 1


def test_a_removed_file_is_refused(good: tuple[Path, str], tmp_path: Path) -> None:
    venv, expected = good
    copy = _copy(venv, tmp_path / "restored")
    (copy / ".mlsec-install").unlink()
    assert _verify(copy, expected).returncode == 1


def test_a_changed_mode_is_refused(good: tuple[Path, str], tmp_path: Path) -> None:
    venv, expected = good
    copy = _copy(venv, tmp_path / "restored")
    (copy / "pyvenv.cfg").chmod(0o4755)
    assert _verify(copy, expected).returncode == 1


def test_a_link_pointing_out_is_refused(good: tuple[Path, str], tmp_path: Path) -> None:
    venv, expected = good
    outside = tmp_path / "outside.py"
    outside.write_text("VERSION = '0.1.0'\n", encoding="utf-8")
    copy = _copy(venv, tmp_path / "restored")
    init = copy / "lib" / "python3" / "site-packages" / "mlsec_actions" / "__init__.py"
    init.unlink()
    init.symlink_to(outside)  # the same bytes, but a link out of the venv
    got = _verify(copy, expected)
    assert got.returncode == 1, got.stderr
    # A link retargeted out of the venv (bin/python3 -> somewhere else) is refused too.
    copy2 = _copy(venv, tmp_path / "restored2")
    (copy2 / "bin" / "python3").unlink()
    (copy2 / "bin" / "python3").symlink_to(outside)
    assert _verify(copy2, expected).returncode == 1


def test_a_venv_that_is_a_link_to_a_good_copy_is_refused(good: tuple[Path, str], tmp_path: Path) -> None:
    venv, expected = good
    link = tmp_path / "restored"
    link.symlink_to(venv)
    got = _verify(link, expected)
    assert got.returncode == 1 and "not a folder" in got.stderr, got.stderr


def test_a_missing_venv_is_refused(good: tuple[Path, str], tmp_path: Path) -> None:
    _, expected = good
    got = _verify(tmp_path / "nothing", expected)
    assert got.returncode == 1 and "does not exist" in got.stderr, got.stderr


def test_a_fifo_is_refused_without_waiting_on_it(good: tuple[Path, str], tmp_path: Path) -> None:
    venv, expected = good
    copy = _copy(venv, tmp_path / "restored")
    os.mkfifo(copy / "bin" / "pipe")
    got = _verify(copy, expected)
    assert got.returncode == 1 and "neither a file" in got.stderr, got.stderr


def test_a_venv_of_another_interpreter_is_refused_even_with_its_own_digest(tmp_path: Path) -> None:
    # The expected digest is this tree's own: only the interpreter check can refuse it.
    other = shutil.which("sh")
    assert other is not None
    venv = _venv(tmp_path / "other-python", python=os.path.realpath(other))
    got = _verify(venv, _digest(venv))
    assert got.returncode == 1 and "is not this job's" in got.stderr, got.stderr


def test_a_venv_naming_another_python_version_is_refused_even_with_its_own_digest(tmp_path: Path) -> None:
    venv = _venv(tmp_path / "other-version", version="3.9.1")
    got = _verify(venv, _digest(venv))
    assert got.returncode == 1 and "names Python 3.9.1" in got.stderr, got.stderr


def test_a_venv_without_its_interpreter_is_refused(tmp_path: Path) -> None:
    venv = _venv(tmp_path / "no-python")
    (venv / "bin" / "python").unlink()
    got = _verify(venv, _digest(venv))
    assert got.returncode == 1 and "no bin/python" in got.stderr, got.stderr


def test_records_cannot_pass_for_each_other(tmp_path: Path) -> None:
    # A file whose bytes hash to H and a link whose target is the text H; a name with a newline and two names.
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("data", encoding="utf-8")
    target = _run("digest", str(a)).stdout  # any text
    (b / "x").symlink_to(target.strip())
    assert _digest(a) != _digest(b)
    c, d = tmp_path / "c", tmp_path / "d"
    c.mkdir()
    d.mkdir()
    (c / "p\nq").write_text("", encoding="utf-8")
    (d / "p").write_text("", encoding="utf-8")
    (d / "q").write_text("", encoding="utf-8")
    assert _digest(c) != _digest(d)


@pytest.mark.parametrize("bad", ["", "ABC", "g" * 64, "a" * 63, "a" * 65, "a" * 64 + "\n"])
def test_an_expected_digest_that_is_not_one_is_a_usage_error(good: tuple[Path, str], bad: str) -> None:
    venv, _ = good
    got = _verify(venv, bad)
    assert got.returncode == 2 and "64 lowercase hex digits" in got.stderr, got.stderr


def test_bad_usage_exits_2() -> None:
    for args in ((), ("digest",), ("verify", "x"), ("key", "--extras", "e"), ("frob", "x")):
        assert _run(*args).returncode == 2


def _key(root: Path, *, extras: str = "trivy", index: str = "https://pypi.org/simple", venv: str = "/t/mlsec-venv"
         ) -> str:
    got = _run("key", "--extras", extras, "--index", index, "--root", str(root), "--venv", venv)
    assert got.returncode == 0, got.stderr
    return got.stdout.strip()


def _checkout(at: Path) -> Path:
    (at / "src" / "mlsec_actions").mkdir(parents=True)
    (at / "src" / "mlsec_actions" / "__init__.py").write_text("", encoding="utf-8")
    (at / "actions" / "_setup").mkdir(parents=True)
    (at / "actions" / "_setup" / "install.sh").write_text("#!/bin/sh\n", encoding="utf-8")
    (at / "pyproject.toml").write_text("[project]\nname = 'mlsec-actions'\n", encoding="utf-8")
    return at


def test_the_key_names_the_runner_and_python_and_changes_with_every_input(tmp_path: Path) -> None:
    root = _checkout(tmp_path / "checkout")
    base = _key(root)
    assert base.startswith("mlsec-venv-1-") and f"-py{VERSION}-" in base
    assert "," not in _key(root, extras="trivy,sast") and len(base) <= 512
    assert _key(root) == base
    # Bytecode caches in the checkout are not install input.
    (root / "src" / "mlsec_actions" / "__pycache__").mkdir()
    (root / "src" / "mlsec_actions" / "__pycache__" / "x.pyc").write_bytes(b"1")
    assert _key(root) == base
    others = {_key(root, extras="trivy,sast"), _key(root, index="https://mirror.example/simple"),
              _key(root, venv="/other/mlsec-venv")}
    for rel, text in (("src/mlsec_actions/__init__.py", "x = 1\n"), ("pyproject.toml", "[project]\n"),
                      ("actions/_setup/install.sh", "#!/bin/bash\n")):
        changed = _copy(root, tmp_path / f"changed-{len(others)}")
        (changed / rel).write_text(text, encoding="utf-8")
        others.add(_key(changed))
    assert base not in others and len(others) == 6
