"""The digest cache: correct digests, reuse while a file is unchanged, re-hash when it changes."""

from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path

import pytest

from mlsec_actions.digests import DigestCache, hash_files, scan_tree, sha256_file, walk_files
from mlsec_actions.errors import InputError


def _tree(root: Path) -> dict[str, bytes]:
    files = {"a.bin": os.urandom(5_000_000), "sub/b.txt": b"hello", "empty": b"", ".git/config": b"x"}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_digests_match_hashlib(tmp_path: Path) -> None:
    files = _tree(tmp_path)
    tree = DigestCache().tree(tmp_path)
    assert tree == {n: hashlib.sha256(d).hexdigest() for n, d in files.items() if not n.startswith(".git")}
    assert sha256_file(tmp_path / "a.bin") == hashlib.sha256(files["a.bin"]).hexdigest()


@pytest.mark.parametrize("size", [0, 1, 4096, 1_000_000, 1_048_576, 1_048_577, 3_000_001])
def test_both_read_paths_give_the_file_s_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    # The memory map starts at MMAP_MIN_BYTES; lowered here so both paths and their edges are cheap to reach.
    from mlsec_actions import digests

    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    monkeypatch.setattr(digests, "MMAP_WINDOW", mmap.ALLOCATIONGRANULARITY)  # many windows, a partial last one
    for threshold in (1, size, size + 1, 10**12):
        monkeypatch.setattr(digests, "MMAP_MIN_BYTES", max(1, threshold))
        assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest(), threshold


def test_cache_persists_and_is_reused(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    _tree(root)
    store = tmp_path / "out" / "digests.json"
    first = DigestCache(store)
    expected = first.tree(root)
    first.save()
    assert first.hashed == 3
    second = DigestCache(store)
    assert second.tree(root) == expected
    assert second.hashed == 0  # every file came from the cache: read once per run


def test_changed_file_is_rehashed(tmp_path: Path) -> None:
    _tree(tmp_path / "m")
    store = tmp_path / "digests.json"
    c = DigestCache(store)
    c.tree(tmp_path / "m")
    c.save()
    target = tmp_path / "m" / "sub" / "b.txt"
    target.write_bytes(b"HELLO")
    again = DigestCache(store)
    assert again.digest(target) == hashlib.sha256(b"HELLO").hexdigest()
    assert again.hashed == 1


def test_damaged_cache_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    store = tmp_path / "digests.json"
    store.write_text("{not json")
    assert DigestCache(store).digest(tmp_path / "f") == hashlib.sha256(b"x").hexdigest()


def test_symlink_out_of_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside").write_bytes(b"secret")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(InputError, match="outside the folder"):
        walk_files(tmp_path / "m")


def test_scan_tree_sees_every_entry_and_follows_none(tmp_path: Path) -> None:
    files = _tree(tmp_path)
    (tmp_path / "etc").symlink_to("/etc")
    (tmp_path / "sub" / "alias").symlink_to("b.txt")
    (tmp_path / "gone").symlink_to("nowhere")
    os.mkfifo(tmp_path / "sub" / "pipe")
    tree = scan_tree(tmp_path, (".git",))
    assert [p.relative_to(tmp_path).as_posix() for p in tree.files] == sorted(n for n in files if n != ".git/config")
    assert tree.others == (("etc", "symlink -> /etc"), ("gone", "symlink -> nowhere"),
                           ("sub/alias", "symlink -> b.txt"), ("sub/pipe", "FIFO"))


def test_scan_tree_depth_is_bounded_without_recursion(tmp_path: Path) -> None:
    deep = tmp_path
    for _ in range(12):
        deep = deep / "d"
    deep.mkdir(parents=True)
    assert scan_tree(tmp_path, max_depth=12).files == ()
    with pytest.raises(InputError, match="nested over 11 levels"):
        scan_tree(tmp_path, max_depth=11)


def test_hash_files_reads_now_whatever_a_cache_says(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"a" * 1000)
    cache = DigestCache(tmp_path / "c.json")
    before = cache.digest(path)
    st = path.stat()
    with path.open("r+b") as fh:
        fh.write(b"b")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert DigestCache(None).digest(path) == hashlib.sha256(b"b" + b"a" * 999).hexdigest()
    assert cache.digest(path) == before  # the cache is fooled by an in-place edit: that is why verify avoids it
    assert hash_files([path]) == {path: hashlib.sha256(b"b" + b"a" * 999).hexdigest()}


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p")
    with pytest.raises(InputError, match="not a regular file"):
        sha256_file(tmp_path / "p")
