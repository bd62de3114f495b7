"""Model URIs in an org-wide audit (docs/audit.md#models): each `URL#sha256=HEX` becomes a matrix leg that
fetches it with the fetch stage (digest, size cap, ClamAV, in-house analyzers; nothing is placed unless all
pass) and runs model-scan and the gate on it, and a row of the audit.

An entry is hostile input like a repository name: its URL is checked by the fetch stage's own parser
(`supply.lock.parse_url`: https://, s3://, http:// to loopback only, hf:// at a commit, models:/ and runs:/;
no credentials, space, control character or fragment), its pin must be 64 lower-case hex digits, and its
results name (`slot`) is built from `[a-z0-9._-]` only, so nothing from the URL reaches an artifact name, a
path or a log unchecked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from mlsec_actions import outputs, sanitize
from mlsec_actions.errors import InputError, UsageError
from mlsec_actions.supply.lock import parse_url

ARTIFACT_PREFIX = "mlsec-audit-"
_SPLIT = re.compile(r"[\s,]+")
_PIN = re.compile(r"sha256=([0-9a-f]{64})")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ModelTarget:
    """One model of the audit: where it is and the SHA-256 it must have."""

    url: str
    """As given, without the `#sha256=` pin (checked by the fetch stage's parser)."""
    sha256: str

    @property
    def file_name(self) -> str:
        """Where fetch places it: the URL path's last segment, reduced to `[A-Za-z0-9._-]` (the extension stays,
        model-scan reads by content anyway); `model` when nothing is left."""
        parts = urlsplit(self.url)
        last = PurePosixPath(unquote(parts.path)).name if parts.scheme != "s3" else PurePosixPath(parts.path).name
        name = _UNSAFE.sub("_", last).strip("._-")[:100]
        return name or "model"

    @property
    def slot(self) -> str:
        """`model--<file name>--<first 16 hex of the pin>`, lower case: an artifact name and a folder name."""
        return f"model--{self.file_name.lower()}--{self.sha256[:16]}"

    @property
    def artifact(self) -> str:
        return ARTIFACT_PREFIX + self.slot

    @property
    def label(self) -> str:
        """What a row shows: the URL without its query (a presigned URL's signature stays out of reports)."""
        parts = urlsplit(self.url)
        return parts._replace(query="").geturl() + ("?…" if parts.query else "")

    @property
    def entry(self) -> str:
        return f"{self.url}#sha256={self.sha256}"


def parse_models(text: str) -> list[ModelTarget]:
    """`URL#sha256=HEX` entries separated by commas, spaces or lines; duplicates dropped in order. A bad entry
    is a UsageError naming it (nothing is planned for a list with one bad entry)."""
    out: dict[ModelTarget, None] = {}
    for entry in (e for e in _SPLIT.split(text) if e):
        shown = sanitize.log_line(entry, 160)
        url, hash_mark, pin = entry.rpartition("#")
        found = _PIN.fullmatch(pin) if hash_mark else None
        if found is None:
            raise UsageError(f"--models: {shown!r}: not URL#sha256=<64 lower-case hex digits> (every model is "
                             "pinned; `mlsec fetch --pin URL` prints the digest it serves now)")
        try:
            parse_url(url, "URL", Path("--models"))
        except InputError as e:
            raise UsageError(f"--models: {shown!r}: {e.problem}") from None
        out.setdefault(ModelTarget(url, found.group(1)))
    slots = [m.slot for m in out]
    clash = next((s for s in slots if slots.count(s) > 1), None)
    if clash is not None:
        raise UsageError(f"--models: two entries share the results name {clash} (same file name and pin)")
    return list(out)


def matrix(models: list[ModelTarget]) -> dict[str, Any]:
    return {"include": [{"model": m.entry, "label": m.label, "slot": m.slot, "artifact": m.artifact}
                        for m in models]}


def write_lock(models: list[ModelTarget], path: Path) -> None:
    """The one-entry `mlsec.lock` a model leg fetches with (the fetch stage checks it again on reading)."""
    if len(models) != 1:
        raise UsageError(f"--write-lock: needs exactly one model in --models, got {len(models)}")
    [m] = models
    doc = {"version": 1, "artifacts": [{"name": m.file_name, "url": m.url, "sha256": m.sha256}]}
    outputs.write_text(path, json.dumps(doc, indent=1) + "\n")
