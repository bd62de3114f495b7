"""YAML with line numbers: plain data plus the line of every key and item, for errors that say where.

`yaml.safe_load` forgets positions and silently keeps the last of two duplicate keys; this keeps both
facts. Dates stay ISO strings, as JSON would carry them, so a JSON Schema sees what a user wrote.

Every YAML we read is hostile (a policy or config from a pull request), so this builds the data from
the parser's event stream without recursion and stops at the first event over a limit (`Limits`):
nesting depth (depth-100k nesting fails at once, no RecursionError), alias count and the node count
with every alias expanded (a billion-laughs file of a few KB fails before it grows), one document.
Anchored values are shared, never copied, and an alias cannot point into the node that defines it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
Lines = dict[Path_, int]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present
_SEQ_TAGS = (None, "!", "tag:yaml.org,2002:seq")
_MAP_TAGS = (None, "!", "tag:yaml.org,2002:map")
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class Limits:
    """What a YAML document may use; the defaults fit policies, configs and model cards many times over."""

    max_depth: int = 64
    """Deepest nesting of mappings and sequences."""
    max_aliases: int = 16
    """How many `*alias` references the document may hold."""
    max_nodes: int = 20_000
    """Scalars, mappings and sequences in total, every alias counted as the size of what it names (a
    default policy has about 150; parsing 20,000 takes about 0.3 s)."""


DEFAULT_LIMITS = Limits()


class DuplicateKey(Exception):
    """A mapping names the same key twice."""

    def __init__(self, key: str, line: int) -> None:
        super().__init__(key)
        self.key = key
        self.line = line


class LimitExceeded(yaml.MarkedYAMLError):
    """The document is over one of the `Limits`. A `MarkedYAMLError`, so callers that report YAML errors
    with their line report this one too."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


@dataclass
class _Open:
    """A mapping or sequence whose end event has not come yet."""

    value: dict[str, Any] | list[Any]
    at: Path_
    anchor: str | None
    nodes_before: int
    key: str | None = None
    """A mapping's key waiting for its value."""
    expect_key: bool = True
    seen: set[str] = field(default_factory=set)


def _error(problem: str, mark: Any, cls: type[yaml.MarkedYAMLError] = yaml.composer.ComposerError) -> Exception:
    return cls(problem=problem, problem_mark=mark)


def compose(text: str, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, Lines]:
    """Parse one YAML document; raises `yaml.MarkedYAMLError` (syntax, an unknown tag, or a limit:
    `LimitExceeded`) or `DuplicateKey`."""
    loader: Any = _Loader(text)  # PyYAML's parser API is untyped
    lines: Lines = {(): 1}
    stack: list[_Open] = []
    anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (value, node count)
    nodes = aliases = documents = 0
    root: Any = None
    try:
        while loader.check_event():
            event = loader.get_event()
            mark = event.start_mark
            if isinstance(event, yaml.ScalarEvent):
                nodes += 1
                value = _scalar(loader, event)
                if event.anchor is not None:
                    anchors[event.anchor] = (value, 1)
                root = _place(stack, value, _child_path(stack), mark, lines)
            elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                is_map = isinstance(event, yaml.MappingStartEvent)
                if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
                    raise _error(f"the tag {event.tag!r} is not allowed here", mark,
                                 yaml.constructor.ConstructorError)
                if stack and stack[-1].expect_key and isinstance(stack[-1].value, dict):
                    raise _error("a mapping key must be a plain value", mark)
                if len(stack) >= limits.max_depth:
                    raise LimitExceeded(f"nested deeper than {limits.max_depth} levels", mark)
                nodes += 1
                at = _child_path(stack)
                lines.setdefault(at, mark.line + 1)
                stack.append(_Open({} if is_map else [], at, event.anchor, nodes - 1))
            elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                done = stack.pop()
                if done.anchor is not None:
                    anchors[done.anchor] = (done.value, nodes - done.nodes_before)
                root = _place(stack, done.value, done.at, mark, lines)
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > limits.max_aliases:
                    raise LimitExceeded(f"more than {limits.max_aliases} aliases", mark)
                if event.anchor not in anchors:
                    raise _error(f"found undefined alias {event.anchor!r}", mark)
                value, size = anchors[event.anchor]
                nodes += size
                root = _place(stack, value, _child_path(stack), mark, lines)
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _error("expected a single document in the stream", mark)
            if nodes > limits.max_nodes:
                raise LimitExceeded(f"more than {limits.max_nodes} values (aliases expanded)", mark)
    except yaml.reader.ReaderError as e:  # a control character (a NUL-filled file): no mark of its own
        line = text.count("\n", 0, max(0, e.position)) + 1
        mark = yaml.Mark("<text>", e.position, line - 1, 0, None, 0)
        raise _error(f"unacceptable character #x{e.character:04x} (control characters are not allowed)",
                     mark, yaml.scanner.ScannerError) from None
    finally:
        loader.dispose()
    return root, lines


def _child_path(stack: list[_Open]) -> Path_:
    if not stack:
        return ()
    top = stack[-1]
    if isinstance(top.value, list):
        return (*top.at, len(top.value))
    return (*top.at, top.key) if top.key is not None and not top.expect_key else top.at


def _place(stack: list[_Open], value: Any, at: Path_, mark: Any, lines: Lines) -> Any:
    """Put a finished value into its parent; returns it (the root, when there is no parent)."""
    if not stack:
        return value
    top = stack[-1]
    if isinstance(top.value, list):
        lines.setdefault(at, mark.line + 1)
        top.value.append(value)
    elif top.expect_key:
        if isinstance(value, dict | list):
            raise _error("a mapping key must be a plain value", mark)
        key = str(value)
        if key in top.seen:
            raise DuplicateKey(key_name((*top.at, key)), mark.line + 1)
        top.seen.add(key)
        lines[(*top.at, key)] = mark.line + 1
        top.key, top.expect_key = key, False
    else:
        assert top.key is not None
        top.value[top.key] = value
        top.key, top.expect_key = None, True
    return value


def _scalar(loader: Any, event: Any) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        if event.style and event.style in "\"'|>":  # quoted or a block: a string, nothing to resolve
            return event.value
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    if tag == _STR_TAG:
        return event.value
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    try:
        value = loader.construct_object(node)
    except ValueError:  # a timestamp-looking scalar that is no date (2026-13-01): the caller's checks say so
        return str(event.value)
    finally:
        loader.constructed_objects.clear()
    return value.isoformat() if isinstance(value, dt.date) else value


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
