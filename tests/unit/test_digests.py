"""The digest cache: correct digests, reuse while a file is unchanged, re-hash when it changes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mlsec_actions.digests import DigestCache, sha256_file, walk_files
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
