"""outputs.py: output-path checks, atomic writes, the results-folder lock."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from mlsec_actions import outputs
from mlsec_actions.errors import BusyError, OutputError


@pytest.mark.parametrize(("make", "problem"), [
    (lambda t: Path("/proc/self/x.sarif"), "is under /proc"),
    (lambda t: Path("/sys/x"), "is under /sys"),
    (lambda t: Path("/dev/null"), "is under /dev"),
    (lambda t: (t / "d").mkdir() or t / "d", "is a folder"),
    (lambda t: (t / "f").write_text("x") and t / "f" / "v.json", "is not a folder"),
    (lambda t: os.mkfifo(t / "fifo") or t / "fifo", "not a regular file"),
    (lambda t: t / ("x" * 256), "longer than 255 bytes"),
    (lambda t: (t / "loop").symlink_to(t / "loop") or t / "loop" / "a", "resolved"),
])
def test_file_problems(tmp_path: Path, make, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    found = outputs.file_problem(path)
    assert found is not None and problem in found, found
    with pytest.raises(OutputError):
        outputs.check_file(path)


def test_good_paths_pass(tmp_path: Path) -> None:
    assert outputs.file_problem(tmp_path / "new" / "deeper" / "x.sarif") is None  # parents are created later
    (tmp_path / "old.json").write_text("x")
    assert outputs.file_problem(tmp_path / "old.json") is None  # replaced atomically
    assert outputs.dir_problem(tmp_path / "new-dir") is None and outputs.dir_problem(tmp_path) is None
    (tmp_path / "afile").write_text("x")
    assert "not a folder" in (outputs.dir_problem(tmp_path / "afile") or "")


def test_atomic_write_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.json"
    outputs.write_text(target, "one")
    outputs.write_text(target, "two")
    assert target.read_text() == "two" and sorted(p.name for p in target.parent.iterdir()) == ["b.json"]


def _try_lock(folder: Path, token: str = "") -> subprocess.CompletedProcess[str]:
    code = ("import sys; from pathlib import Path; from mlsec_actions import outputs\n"
            "try:\n with outputs.lock(Path(sys.argv[1])): print('got it')\n"
            "except Exception as e: print(type(e).__name__)\n")
    env = {**os.environ, outputs.LOCK_TOKEN_ENV: token}
    return subprocess.run([sys.executable, "-c", code, str(folder)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_lock_is_exclusive_across_processes_but_open_to_the_holders_children(tmp_path: Path) -> None:
    token = "f" * 32
    with outputs.lock(tmp_path, token):
        assert _try_lock(tmp_path).stdout.strip() == "BusyError"
        assert _try_lock(tmp_path, "e" * 32).stdout.strip() == "BusyError"  # another run's token
        assert _try_lock(tmp_path, token).stdout.strip() == "got it"  # a stage this run started
        with pytest.raises(BusyError, match="another mlsec run, gate or sign"), outputs.lock(tmp_path):
            pass
    assert _try_lock(tmp_path).stdout.strip() == "got it"  # released with the block


def test_short_token_never_opens_a_lock(tmp_path: Path) -> None:
    with outputs.lock(tmp_path, ""):
        assert _try_lock(tmp_path, "").stdout.strip() == "BusyError"


def test_each_path_problem_is_worded_exactly(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert outputs.file_problem(Path()) == "empty path" and outputs.file_problem(Path()) == "empty path"
    assert outputs.file_problem(Path("a\0b")) == "path contains a NUL byte"
    assert outputs.file_problem(tmp_path / ("x" * 256)) == "file name is longer than 255 bytes"
    assert outputs.file_problem(tmp_path / ("x" * 255)) is None
    assert outputs.file_problem(tmp_path / ("é" * 128)) == "file name is longer than 255 bytes"  # bytes, not chars
    assert outputs.file_problem(tmp_path / "loop" / "a") == "path cannot be resolved (symlink loop?)"
    assert outputs.file_problem(Path("/proc")) == "is under /proc, not a place for results"
    assert outputs.file_problem(Path("/sys/x")) == "is under /sys, not a place for results"
    assert outputs.file_problem(Path("/dev/x/y")) == "is under /dev, not a place for results"
    assert outputs.file_problem(Path("/procx/a")) != "is under /proc, not a place for results"  # a prefix only
    assert outputs.file_problem(tmp_path / "d") == "is a folder; name a file"
    assert outputs.file_problem(tmp_path / "fifo") == "exists and is not a regular file"
    assert outputs.file_problem(tmp_path / "afile" / "deeper" / "v.json") == f"{tmp_path / 'afile'} is not a folder"
    assert outputs.dir_problem(tmp_path / "afile") == "exists and is not a folder"
    assert outputs.dir_problem(tmp_path / "fifo") == "exists and is not a folder"
    assert outputs.dir_problem(tmp_path / "afile" / "sub") == f"{tmp_path / 'afile'} is not a folder"
    assert outputs.dir_problem(Path()) is None and outputs.dir_problem(Path("/proc/x")) == (
        "is under /proc, not a place for results")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    assert outputs.dir_problem(dangling) == "exists and is not a folder"  # a link, even to nothing, is there


def test_check_and_argparse_types_carry_the_path_and_the_problem(tmp_path: Path) -> None:
    import argparse

    (tmp_path / "d").mkdir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError) as info:
        outputs.check_file(tmp_path / "d")
    assert (str(info.value), info.value.problem) == (f"{tmp_path / 'd'}: is a folder; name a file",
                                                     "is a folder; name a file")
    with pytest.raises(OutputError, match=r": exists and is not a folder$"):
        outputs.check_dir(tmp_path / "afile")
    assert outputs.check_file(tmp_path / "new.json") == tmp_path / "new.json"
    assert outputs.check_dir(tmp_path / "d") == tmp_path / "d"
    with pytest.raises(argparse.ArgumentTypeError, match=rf"^{tmp_path / 'd'}: is a folder; name a file$"):
        outputs.output_file(str(tmp_path / "d"))
    with pytest.raises(argparse.ArgumentTypeError, match=rf"^{tmp_path / 'afile'}: exists and is not a folder$"):
        outputs.output_dir(str(tmp_path / "afile"))
    assert outputs.output_file(str(tmp_path / "x.json")) == tmp_path / "x.json"
    assert outputs.output_dir(str(tmp_path / "out")) == tmp_path / "out"


def test_an_atomic_write_is_mode_644_and_a_failed_one_leaves_nothing(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    target = outputs.write_bytes(tmp_path / "a" / "b.bin", b"\0\1")
    assert target == tmp_path / "a" / "b.bin" and target.read_bytes() == b"\0\1"
    assert target.stat().st_mode & 0o777 == 0o644
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match=r"^.*afile/x\.json: cannot write: "):
        outputs.write_text(tmp_path / "afile" / "x.json", "x")
    seen: list[str] = []

    def failing_replace(self: Path, target: Path) -> Path:
        seen.extend(p.name for p in self.parent.iterdir())
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", failing_replace)
    with pytest.raises(OutputError, match=r"^.*c\.json: cannot write: No space left on device$"):
        outputs.write_text(tmp_path / "c.json", "é")
    [tmp] = [n for n in seen if n != "afile" and n != "a"]
    assert tmp.startswith(".c.json.") and tmp.endswith(".tmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "afile"]  # the temporary file is gone

    def interrupted(self: Path, target: Path) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        outputs.write_text(tmp_path / "d.json", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "afile"]


def test_a_long_name_gets_a_temporary_name_within_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = Path.replace

    def spy(self: Path, target: Path) -> Path:
        seen.append(self.name)
        return real(self, target)

    monkeypatch.setattr(Path, "replace", spy)
    outputs.write_text(tmp_path / ("n" * 250), "x")
    assert seen[0].startswith("." + "n" * 64 + ".") and not seen[0].startswith("." + "n" * 65)


def test_the_lock_file_holds_the_token_and_only_a_long_token_in_our_environment_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "a" * 32
    with outputs.lock(tmp_path, token) as held:
        assert held == tmp_path
        assert (tmp_path / outputs.LOCK_NAME).read_text() == token + "\n"
        monkeypatch.setenv(outputs.LOCK_TOKEN_ENV, token)
        with outputs.lock(tmp_path) as again:  # a stage this run started: let in, the token left alone
            assert again == tmp_path
        assert (tmp_path / outputs.LOCK_NAME).read_text() == token + "\n"
    with outputs.lock(tmp_path, "b" * 31):
        monkeypatch.setenv(outputs.LOCK_TOKEN_ENV, "b" * 31)
        busy = (r"^.*: another mlsec run, gate or sign is writing into this folder; "
                r"wait for it to finish or choose another output folder$")
        with pytest.raises(BusyError, match=busy), outputs.lock(tmp_path):
            pass
    with outputs.lock(tmp_path):  # no token: the file is emptied, not left with the last run's
        assert (tmp_path / outputs.LOCK_NAME).read_text() == ""
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match=r": exists and is not a folder$"), outputs.lock(tmp_path / "afile"):
        pass


def test_check_dir_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError) as info:
        outputs.check_dir(tmp_path / "afile")
    assert str(info.value) == f"{tmp_path / 'afile'}: exists and is not a folder"


def test_a_lock_token_that_is_not_ascii_too_long_or_unreadable_never_matches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    holder = "t" * 40
    with outputs.lock(tmp_path, holder):
        (tmp_path / outputs.LOCK_NAME).write_bytes("ü".encode() * 20 + b"\n")  # another writer's bytes
        monkeypatch.setenv(outputs.LOCK_TOKEN_ENV, holder)
        with pytest.raises(BusyError), outputs.lock(tmp_path):
            pass
    long = "L" * 257  # only the first 256 bytes of the lock file are compared
    with outputs.lock(tmp_path, long):
        monkeypatch.setenv(outputs.LOCK_TOKEN_ENV, long)
        with pytest.raises(BusyError), outputs.lock(tmp_path):
            pass
    with outputs.lock(tmp_path, holder):
        monkeypatch.setenv(outputs.LOCK_TOKEN_ENV, holder)

        def unreadable(*args: object) -> bytes:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(outputs.os, "pread", unreadable)
        with pytest.raises(BusyError), outputs.lock(tmp_path):
            pass


def test_an_atomic_write_creates_every_missing_parent_and_names_a_parent_that_is_a_file(tmp_path: Path) -> None:
    assert outputs.write_text(tmp_path / "a" / "b" / "c" / "d.json", "x").read_text() == "x"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError) as e:
        outputs.write_text(tmp_path / "afile" / "x.json", "x")
    assert str(e.value) == f"{tmp_path / 'afile' / 'x.json'}: cannot write: File exists"


def _as_unprivileged(call: Callable[[], object]) -> str:
    """repr of `call()` as the suite's own user when it is not root, else in a forked child that has become
    `nobody` (root may write anywhere, so only an unprivileged caller reaches the write-permission checks)."""
    if os.getuid() != 0:
        return repr(call())
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover -- the child reports through the pipe and never returns
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            text = repr(call())
        except BaseException as e:
            text = f"raised {e!r}"
        os.write(write_end, text.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        got = f.read().decode()
    os.waitpid(pid, 0)
    return got


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder any user can reach (pytest's own tmp_path is private to the user running the suite)."""
    folder = Path(tempfile.mkdtemp(prefix="mlsec-outputs-"))
    folder.chmod(0o755)
    yield folder
    for child in folder.iterdir():
        child.chmod(0o700)
    shutil.rmtree(folder)


