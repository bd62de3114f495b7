"""actions/cache/restore and actions/cache/save, offline: entries are folders in this act session's cache folder.

The folder is $E2E_CACHE_DIR, else <record folder>/cache. An entry is written whole into a fresh folder and renamed
into place, so the first save of a key wins and a later one only warns, as GitHub's cache keeps the first entry of
a key. Only exact keys, one folder per entry (the project caches one venv folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path


def _output(name: str, value: str) -> None:
    with Path(os.environ["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as f:
        f.write(f"{name}={value}\n")


def _record(event: dict[str, str]) -> None:
    record = Path(os.environ["E2E_RECORD_DIR"])
    record.mkdir(parents=True, exist_ok=True)
    with (record / "cache.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(event) + "\n")


def _store() -> Path:
    store = Path(os.environ.get("E2E_CACHE_DIR") or Path(os.environ["E2E_RECORD_DIR"]) / "cache")
    store.mkdir(parents=True, exist_ok=True)
    return store


def _key() -> str:
    key = os.environ.get("CACHE_KEY", "")
    if not key or "," in key or len(key) > 512:
        sys.exit(f"::error::cache stand-in: key must be 1-512 characters without commas, got {key!r}")
    return key


def _path() -> Path:
    lines = [line for line in os.environ.get("CACHE_PATH", "").splitlines() if line.strip()]
    if len(lines) != 1:
        sys.exit("::error::cache stand-in: path must be exactly one folder")
    return Path(lines[0]).expanduser()


def entry(store: Path, key: str) -> Path:
    """Where the entry of `key` lives (tests poison and read entries through this)."""
    return store / hashlib.sha256(key.encode()).hexdigest()


def save() -> int:
    key, path = _key(), _path()
    if not path.is_dir() or path.is_symlink():
        sys.exit(f"::error::cache stand-in: {path} is not a folder")
    store = _store()
    staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=store))
    (staging / "key").write_text(key, encoding="utf-8")
    shutil.copytree(path, staging / "data", symlinks=True)
    try:
        staging.rename(entry(store, key))
    except OSError:
        shutil.rmtree(staging)
        print(f"::warning::Failed to save: Unable to reserve cache with key {key}, another job may be creating this"
              " cache.")
        _record({"op": "save", "key": key, "result": "exists"})
        return 0
    print(f"Cache saved with key: {key}")
    _record({"op": "save", "key": key, "result": "saved"})
    return 0


def restore() -> int:
    key, path = _key(), _path()
    if os.environ.get("RESTORE_KEYS", "").strip():
        sys.exit("::error::cache stand-in: restore-keys are not supported (exact keys only)")
    found = entry(_store(), key)
    hit = found.is_dir() and (found / "key").read_text(encoding="utf-8") == key
    _output("cache-primary-key", key)
    _output("cache-hit", "true" if hit else "false")
    _output("cache-matched-key", key if hit else "")
    _record({"op": "restore", "key": key, "result": "hit" if hit else "miss"})
    if not hit:
        if os.environ.get("FAIL_ON_MISS") == "true":
            sys.exit(f"::error::Failed to restore cache entry. Exiting as fail-on-cache-miss is set. Input key: {key}")
        print(f"Cache not found for input keys: {key}")
        return 0
    if os.environ.get("LOOKUP_ONLY") != "true":
        shutil.copytree(found / "data", path, symlinks=True, dirs_exist_ok=True)
    print(f"Cache restored from key: {key}")
    return 0


if __name__ == "__main__":
    sys.exit({"save": save, "restore": restore}[sys.argv[1]]())
