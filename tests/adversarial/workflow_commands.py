"""A model of how GitHub's runner finds workflow commands in a step's output, stricter than the runner.

From actions/runner (`src/Runner.Common/ActionCommand.cs`, `src/Runner.Worker/ActionCommandManager.cs`):
output is split into lines at CR or LF; `TryParseV2` trims leading whitespace and needs `::` at the
start; the legacy `TryParse` finds `##[` ANYWHERE in the line; names are case-insensitive and
`::stop-commands::TOKEN` registers any TOKEN as a command, so every name counts here. The runner compares
strings culture-sensitively (ICU), which ignores format and control characters: the model drops every
such character before looking, so `:<U+200B>:` counts as `::`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_RUNNER_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_IGNORED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt), whatever their category.
_DEFAULT_IGNORABLE = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
                      (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
                      (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
                      (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
                      (0xE0000, 0xE0FFF))


def _ignored(c: str) -> bool:
    code = ord(c)
    return (unicodedata.category(c) in _IGNORED_CATEGORIES
            or any(lo <= code <= hi for lo, hi in _DEFAULT_IGNORABLE))


def runner_lines(text: str) -> list[str]:
    """The lines the runner reads from `text`."""
    return _RUNNER_LINE_BREAK.split(text)


def _visible(line: str) -> str:
    return "".join(c for c in line if c in "\t\n\r " or not _ignored(c))


def command_in_line(line: str) -> str | None:
    """The command a runner could read from one line (`::x` form or `##[x]` form), else None."""
    seen = _visible(line)
    trimmed = seen.lstrip()  # Python's whitespace is a superset of .NET's char.IsWhiteSpace
    if trimmed.startswith("::"):
        return trimmed[2:].split("::", 1)[0].split(" ", 1)[0] or "(empty)"
    at = seen.find("##[")
    if at >= 0:
        return seen[at + 3:].split("]", 1)[0].split(" ", 1)[0] or "(empty)"
    return None


def commands_in(text: str) -> list[tuple[int, str]]:
    """Every (line number, command) a runner could read from `text` (a log, a summary, an output file)."""
    found = []
    for n, line in enumerate(runner_lines(text), 1):
        cmd = command_in_line(line)
        if cmd is not None:
            found.append((n, cmd))
    return found


def fragment_is_inert(text: str) -> bool:
    """True when `text` cannot form a command wherever it is placed in a line (no `::`, no `##[`,
    no `%XX` escape the runner would decode, no line break)."""
    seen = _visible(text)
    return ("::" not in seen and "##[" not in seen and not re.search(r"%[0-9A-Fa-f]{2}", seen)
            and not _RUNNER_LINE_BREAK.search(text))


@dataclass(frozen=True)
class Command:
    """One workflow command as the runner would read it."""

    form: str
    """`v2` (`::name props::data`) or `legacy` (`##[name props]data`)."""
    name: str
    """The command name, lower case."""
    props: dict[str, str]
    """Properties, unescaped as the runner does."""
    data: str
    """The data, unescaped as the runner does."""


def _unescape(text: str, pairs: tuple[tuple[str, str], ...]) -> str:
    for escaped, raw in pairs:
        text = text.replace(escaped, raw)
    return text


_DATA = (("%0D", "\r"), ("%0A", "\n"), ("%25", "%"))
_PROPERTY = (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))


def parse_command(line: str) -> Command | None:
    """The command in one line, parsed like actions/runner's TryParseV2 then TryParse, or None."""
    seen = _visible(line)
    trimmed = seen.lstrip()
    if trimmed.startswith("::"):
        end = trimmed.find("::", 2)
        if end >= 0:
            info, data = trimmed[2:end], trimmed[end + 2:]
            name, _, rest = info.partition(" ")
            props = {}
            for prop in filter(None, rest.strip().split(",")):
                key, sep, value = prop.partition("=")
                if sep and key and value:
                    props[key] = _unescape(value, _PROPERTY)
            return Command("v2", name.lower(), props, _unescape(data, _DATA))
    at = seen.find("##[")
    if at >= 0:
        end = seen.find("]", at)
        if end >= 0:
            name = seen[at + 3:end].partition(" ")[0]
            return Command("legacy", name.lower(), {}, seen[end + 1:])
    return None
