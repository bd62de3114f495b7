"""digests.py details the mutation sweep found untested: what each special entry is called in a change
report, the worker count on and off Linux, and hashing several files at once."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
from pathlib import Path

import pytest

from mlsec_actions import digests


@pytest.mark.parametrize(("mode", "name"), [(stat.S_IFIFO, "FIFO"), (stat.S_IFSOCK, "socket"),
                                            (stat.S_IFCHR, "character device"), (stat.S_IFBLK, "block device"),
                                            (0, "special file")])
def test_each_special_entry_is_named(mode: int, name: str) -> None:
    assert digests._what(Path("/nowhere"), mode) == name


def test_a_symlink_names_its_target_or_a_question_mark(tmp_path: Path) -> None:
    (tmp_path / "l").symlink_to("../t")
    assert digests._what(tmp_path / "l", stat.S_IFLNK) == "symlink -> ../t"
    assert digests._what(tmp_path / "gone", stat.S_IFLNK) == "symlink -> ?"


def test_scan_tree_reports_a_socket(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "sock"))
        assert digests.scan_tree(tmp_path).others == (("sock", "socket"),)


def test_workers_is_the_usable_cores_or_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {3}, raising=False)
    assert digests.workers() == 1
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert digests.workers() == 3
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert digests.workers() == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert digests.workers() == 1


def test_hash_files_hashes_many_files_each_once(tmp_path: Path) -> None:
    files = []
    for i in range(5):
        (tmp_path / f"f{i}").write_bytes(b"x" * i)
        files.append(tmp_path / f"f{i}")
    got = digests.hash_files([*files, files[0]])
    assert got == {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_a_file_replaced_with_the_same_size_and_mtime_is_hashed_again(tmp_path: Path) -> None:
    """The cache key holds the inode: a rename over the file cannot reuse the old digest (issue 8)."""
    p, q = tmp_path / "w.bin", tmp_path / "new.bin"
    p.write_bytes(b"aaaa")
    cache = digests.DigestCache()
    assert cache.digest(p) == hashlib.sha256(b"aaaa").hexdigest()
    q.write_bytes(b"bbbb")
    st = p.stat()
    os.utime(q, ns=(st.st_atime_ns, st.st_mtime_ns))
    q.replace(p)
    assert cache.digest(p) == hashlib.sha256(b"bbbb").hexdigest()


def test_one_file_named_two_ways_is_read_once_and_answered_for_both(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    p = tmp_path / "w.bin"
    p.write_bytes(b"w")
    other = tmp_path / "d" / ".." / "w.bin"
    cache = digests.DigestCache()
    got = cache.digests([p, other])
    assert got == {p: hashlib.sha256(b"w").hexdigest(), other: hashlib.sha256(b"w").hexdigest()}
    assert cache.hashed == 1


def test_a_file_that_cannot_be_statted_is_one_input_error(tmp_path: Path) -> None:
    from mlsec_actions.errors import InputError

    with pytest.raises(InputError) as e:
        digests.DigestCache().digest(tmp_path / "gone")
    assert str(e.value) == f"{tmp_path / 'gone'}: cannot read: No such file or directory"


def test_sha256_file_refusals_are_one_line_naming_the_file(tmp_path: Path) -> None:
    from mlsec_actions.errors import InputError

    with pytest.raises(InputError) as e:
        digests.sha256_file(tmp_path / "gone")
    assert str(e.value) == f"{tmp_path / 'gone'}: cannot read: No such file or directory"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError) as e:
        digests.sha256_file(tmp_path / "fifo")
    assert str(e.value) == f"{tmp_path / 'fifo'}: not a regular file; refusing to hash it"


def test_scan_tree_depth_limit_names_the_folder(tmp_path: Path) -> None:
    from mlsec_actions.errors import InputError

    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    with pytest.raises(InputError) as e:
        digests.scan_tree(tmp_path, max_depth=1)
    assert str(e.value) == f"{tmp_path / 'a' / 'b'}: folder is nested over 1 levels deep; refusing to walk it"


def test_walk_files_keeps_links_to_files_inside_past_other_special_entries(tmp_path: Path) -> None:
    from mlsec_actions.errors import InputError

    (tmp_path / "real.bin").write_bytes(b"r")
    os.mkfifo(tmp_path / "a-fifo")
    (tmp_path / "b-link").symlink_to("real.bin")
    assert digests.walk_files(tmp_path) == [tmp_path / "b-link", tmp_path / "real.bin"]
    (tmp_path / "c-out").symlink_to("/etc/hostname")
    with pytest.raises(InputError) as e:
        digests.walk_files(tmp_path)
    assert str(e.value) == f"{tmp_path / 'c-out'}: symlink points outside the folder; refusing to hash it"


def test_save_makes_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "w").write_bytes(b"w")
    cache = digests.DigestCache(tmp_path / "a" / "b" / "digests.json")
    cache.digest(tmp_path / "w")
    cache.save()
    assert digests.DigestCache(tmp_path / "a" / "b" / "digests.json").digest(tmp_path / "w") == \
        hashlib.sha256(b"w").hexdigest()


def test_a_read_error_midway_is_one_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlsec_actions.errors import InputError

    class Failing:
        def __enter__(self) -> Failing:
            return self

        def __exit__(self, *_: object) -> None:
            return None

        def readinto(self, _buf: memoryview) -> int:
            raise OSError(5, "Input/output error")

    (tmp_path / "w").write_bytes(b"w")
    monkeypatch.setattr(digests.os, "fdopen", lambda *_a, **_k: Failing())
    with pytest.raises(InputError) as e:
        digests.sha256_file(tmp_path / "w")
    assert str(e.value) == f"{tmp_path / 'w'}: cannot read: Input/output error"


def test_scan_tree_listing_and_stat_errors_name_the_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root reads every folder, so the errors are injected: each is one InputError naming what failed."""
    from mlsec_actions.errors import InputError

    (tmp_path / "sub").mkdir()
    (tmp_path / "f").write_bytes(b"f")
    real = os.scandir

    def no_sub(path: str | Path) -> object:
        if Path(path).name == "sub":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(digests.os, "scandir", no_sub)
    with pytest.raises(InputError) as e:
        digests.scan_tree(tmp_path)
    assert str(e.value) == f"{tmp_path / 'sub'}: cannot list folder: Permission denied"

    class Entry:
        def __init__(self, entry: os.DirEntry[str]) -> None:
            self.name, self.path = entry.name, entry.path

        def stat(self, follow_symlinks: bool = True) -> os.stat_result:
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(digests.os, "scandir", lambda path: [Entry(x) for x in real(path)])
    with pytest.raises(InputError) as e:
        digests.scan_tree(tmp_path)
    assert str(e.value) in (f"{tmp_path / 'f'}: cannot stat: Input/output error",
                            f"{tmp_path / 'sub'}: cannot stat: Input/output error")
