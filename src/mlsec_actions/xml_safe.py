"""Bounded, entity-safe XML parsing for the reports we read (nmap `-oX`, OpenSCAP results, Nessus `.nessus`).

Every report is hostile, even one our own scanner wrote (a scanned service chooses its banner). The
parser is expat driven by hand so nothing but elements, attributes and text is honoured:
- any entity declaration (internal or external, general or parameter) is refused, which stops billion-laughs
  expansion before it starts, and so is an internal DTD subset or a DOCTYPE naming an external DTD
  (nmap writes a bare `<!DOCTYPE nmaprun>`, which is allowed);
- external entities are never fetched;
- bytes, nesting depth, element count and text kept are bounded.

Only the subtrees under elements named in `keep` are built (an OpenSCAP results file carries the whole
benchmark; the stage needs its TestResult), so memory follows what is used, not what was written.
A violation is `XmlRefused`, whose message says what and where; callers turn it into a failed tool run
or an `InputError` naming the file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Collection
from dataclasses import dataclass
from xml.parsers import expat


class XmlRefused(ValueError):
    """The document is not XML we read: malformed, over a limit, or using DTD features."""


@dataclass(frozen=True)
class Limits:
    """How much of a document is read."""

    max_bytes: int = 64 * 1024 * 1024
    """The whole document."""
    max_depth: int = 64
    """Element nesting (nmap nests 5 deep, XCCDF results about 8)."""
    max_elements: int = 2_000_000
    """Elements seen, kept or not."""
    max_text: int = 16 * 1024 * 1024
    """Characters of text and attribute values kept in the built subtrees."""


def local(tag: str) -> str:
    """A tag without its `{namespace}` part."""
    return tag.rpartition("}")[2]


def parse(data: bytes, keep: Collection[str] | None = None, limits: Limits | None = None) -> list[ET.Element]:
    """The document's subtrees rooted at elements whose local name is in `keep` (outermost only), in order;
    `keep=None`: the whole document, as a one-element list. Raises `XmlRefused`."""
    lim = limits or Limits()
    if len(data) > lim.max_bytes:
        raise XmlRefused(f"{len(data)} bytes; the limit is {lim.max_bytes}")
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    builder = _Builder(keep, lim)

    def doctype(name: str, sysid: str | None, pubid: str | None, internal: int) -> None:
        if internal or sysid or pubid:
            raise XmlRefused(f"DOCTYPE {name[:40]!r} with a DTD (internal subset or external id) is not read")

    def entity(name: str, *_: object) -> None:
        raise XmlRefused(f"entity declaration {str(name)[:40]!r} refused")

    def external(*_: object) -> int:
        raise XmlRefused("external entity reference refused")

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.UnparsedEntityDeclHandler = entity
    parser.ExternalEntityRefHandler = external
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.text
    parser.buffer_text = True
    parser.ordered_attributes = False
    try:
        parser.Parse(data, True)
    except expat.ExpatError as e:
        raise XmlRefused(f"not well-formed XML: {expat.ErrorString(e.code)} at line {e.lineno}") from None
    except RecursionError:  # cannot happen with the depth bound; kept so a bug is a refusal, not a crash
        raise XmlRefused("nested too deeply") from None
    return builder.roots


class _Builder:
    def __init__(self, keep: Collection[str] | None, lim: Limits) -> None:
        self.keep = None if keep is None else frozenset(keep)
        self.lim = lim
        self.depth = 0
        self.elements = 0
        self.kept_text = 0
        self.stack: list[tuple[ET.Element, int]] = []
        self.roots: list[ET.Element] = []

    def _count(self, n: int) -> None:
        self.kept_text += n
        if self.kept_text > self.lim.max_text:
            raise XmlRefused(f"more than {self.lim.max_text} characters of text")

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        self.elements += 1
        if self.depth > self.lim.max_depth:
            raise XmlRefused(f"nested deeper than {self.lim.max_depth} elements")
        if self.elements > self.lim.max_elements:
            raise XmlRefused(f"more than {self.lim.max_elements} elements")
        if not self.stack and self.keep is not None and local(tag) not in self.keep:
            return
        self._count(sum(len(k) + len(v) for k, v in attrs.items()))
        element = ET.Element(tag, attrs)
        if self.stack:
            self.stack[-1][0].append(element)
        else:
            self.roots.append(element)
        self.stack.append((element, self.depth))

    def end(self, tag: str) -> None:
        if self.stack and self.stack[-1][1] == self.depth:
            self.stack.pop()
        self.depth -= 1

    def text(self, data: str) -> None:
        if not self.stack:
            return
        self._count(len(data))
        element = self.stack[-1][0]
        if len(element):
            last = element[-1]
            last.tail = (last.tail or "") + data
        else:
            element.text = (element.text or "") + data
