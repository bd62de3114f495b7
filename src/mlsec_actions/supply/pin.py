"""`mlsec fetch --pin URL --name NAME`: add a pin to the lock (created when missing) from what the URL serves now.

This is trust on first use: the digest written is of the bytes downloaded now (bounded like any fetch, into a
temporary folder that is deleted). Review the artifact before committing the pin; the next `mlsec fetch`
checks it (antivirus, model checks) like every other entry. The name and URL are checked as the lock's are,
an existing entry of that name is refused, and the lock is rewritten atomically.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mlsec_actions import inputs
from mlsec_actions.errors import InputError, ToolError
from mlsec_actions.supply import download, lock, sources


def add(lock_path: Path, url: str, name: str, max_bytes: int, timeout: float) -> dict[str, Any]:
    """Download `url`, hash it, append `{name, url, sha256, size}` to the lock; returns the entry."""
    source = lock.parse_url(url, "--pin", lock_path)
    sources.check_server_for(source)
    lock.check_name(name, "--name", lock_path)
    if lock_path.exists():
        doc = inputs.load_json(lock_path, "lock file", lock.MAX_LOCK_BYTES, max_depth=8)
        lock.load(lock_path)  # the existing lock must be valid before we add to it
    else:
        doc = {"version": 1, "artifacts": []}
    if any(a.get("name") == name for a in doc["artifacts"]):
        raise InputError(lock_path, f"--name {name!r} is already pinned; remove its entry first")
    with tempfile.TemporaryDirectory(prefix="mlsec-pin-") as tmp:
        try:
            got = download.fetch(source, Path(tmp) / "artifact", max_bytes, timeout)
        except (download.DownloadError, download.LimitError) as e:
            raise ToolError(f"--pin {url[:200]}: {e}") from None
    entry = {"name": name, "url": url, "sha256": got.sha256, "size": got.size}
    doc["artifacts"].append(entry)
    tmp_lock = lock_path.with_name(lock_path.name + ".tmp")
    tmp_lock.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tmp_lock.replace(lock_path)
    lock.load(lock_path)  # what we wrote reads back as a valid lock
    return entry
