"""YAML with line numbers: plain data plus the line of every key and item, for errors that say where.

`yaml.safe_load` forgets positions and silently keeps the last of two duplicate keys; this keeps both
facts. Dates stay ISO strings, as JSON would carry them, so a JSON Schema sees what a user wrote.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
Lines = dict[Path_, int]


class DuplicateKey(Exception):
    """A mapping names the same key twice."""

    def __init__(self, key: str, line: int) -> None:
        super().__init__(key)
        self.key = key
        self.line = line


def compose(text: str) -> tuple[Any, Lines]:
    """Parse YAML; raises `yaml.MarkedYAMLError` (syntax) or `DuplicateKey`."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: Lines = {(): 1}
    if node is None:
        return None, lines
    constructor = yaml.SafeLoader("")

    def walk(n: yaml.Node, at: Path_) -> Any:
        lines.setdefault(at, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in n.value:
                key = str(constructor.construct_object(key_node))
                if key in out:
                    raise DuplicateKey(key_name((*at, key)), key_node.start_mark.line + 1)
                lines[(*at, key)] = key_node.start_mark.line + 1
                out[key] = walk(value_node, (*at, key))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [walk(item, (*at, i)) for i, item in enumerate(n.value)]
        try:
            value = constructor.construct_object(n)
        except ValueError:  # a timestamp-looking scalar that is no date (2026-13-01): the caller's checks say so
            return str(n.value)
        return value.isoformat() if isinstance(value, dt.date) else value

    return walk(node, ()), lines


def key_name(at: Path_) -> str:
    """`waivers[0].reason` style; `(top)` for the document itself."""
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top)"


def line_of(lines: Lines, at: Path_) -> int:
    """The line of `at`, or of its nearest parent that has one."""
    while at not in lines:
        at = at[:-1]
    return lines[at]
