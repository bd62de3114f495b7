"""Chat templates read with Jinja2's own parser, and their syntax tree walked (nothing is rendered).

Regular expressions miss what the parser resolves: `\\N{LOW LINE}` and `\\x5f` escapes in string literals,
names built by concatenation (`'_' ~ '_class' ~ '__'`), repetition (`'_' * 2`) or formatting
(`'%c'|format(95)`), Jinja globals reached through an alias (`{% set g = lipsum %}`), and filters that
fetch attributes by a name given as data (`attr`, `map(attribute=...)`, `selectattr`, `sort`...). The
walk folds constant string expressions the way Jinja would evaluate them (bounded sizes) and judges the
attribute and item names they produce.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# Globals whose attributes lead to Python internals (lipsum.__globals__ -> os ...).
GADGETS = frozenset({"lipsum", "cycler", "joiner", "self", "request", "config", "url_for", "get_flashed_messages"})
# Filters (and their keyword) that read an attribute named by an argument.
_ATTRIBUTE_FILTERS = {"attr": None, "map": "attribute", "selectattr": None, "rejectattr": None, "sort": "attribute",
                      "groupby": "attribute", "sum": "attribute", "unique": "attribute", "min": "attribute",
                      "max": "attribute"}
_MAX_FOLDED = 4096
_MAX_NODES = 200_000
_GENERATION = re.compile(r"\{%-?\s*(?:end)?generation\s*-?%\}")


def issues(text: str) -> list[tuple[str, str, int]] | None:
    """(label, excerpt, line) for each sandbox-escape construct; None when jinja2 is not installed."""
    try:
        from jinja2 import Environment, nodes  # optional (models extra): imported for templates only
        from jinja2.exceptions import TemplateSyntaxError
    except ImportError:
        return None
    # transformers adds a `{% generation %}` block tag: drop its markers so such templates parse.
    text = _GENERATION.sub("", text)
    try:
        tree = Environment(autoescape=True, extensions=["jinja2.ext.loopcontrols"]).parse(text)
    except (TemplateSyntaxError, RecursionError, MemoryError, ValueError) as e:
        return [("template that Jinja2 cannot parse (other engines may still render it)", str(e)[:80], 0)]
    return list(_walk(tree, nodes))


def _walk(tree: Any, nodes: Any) -> Iterator[tuple[str, str, int]]:
    aliases = set(GADGETS)
    consts: dict[str, Any] = {}
    for node in tree.find_all(nodes.Assign):  # {% set u = '_' %}: names later used to build attribute names
        if isinstance(node.target, nodes.Name):
            if _refers_to(node.node, aliases, nodes):
                aliases.add(node.target.name)  # {% set g = lipsum %}: g is the gadget now
            value = _fold(node.node, nodes, consts=consts)
            if value is not None:
                consts[node.target.name] = value
    for count, node in enumerate(tree.find_all(nodes.Node)):
        if count > _MAX_NODES:
            yield ("template too large to analyse fully", "", 0)
            return
        line = getattr(node, "lineno", 0) or 0
        if isinstance(node, nodes.Getattr):
            if node.attr.startswith("_"):
                yield ("dunder or private attribute access", f".{node.attr}", line)
            elif _refers_to(node.node, aliases, nodes):
                yield ("attribute access on a Jinja global (sandbox-escape gadget)", f".{node.attr}", line)
        elif isinstance(node, nodes.Getitem):
            name = _fold(node.arg, nodes, consts=consts)
            if isinstance(name, str) and name.startswith("_"):
                yield ("dunder or private item built from constants", repr(name[:40]), line)
            elif _refers_to(node.node, aliases, nodes):
                yield ("item access on a Jinja global (sandbox-escape gadget)", repr(name)[:40], line)
        elif isinstance(node, nodes.Filter) and node.name in _ATTRIBUTE_FILTERS:
            yield from _attribute_filter(node, nodes, line, consts)


def _attribute_filter(node: Any, nodes: Any, line: int, consts: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    keyword = _ATTRIBUTE_FILTERS[node.name]
    names = [kw.value for kw in node.kwargs if keyword and kw.key == keyword]
    if node.name in ("attr", "selectattr", "rejectattr"):
        names += node.args[:1]
    for value in names:
        name = _fold(value, nodes, consts=consts)
        if name is None and node.name == "attr":
            yield ("attr() filter with a computed name", "|attr(...)", line)
        elif isinstance(name, str) and (name.startswith("_") or "._" in name):
            yield (f"{node.name}() filter fetching a private attribute", repr(name[:40]), line)


def _refers_to(node: Any, aliases: set[str], nodes: Any) -> bool:
    """`node` is a gadget global, an alias of one, or an attribute/item/call chain starting at one."""
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        node = node.node
    return isinstance(node, nodes.Name) and node.name in aliases


def _fold(node: Any, nodes: Any, depth: int = 0, consts: dict[str, Any] | None = None) -> Any:
    """The constant value of a string/number expression, as Jinja would compute it; None when not constant."""
    if depth > 50 or node is None:
        return None
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Name):
        return (consts or {}).get(node.name)
    if isinstance(node, nodes.Concat):
        parts = [_fold(n, nodes, depth + 1, consts) for n in node.nodes]
        return _bounded("".join(str(p) for p in parts)) if all(p is not None for p in parts) else None
    if isinstance(node, nodes.Add | nodes.Mul):
        left, right = _fold(node.left, nodes, depth + 1, consts), _fold(node.right, nodes, depth + 1, consts)
        return _arith(node, left, right, nodes)
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [_fold(n, nodes, depth + 1, consts) for n in node.items]
        return items if all(i is not None for i in items) else None
    if isinstance(node, nodes.Filter):
        return _fold_filter(node, nodes, depth, consts)
    return None


def _arith(node: Any, left: Any, right: Any, nodes: Any) -> Any:
    if left is None or right is None:
        return None
    if isinstance(node, nodes.Add) and isinstance(left, str) and isinstance(right, str):
        return _bounded(left + right)
    if isinstance(node, nodes.Mul):
        text, times = (left, right) if isinstance(left, str) else (right, left)
        if isinstance(text, str) and isinstance(times, int) and 0 <= times * len(text) <= _MAX_FOLDED:
            return text * times
    return None


def _fold_filter(node: Any, nodes: Any, depth: int, consts: dict[str, Any] | None) -> Any:
    value = _fold(node.node, nodes, depth + 1, consts)
    args = [_fold(a, nodes, depth + 1, consts) for a in node.args]
    if value is None or any(a is None for a in args):
        return None
    name = node.name
    if name == "format" and isinstance(value, str) and "*" not in value and len(value) < 256:
        if any(isinstance(a, int) and not 0 <= a < 0x110000 for a in args):
            return None
        try:  # printf-style with small literal arguments only ('%c'|format(95) is '_')
            return _bounded(value % tuple(args))
        except (TypeError, ValueError, OverflowError):
            return None
    if name == "join" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        separator = args[0] if args and isinstance(args[0], str) else ""
        return _bounded(separator.join(value))
    if name in ("lower", "upper", "string", "trim", "reverse") and isinstance(value, str):
        return {"lower": value.lower(), "upper": value.upper(), "string": value, "trim": value.strip(),
                "reverse": value[::-1]}[name]
    if name == "replace" and isinstance(value, str) and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
        return _bounded(value.replace(args[0], args[1]))
    return None


def _bounded(text: str) -> str | None:
    return text if len(text) <= _MAX_FOLDED else None
