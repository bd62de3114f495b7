"""A bounded Dockerfile/Containerfile reader: instructions with their line numbers, never more than the limits.

What Docker's own parser does and a naive line reader gets wrong: the `# escape=` directive (a backtick
instead of a backslash), line continuations (with comment and blank lines inside them dropped), heredocs
(`RUN <<EOF ... EOF`, `<<-` stripping tabs, quoted delimiters), JSON (exec) form, and comments. The file is
hostile: it may be huge, have one endless line, an unterminated heredoc or bytes that are not UTF-8. Each
limit hit is recorded (`Parsed.problems`), and what it hides is never silently passed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_BYTES = 1024 * 1024
"""Bytes of a Dockerfile read; the rest is not linted (a problem, so a finding and a gap)."""
MAX_INSTRUCTION = 64 * 1024
"""Characters of one instruction (continuations and heredocs joined); longer ones are cut."""
MAX_INSTRUCTIONS = 10_000
"""Instructions read from one file."""

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z]+)\s*=\s*(\S*)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_.-]*)\2")
_HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})


@dataclass(frozen=True)
class Instruction:
    """One instruction of a Dockerfile."""

    keyword: str
    """The instruction, upper case (`FROM`, `RUN`, ...)."""
    args: str
    """Its arguments: continuation lines joined with a blank, comments inside them dropped."""
    line: int
    """1-based line of the keyword."""
    end_line: int
    """1-based last line (of its continuations and heredocs)."""
    heredocs: tuple[str, ...] = ()
    """The bodies of its heredocs, in order."""
    stage: int = 0
    """0-based index of the build stage (the `FROM`) it belongs to; -1 before the first FROM."""

    def words(self) -> list[str]:
        """Its arguments as words: the JSON (exec) form's strings, else split on blanks."""
        exec_form = self.exec_form()
        return exec_form if exec_form is not None else self.args.split()

    def exec_form(self) -> list[str] | None:
        """The JSON array form's strings (`RUN ["sh", "-c", "..."]`), or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return None
        return [str(v) for v in value] if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


@dataclass(frozen=True)
class Parsed:
    """A Dockerfile as read."""

    instructions: tuple[Instruction, ...]
    """Every instruction read, in order."""
    escape: str
    """The escape character (`\\` unless the `# escape=` directive says a backtick)."""
    problems: tuple[tuple[int, str], ...] = ()
    """(line, what) for each limit hit or part not understood: what follows it may not have been checked."""
    not_utf8: bool = False
    """Some bytes were not UTF-8 (read with replacement characters)."""

    @property
    def stages(self) -> int:
        """How many build stages (FROM instructions) it has."""
        return sum(1 for i in self.instructions if i.keyword == "FROM")


def parse(data: bytes) -> Parsed:
    """Read a Dockerfile's bytes (at most `MAX_BYTES` are considered; the caller reads no more than that + 1)."""
    problems: list[tuple[int, str]] = []
    if len(data) > MAX_BYTES:
        problems.append((1, f"file larger than {MAX_BYTES} bytes: only the first {MAX_BYTES} were linted"))
        data = data[:MAX_BYTES]
    try:
        text, not_utf8 = data.decode("utf-8"), False
    except UnicodeDecodeError:
        text, not_utf8 = data.decode("utf-8", errors="replace"), True
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    escape = _escape_directive(lines)
    out: list[Instruction] = []
    stage = -1
    i = 0
    while i < len(lines):
        if len(out) >= MAX_INSTRUCTIONS:
            problems.append((i + 1, f"more than {MAX_INSTRUCTIONS} instructions: the rest was not linted"))
            break
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i
        parts, i = _logical_line(lines, i, escape)
        joined = " ".join(parts)
        keyword, _, args = joined.partition(" ")
        keyword = keyword.upper()
        if not re.fullmatch(r"[A-Z]+", keyword):
            problems.append((start + 1, "a line that is not an instruction"))
            continue
        bodies: list[str] = []
        if keyword in _HEREDOC_KEYWORDS:
            for strip_tabs, _, delimiter in _HEREDOC.findall(args):
                body, i, closed = _heredoc(lines, i, delimiter, bool(strip_tabs))
                bodies.append(body)
                if not closed:
                    problems.append((start + 1, f"heredoc <<{delimiter} is never closed"))
        if len(args) + sum(map(len, bodies)) > MAX_INSTRUCTION:
            problems.append((start + 1, f"instruction longer than {MAX_INSTRUCTION} characters: cut there"))
            args = args[:MAX_INSTRUCTION]
            bodies = [b[:MAX_INSTRUCTION] for b in bodies]
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(keyword, args.strip(), start + 1, max(start + 1, i), tuple(bodies), stage))
    return Parsed(tuple(out), escape, tuple(problems), not_utf8)


def _escape_directive(lines: list[str]) -> str:
    """Parser directives are only read from the top of the file, before any comment or instruction."""
    for line in lines:
        match = _DIRECTIVE.match(line.strip())
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("`", "\\"):
            return match.group(2)
    return "\\"


def _logical_line(lines: list[str], i: int, escape: str) -> tuple[list[str], int]:
    """The instruction starting at line `i` with its continuations; returns (parts, index after it)."""
    parts: list[str] = []
    size = 0
    while i < len(lines):
        line = lines[i].rstrip()
        i += 1
        if parts and (not line.strip() or line.lstrip().startswith("#")):
            continue  # comment and blank lines inside a continuation are dropped, as Docker does
        continued = line.endswith(escape)
        piece = line[:-1] if continued else line
        if size < MAX_INSTRUCTION:
            parts.append(piece.strip())
            size += len(piece)
        if not continued:
            break
    return parts, i


def _heredoc(lines: list[str], i: int, delimiter: str, strip_tabs: bool) -> tuple[str, int, bool]:
    """A heredoc body starting at line `i`; returns (body, index after its closing line, closed)."""
    body: list[str] = []
    size = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        candidate = line.lstrip("\t") if strip_tabs else line
        if candidate.rstrip() == delimiter:
            return "\n".join(body), i, True
        if size < MAX_INSTRUCTION:
            body.append(candidate)
            size += len(candidate) + 1
    return "\n".join(body), i, False
