"""Schema drift: each dataset file's columns and their types compared with a schema file the user names
(`--schema FILE`; never one found in the scanned tree), and written with `--write-schema FILE`.

Paths are relative to the scanned folder. The schema is JSON: `{"version": 1, "files":
{"data/train.csv": {"columns": [{"name": "age", "type": "integer"}, ...]}}}`. Types are inferred from the
values read: integer, number, boolean, string (empty when a column held no value). An integer column
that now holds decimals is a widening, not drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlsec_actions.analyzers import dataset_rules as R
from mlsec_actions.analyzers.dataset_checks import column_name
from mlsec_actions.errors import InputError
from mlsec_actions.findings import Finding, Location

_TYPES = ("integer", "number", "boolean", "string", "empty")
_WIDENING = {("integer", "number"), ("empty", "integer"), ("empty", "number"), ("empty", "boolean"),
             ("empty", "string")}


def type_of(value: str, current: str) -> str:
    """The column type after seeing `value` (types only widen)."""
    v = value.strip()
    if not v or current == "string":
        return current
    if v.lower() in ("true", "false"):
        kind = "boolean"
    else:
        try:
            int(v)
            kind = "integer"
        except ValueError:
            try:
                float(v)
                kind = "number"
            except ValueError:
                kind = "string"
    if current in ("empty", kind):
        return kind
    return "number" if {current, kind} == {"integer", "number"} else "string"


def type_of_all(values: list[str], current: str) -> str:
    """The column type after seeing every value of `values`, in order."""
    for value in values:
        if current == "string":
            break
        current = type_of(value, current)
    return current


def load(path: Path) -> dict[str, list[tuple[str, str]]]:
    """The schema file: file -> [(column, type)]. A malformed one is an InputError (exit 2)."""
    from mlsec_actions import inputs

    doc: Any = inputs.load_json(path, "schema", max_depth=8)
    files = doc.get("files") if isinstance(doc, dict) and doc.get("version") == 1 else None
    if not isinstance(files, dict):
        raise InputError(path, "schema must be an object with version 1 and a files object")
    out: dict[str, list[tuple[str, str]]] = {}
    for rel, entry in files.items():
        columns = entry.get("columns") if isinstance(entry, dict) else None
        if not isinstance(columns, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str)
                                                    and c.get("type") in _TYPES for c in columns):
            raise InputError(path, f"schema: files.{str(rel)[:80]}: columns must be a list of {{name, type}} with "
                             f"type one of {', '.join(_TYPES)}")
        out[str(rel)] = [(c["name"], c["type"]) for c in columns]
    return out


def document(types: dict[str, list[tuple[str, str]]]) -> dict[str, object]:
    """The schema document for `--write-schema`."""
    return {"version": 1, "files": {rel: {"columns": [{"name": n, "type": t} for n, t in cols]}
                                    for rel, cols in sorted(types.items())}}


def drift(expected: dict[str, list[tuple[str, str]]], seen: dict[str, list[tuple[str, str]]]) -> list[Finding]:
    """One finding per file whose columns differ from the schema, and per schema file not found."""
    out = []
    for rel, want in sorted(expected.items()):
        got = seen.get(rel)
        if got is None:
            out.append(Finding(R.SCHEMA_DRIFT.rule, f"{rel} is in the schema but was not found or not read",
                               R.SCHEMA_DRIFT.severity, Location(rel)))
            continue
        want_map, got_map = dict(want), dict(got)
        changes = [f"-{column_name(n)}" for n in want_map if n not in got_map]
        changes += [f"+{column_name(n)}" for n in got_map if n not in want_map]
        changes += [f"{column_name(n)}: {want_map[n]} -> {t}" for n, t in got_map.items()
                    if n in want_map and t != want_map[n] and (want_map[n], t) not in _WIDENING and t != "empty"]
        if changes:
            more = f" and {len(changes) - 8} more" if len(changes) > 8 else ""
            out.append(Finding(R.SCHEMA_DRIFT.rule, f"{rel} differs from the schema: {'; '.join(changes[:8])}{more}",
                               R.SCHEMA_DRIFT.severity, Location(rel, 1, 1)))
    return out
