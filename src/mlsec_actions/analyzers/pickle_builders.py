"""Calls the symbolic pickle machine evaluates itself, so what a pickle builds at load time can be judged.

Each builder is a pure function of literal arguments that only builds a value (no import, no attribute
fetched from its arguments, no callback): text codecs, `bytes` of a list, and the `str` methods a payload
uses to assemble an import name (`"".join(["o", "s"])`, `"OS".lower()`, `str.replace`). Their results are
what the loader would get, so a nested payload built from literals is scanned, and a `STACK_GLOBAL` whose
operands were built this way imports a name that is judged like any other (`os.system` stays critical).
Anything else (a non-literal argument, a result larger than `MAX_TEXT`) is OPAQUE: the machine then keeps
its high fallback (`pickle/dynamic-global`, `pickle/computed-argument`).
"""

from __future__ import annotations

from collections.abc import Callable

from mlsec_actions.analyzers.pickle_values import OPAQUE

Builder = Callable[[tuple[object, ...]], object]
"""Computes a call's result from its arguments, or returns OPAQUE."""

MAX_ITEMS = 256 * 1024  # list items turned into bytes by `bytes(list)`
MAX_TEXT = 1 << 16      # characters a string builder may produce
_TEXT_CODECS = frozenset({"latin1", "latin-1", "iso-8859-1", "utf-8", "utf8", "ascii"})
# str methods of one string (and string or int arguments) that return a string no longer than MAX_TEXT
# once their inputs are bounded; width-taking ones (center, zfill...) are left out: a width is a size claim.
_STR_METHODS = frozenset({"lower", "upper", "casefold", "swapcase", "title", "capitalize", "strip", "lstrip",
                          "rstrip", "removeprefix", "removesuffix"})


def _codec(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    name = value.lower().replace("_", "-")
    return name if name in _TEXT_CODECS else None


def _encode(args: tuple[object, ...]) -> object:
    text, enc = (*args, "utf-8")[:2]
    codec = _codec(enc)
    if isinstance(text, str) and codec is not None:
        try:
            return text.encode(codec, errors="strict")
        except UnicodeEncodeError:
            return OPAQUE
    return OPAQUE


def _decode(args: tuple[object, ...]) -> object:
    raw, enc = (*args, "utf-8")[:2]
    codec = _codec(enc)
    if isinstance(raw, bytes) and codec is not None and len(raw) <= MAX_TEXT:
        try:
            return raw.decode(codec, errors="strict")
        except UnicodeDecodeError:
            return OPAQUE
    return OPAQUE


def _to_bytes(args: tuple[object, ...]) -> object:
    if not args:
        return b""
    value = args[0]
    if isinstance(value, bytes):
        return value
    if isinstance(value, list | tuple) and len(value) < MAX_ITEMS and all(
            isinstance(i, int) and 0 <= i < 256 for i in value):
        return bytes(value)
    if isinstance(value, str) and len(args) > 1:
        return _encode(args)
    return OPAQUE


def _to_str(args: tuple[object, ...]) -> object:
    if not args:
        return ""
    value = args[0]
    if len(args) == 1 and type(value) is str:
        return value
    if len(args) == 1 and type(value) is int and -(10 ** 18) < value < 10 ** 18:
        return str(value)
    if len(args) >= 2 and isinstance(value, bytes):
        return _decode(args)
    return OPAQUE


def _join(args: tuple[object, ...]) -> object:
    if len(args) != 2 or not isinstance(args[0], str) or not isinstance(args[1], list | tuple):
        return OPAQUE
    sep, items = args[0], [i for i in args[1] if type(i) is str]
    if len(items) != len(args[1]):
        return OPAQUE
    size = sum(len(i) for i in items) + len(sep) * max(len(items) - 1, 0)
    return sep.join(items) if size <= MAX_TEXT else OPAQUE


def _replace(args: tuple[object, ...]) -> object:
    if len(args) not in (3, 4) or not all(type(a) is str for a in args[:3]):
        return OPAQUE
    text, old, new = args[:3]
    count = args[3] if len(args) == 4 else -1
    if type(count) is not int:
        return OPAQUE
    assert isinstance(text, str) and isinstance(old, str) and isinstance(new, str)
    if (len(text) + 1) * max(len(new), 1) > MAX_TEXT:
        return OPAQUE  # the worst case ("" replaced everywhere) stays bounded
    return text.replace(old, new, count)


def _method(name: str) -> Builder:
    def build(args: tuple[object, ...]) -> object:
        if not args or not all(type(a) is str for a in args) or len(args) > 2:
            return OPAQUE
        text = args[0]
        assert isinstance(text, str)
        return getattr(text, name)(*args[1:]) if len(text) <= MAX_TEXT else OPAQUE
    return build


def _getitem(args: tuple[object, ...]) -> object:
    if len(args) != 2:
        return OPAQUE
    container, key = args
    if isinstance(container, list | tuple | str) and type(key) is int and -len(container) <= key < len(container):
        return container[key]
    if isinstance(container, dict):
        try:
            return container.get(key, OPAQUE)
        except TypeError:
            return OPAQUE
    return OPAQUE


def _builders() -> dict[tuple[str, str], Builder]:
    table: dict[tuple[str, str], Builder] = {
        ("_codecs", "encode"): _encode, ("codecs", "encode"): _encode,
        ("_codecs", "decode"): _decode, ("codecs", "decode"): _decode,
        ("builtins", "bytes"): _to_bytes, ("builtins", "bytearray"): _to_bytes,
        ("__builtin__", "bytearray"): _to_bytes, ("builtins", "str"): _to_str,
        ("builtins", "bytes.decode"): _decode, ("builtins", "str.join"): _join,
        ("builtins", "str.replace"): _replace, ("operator", "getitem"): _getitem,
        ("_operator", "getitem"): _getitem, ("builtins", "dict.get"): _getitem,
        ("builtins", "list.__getitem__"): _getitem, ("builtins", "tuple.__getitem__"): _getitem,
    }
    for name in _STR_METHODS:
        table[("builtins", f"str.{name}")] = _method(name)
    return table


BUILDERS = _builders()
"""(module, name) as the pickle writes it -> the builder that computes the call's result."""
