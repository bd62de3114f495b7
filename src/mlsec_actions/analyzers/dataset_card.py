"""Dataset cards: the licence and source of a dataset, from the card nearest to the data: `README.md`
front matter as on the Hugging Face hub, `datapackage.json` (Frictionless), or Croissant JSON-LD
(`croissant.json`, `metadata.json` with the Croissant context). The card is read as text with small
bounded parsers (no YAML object construction, no network, nothing executed)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.analyzers.dataset_read import Unreadable, open_regular

MAX_CARD = 256 * 1024
KNOWN = frozenset({
    "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "gpl-2.0", "gpl-3.0", "lgpl-3.0", "agpl-3.0", "mpl-2.0",
    "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-4.0",
    "cc-by-3.0", "cc-by-sa-3.0", "cc-by-nc-3.0", "cc-by-2.0", "cc-by-2.5", "odc-by", "odbl", "odbl-1.0", "pddl",
    "odc-by-1.0", "pddl-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "cdla-sharing-1.0", "unlicense", "wtfpl",
    "openrail", "c-uda", "etalab-2.0", "ogl-uk-3.0", "afl-3.0", "artistic-2.0", "bsl-1.0", "ecl-2.0", "epl-2.0",
    "isc", "llama2", "llama3", "gemma", "bigscience-openrail-m", "creativeml-openrail-m", "deepfloyd-if-license",
    "public-domain"})
"""SPDX ids and the hub's data licence ids, lower case."""
_CARD_NAMES = ("README.md", "datapackage.json", "croissant.json", "metadata.json")
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_KEY = re.compile(r"^(license|licence|license_name|source_datasets|homepage|source|url)\s*:\s*(.*)$", re.M)


@dataclass(frozen=True)
class Card:
    """What a card says."""

    path: str
    """The card, relative to the root."""
    licences: tuple[str, ...]
    """Licence ids or names it gives (lower case)."""
    has_source: bool
    """It names a source or homepage."""


def _list_after(lines: list[str], number: int) -> list[str]:
    """The `- item` lines right after a key (a YAML block list), up to 20."""
    items = []
    for line in lines[number + 1:number + 21]:
        if not line.strip().startswith("-"):
            break
        items.append(line.strip()[1:].strip().strip("'\""))
    return items


def _front_matter(text: str) -> tuple[list[str], bool] | None:
    match = _FRONT.match(text)
    if not match:
        return None
    body = match.group(1)
    licences: list[str] = []
    source = False
    lines = body.splitlines()
    for number, line in enumerate(lines):
        key = _KEY.match(line)
        if not key:
            continue
        name, value = key.group(1), key.group(2).strip().strip("'\"")
        items = [value] if value and value not in ("|", ">") else _list_after(lines, number)
        if name.startswith("licen"):
            licences += [i.lower() for i in items if i and i != "[]"]
        elif items and any(items):
            source = True
    return licences, source


def _json_card(text: str) -> tuple[list[str], bool] | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    raw = doc.get("licenses", doc.get("license"))
    items = raw if isinstance(raw, list) else [raw] if raw else []
    licences = []
    for item in items[:20]:
        value = item.get("name") or item.get("path") or item.get("@id") if isinstance(item, dict) else item
        if isinstance(value, str):
            licences.append(value.strip().lower().rsplit("/", 1)[-1] if "://" in value else value.strip().lower())
    source = bool(doc.get("sources") or doc.get("url") or doc.get("homepage") or doc.get("citeAs"))
    return licences, source


def read(root: Path, rel: str) -> Card | None:
    """The card at `rel` (one of the card names), or None when it is not a dataset card."""
    try:
        with open_regular(root / rel) as fh:
            text = fh.read(MAX_CARD + 1).decode("utf-8", "replace")
    except (OSError, Unreadable):
        return None
    name = rel.rsplit("/", 1)[-1]
    if name == "README.md":
        got = _front_matter(text)
    elif name == "datapackage.json" or "croissant" in text[:4096].lower():
        got = _json_card(text)
    else:
        got = None
    return Card(rel, tuple(got[0]), got[1]) if got is not None else None


def nearest(root: Path, folder: str, cache: dict[str, Card | None]) -> Card | None:
    """The card governing data in `folder`: in it or the nearest folder above it (up to the root)."""
    parts = [] if folder in ("", ".") else folder.split("/")
    while True:
        here = "/".join(parts)
        if here not in cache:
            found = None
            for name in _CARD_NAMES:
                rel = f"{here}/{name}" if here else name
                if (root / rel).is_file() and not (root / rel).is_symlink():
                    found = read(root, rel)
                    if found is not None:
                        break
            cache[here] = found
        if cache[here] is not None or not parts:
            return cache[here]
        parts.pop()


def known(licence: str) -> bool:
    """A licence id we recognise (SPDX or a hub data licence id)."""
    return licence in KNOWN or licence.removesuffix("-only").removesuffix("-or-later") in KNOWN
