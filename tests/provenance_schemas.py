"""Validators for the in-toto Statement v1 and SLSA Provenance v1 JSON Schemas in `tests/schemas/`.

Neither project publishes a JSON Schema; ours are written from the specifications' field definitions (each
schema's `$comment` names the page and version). `errors` gives one line per violation, path first, so a test
failure says which field broke which rule.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "schemas"
STATEMENT = "in-toto-statement-v1.json"
PROVENANCE = "slsa-provenance-v1.json"
_BASE = "https://mlsec-actions.dev/tests/schemas/"


@cache
def validator(name: str) -> Draft202012Validator:
    """The validator of schema file `name` (one of STATEMENT, PROVENANCE), with date-time formats checked."""
    docs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.json")}
    for doc in docs.values():
        Draft202012Validator.check_schema(doc)
    registry: Registry[Any] = Registry().with_resources(
        (_BASE + n, Resource.from_contents(d)) for n, d in docs.items())
    return Draft202012Validator(docs[name], registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(doc: object, name: str) -> list[str]:
    """Every way `doc` breaks schema `name`, as `path: message` lines (empty: it validates)."""
    found = sorted(validator(name).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in found]