def test_a_folder_the_caller_cannot_write_or_enter_is_named(shared_tmp: Path) -> None:
    # Three folders the unprivileged caller may not write in: read and enter only, write but not enter, enter only.
    mine = shared_tmp / "mine"
    refused = {shared_tmp / "closed": (0o755, 0o555), shared_tmp / "noentry": (0o772, 0o222),
               shared_tmp / "enteronly": (0o771, 0o111)}
    privileged = os.getuid() == 0
    mine.mkdir()
    mine.chmod(0o777)
    for folder, (as_root, as_user) in refused.items():
        folder.mkdir()
        folder.chmod(as_root if privileged else as_user)  # root's caller is `nobody`: the "other" bits count
    for folder in refused:  # in this process: root passes every access check, another user does not
        assert outputs.dir_problem(folder) == (None if privileged else "cannot write in this folder")
        assert outputs.dir_problem(folder / "new") == (None if privileged else f"cannot write in {folder}")
        assert outputs.file_problem(folder / "a" / "v.json") == (None if privileged else f"cannot write in {folder}")
    for folder in refused:
        assert _as_unprivileged(partial(outputs.dir_problem, folder)) == repr("cannot write in this folder")
        assert _as_unprivileged(partial(outputs.dir_problem, folder / "new")) == repr(f"cannot write in {folder}")
        assert _as_unprivileged(partial(outputs.file_problem, folder / "a" / "v.json")) == repr(
            f"cannot write in {folder}")
    assert _as_unprivileged(lambda: outputs.dir_problem(mine)) == "None"
    assert _as_unprivileged(lambda: outputs.file_problem(mine / "a" / "v.json")) == "None"
    closed = shared_tmp / "closed"
    assert _as_unprivileged(lambda: outputs.check_dir(closed)) == (
        f"raised OutputError('{closed}: cannot write in this folder')")
