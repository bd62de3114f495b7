"""The values the symbolic pickle machine puts on its stack, besides plain Python literals."""

from __future__ import annotations

from dataclasses import dataclass


class _Mark:
    """The MARK sentinel on the symbolic stack."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MARK"


class _Opaque:
    """A value the walker does not model (a float, a persistent id, a buffer...)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "OPAQUE"


MARK = _Mark()
OPAQUE = _Opaque()


@dataclass(frozen=True, slots=True)
class Global:
    """One import a load would perform."""

    module: str
    """Module path, as written in the pickle."""
    name: str
    """Attribute name (may be dotted: protocol 4 resolves it attribute by attribute)."""
    offset: int
    """Byte offset of the opcode that imported it, from the start of the blob."""
    opcode: str
    """GLOBAL, STACK_GLOBAL or INST."""

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True, slots=True)
class Region:
    """A literal too large to copy: where its bytes are, so a nested scan can walk them in place."""

    start: int
    """Offset of the first payload byte in the walked data."""
    end: int
    """Offset after the last payload byte."""
    codec: str
    """How the file encodes it: "bytes" (raw), "utf-8" (BINUNICODE*), "raw-unicode-escape" (UNICODE)."""


class Call:
    """A REDUCE/NEWOBJ/OBJ/INST result: a callable applied to arguments; BUILD may later give it a state.

    Mutable on purpose: BUILD sets `state` on the object the stack and the memo already share.
    """

    __slots__ = ("args", "func", "offset", "state")

    def __init__(self, func: object, args: object, offset: int) -> None:
        self.func = func
        """What was called (a `Global` when resolvable)."""
        self.args = args
        """Its arguments (a tuple when resolvable)."""
        self.offset = offset
        """Byte offset of the calling opcode."""
        self.state: object = None
        """The state a BUILD gave the result, if any."""

    def __repr__(self) -> str:
        return f"Call({self.func!r}, {self.args!r}, {self.offset})"
