"""GGUF: parse the header and metadata, stop before tensor data, and check chat templates.

A GGUF chat template is Jinja that inference servers render; rendered outside a sandbox (as in
CVE-2024-34359), a template that reaches `__globals__` or `__subclasses__` runs code on the host.
Counts and lengths are bounded by the file size and fixed caps, so garbage cannot allocate gigabytes.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from mlsec_actions.analyzers import jinja_ast
from mlsec_actions.analyzers.base import FORMATS_DOCS, Blob, model_rule
from mlsec_actions.findings import Finding, Severity

MAX_KEY = 65_535
MAX_STRING = 64 * 1024 * 1024
MAX_KV = 1_000_000
MAX_DEPTH = 4
KEPT_STRING = 16 * 1024 * 1024
"""Chat templates longer than this are a finding, not analysed (real ones are a few KB; a 1 MiB one is not
skipped)."""

# type id -> (struct code, size); 8 = string, 9 = array
_SCALARS = {0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4), 6: ("f", 4),
            7: ("?", 1), 10: ("Q", 8), 11: ("q", 8), 12: ("d", 8)}
STRING, ARRAY = 8, 9


_rule = functools.partial(model_rule, ("model", "gguf"), FORMATS_DOCS)


MALFORMED = _rule(
    "gguf/malformed-header", "GgufMalformedHeader", "GGUF header or metadata is malformed",
    "The GGUF magic, version, counts or a metadata entry are invalid or truncated, so the metadata (and the "
    "chat template in it) could not be fully checked. Parser bugs in loaders are reached through such files.",
    "Re-download the model from its publisher and compare its digest; do not serve a file that fails to parse.",
    ("correctness",))
TEMPLATE = _rule(
    "gguf/chat-template-injection", "GgufChatTemplateInjection",
    "GGUF chat template contains a Jinja sandbox escape",
    "The chat template reaches Python internals (`__class__`, `__globals__`, `__subclasses__`, `lipsum`, "
    "`cycler`...). Servers that render templates outside a sandbox run attacker code when the model loads "
    "or answers (CVE-2024-34359).",
    "Replace `tokenizer.chat_template` with the publisher's template (plain loops over `messages`), and "
    "render templates only in `jinja2.sandbox.ImmutableSandboxedEnvironment`.",
    ("jinja", "ssti", "code-execution"))

RULES = (MALFORMED, TEMPLATE)

# (pattern, what it is, severity); checked on the raw template text.
_TEMPLATE_PATTERNS: tuple[tuple[re.Pattern[str], str, Severity], ...] = tuple(
    (re.compile(p, re.IGNORECASE), label, sev) for p, label, sev in (
        (r"__(class|subclasses|globals|builtins|import|mro|base|bases|init|getattribute|dict|code|reduce|"
         r"loader|spec|func|self)__", "dunder attribute access", Severity.CRITICAL),
        (r"\\x5f|\\u005f|\\137|\\U0000005f", "escaped underscore (obfuscated dunder)", Severity.CRITICAL),
        (r"\b(lipsum|cycler|joiner|namespace|url_for|get_flashed_messages)\s*(\.|\[|\|\s*attr)",
         "attribute access on a Jinja global (sandbox-escape gadget)", Severity.CRITICAL),
        (r"\bself\s*\.\s*_", "private attribute of the template reference", Severity.CRITICAL),
        (r"request\s*\.\s*application|config\s*\.\s*(from_object|from_pyfile|items)",
         "Flask request/config gadget", Severity.CRITICAL),
        (r"\bos\s*\.\s*(popen|system|exec\w*|spawn\w*)|\bsubprocess\b|\bpopen\s*\(",
         "OS command execution", Severity.CRITICAL),
        (r"\b(eval|exec|compile)\s*\(", "eval/exec call", Severity.CRITICAL),
        (r"\.\s*mro\s*\(|\bbuiltins\b|\bimportlib\b", "Python internals", Severity.HIGH),
        (r"\|\s*attr\s*\(", "attr() filter (dynamic attribute access)", Severity.HIGH),
    ))


@dataclass(frozen=True)
class TemplateIssue:
    """One sandbox-escape pattern found in a template."""

    label: str
    """What the pattern is."""
    severity: Severity
    """How bad."""
    excerpt: str
    """The matched text with some context, on one line."""
    offset: int
    """Character offset of the match in the template."""


def template_issues(text: str) -> list[TemplateIssue]:
    """Jinja sandbox escapes in a template: Jinja2's syntax tree walked (`jinja_ast`), plus text patterns."""
    out: list[TemplateIssue] = []
    for label, excerpt, line in jinja_ast.issues(text) or []:
        if label not in {i.label for i in out}:
            severity = Severity.MEDIUM if "cannot parse" in label or "too large" in label else Severity.CRITICAL
            out.append(TemplateIssue(label, severity, f"{excerpt} (line {line})" if line else excerpt, 0))
    for pattern, label, severity in _TEMPLATE_PATTERNS:
        match = pattern.search(text)
        if match:
            start = max(0, match.start() - 30)
            excerpt = " ".join(text[start:match.end() + 30].split())
            out.append(TemplateIssue(label, severity, excerpt, match.start()))
    return out


def describe(issues: list[TemplateIssue]) -> str:
    """A one-line summary of the first few issues, for a finding message."""
    return "; ".join(f"{i.label} near `{i.excerpt.replace('`', chr(39))}`" for i in issues[:3])


class _Malformed(Exception):
    """The file stops making sense as GGUF."""


class _Reader:
    """Little- or big-endian reads from a stream, bounded by the blob size."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh = fh
        self.size = size
        self.pos = 0
        self.order = "<"

    def read(self, n: int) -> bytes:
        if n > self.size - self.pos:
            raise _Malformed(f"truncated at byte {self.pos}: needs {n} more bytes, file has {self.size - self.pos}")
        data = self.fh.read(n)
        if len(data) < n:
            raise _Malformed(f"truncated at byte {self.pos}")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n > self.size - self.pos:
            raise _Malformed(f"truncated at byte {self.pos}: skips {n} bytes past the end")
        self.fh.seek(n, 1)
        self.pos += n

    def rewind(self, n: int) -> None:
        self.fh.seek(-n, 1)
        self.pos -= n

    def unpack(self, code: str) -> int | float | bool:
        fmt = self.order + code
        value: int | float | bool = struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]
        return value

    def uint(self, wide: bool) -> int:
        return int(self.unpack("Q" if wide else "I"))


def analyze(blob: Blob) -> list[Finding]:
    """Parse GGUF metadata; report malformed headers and dangerous chat templates."""
    findings: list[Finding] = []
    with blob.open() as fh:
        reader = _Reader(fh, blob.size)
        try:
            for key, text in _templates(reader):
                findings += _check_template(blob, key, text)
        except _Malformed as e:
            findings.append(Finding(rule=MALFORMED, message=f"GGUF metadata is malformed: {e}",
                                    severity=Severity.MEDIUM, location=blob.location()))
    return findings


def _templates(r: _Reader) -> Iterator[tuple[str, str]]:
    """Yield (key, template text) for every chat-template string while walking all metadata."""
    if r.read(4) != b"GGUF":
        raise _Malformed("missing GGUF magic")
    raw_version = r.read(4)
    version = int.from_bytes(raw_version, "little")
    if version not in (1, 2, 3) and int.from_bytes(raw_version, "big") in (1, 2, 3):
        r.order, version = ">", int.from_bytes(raw_version, "big")
    if version not in (1, 2, 3):
        raise _Malformed(f"unsupported version {version}")
    wide = version >= 2
    tensors = r.uint(wide)
    kv_count = r.uint(wide)
    if kv_count > MAX_KV or kv_count > r.size:
        raise _Malformed(f"metadata count {kv_count} is implausible")
    if tensors > r.size:
        raise _Malformed(f"tensor count {tensors} is larger than the file")
    for _ in range(kv_count):
        key = _string(r, wide, MAX_KEY).decode("utf-8", "replace")
        vtype = r.uint(False)
        wanted = "chat_template" in key
        for text in _value(r, vtype, wide, wanted, depth=0):
            yield key, text


def _string(r: _Reader, wide: bool, limit: int, keep: bool = True) -> bytes:
    length = r.uint(wide)
    if length > limit:
        raise _Malformed(f"string of {length} bytes at byte {r.pos} exceeds the {limit}-byte limit")
    if not keep:
        r.skip(length)
        return b""
    return r.read(length)


def _value(r: _Reader, vtype: int, wide: bool, wanted: bool, depth: int) -> Iterator[str]:
    """Consume one value; yield its strings when `wanted` (a chat-template key)."""
    if vtype in _SCALARS:
        r.skip(_SCALARS[vtype][1])
    elif vtype == STRING:
        # A template is a few KB: refuse a huge one before reading it, skip other strings unread.
        data = _string(r, wide, KEPT_STRING if wanted else MAX_STRING, keep=wanted)
        if wanted:
            yield data.decode("utf-8", "replace")
    elif vtype == ARRAY:
        if depth >= MAX_DEPTH:
            raise _Malformed(f"arrays nested deeper than {MAX_DEPTH} at byte {r.pos}")
        etype = r.uint(False)
        count = r.uint(wide)
        if count > r.size - r.pos:
            raise _Malformed(f"array of {count} items at byte {r.pos} is larger than the file")
        if etype in _SCALARS:
            r.skip(count * _SCALARS[etype][1])
        elif etype == STRING and not wanted:
            _skip_strings(r, count, wide)
        elif etype in (STRING, ARRAY):
            for _ in range(count):
                yield from _value(r, etype, wide, wanted, depth + 1)
        else:
            raise _Malformed(f"unknown array element type {etype} at byte {r.pos}")
    else:
        raise _Malformed(f"unknown value type {vtype} at byte {r.pos}")


def _skip_strings(r: _Reader, count: int, wide: bool) -> None:
    """Skip `count` strings (token lists hold hundreds of thousands) reading blocks, not one call per string."""
    fmt = r.order + ("Q" if wide else "I")
    width = struct.calcsize(fmt)
    buf, off = b"", 0
    for _ in range(count):
        if len(buf) - off < width:
            buf = buf[off:] + r.read(min(1 << 20, r.size - r.pos) or width)
            off = 0
            if len(buf) < width:
                raise _Malformed(f"truncated string array at byte {r.pos}")
        length = struct.unpack_from(fmt, buf, off)[0]
        off += width
        if length > MAX_STRING:
            raise _Malformed(f"string of {length} bytes at byte {r.pos - len(buf) + off} exceeds the limit")
        if len(buf) - off >= length:
            off += length
        else:
            r.skip(length - (len(buf) - off))
            buf, off = b"", 0
    r.rewind(len(buf) - off)


def _check_template(blob: Blob, key: str, text: str) -> list[Finding]:
    issues = template_issues(text)
    if not issues:
        return []
    severity = max(i.severity for i in issues)
    return [Finding(rule=TEMPLATE, message=f"chat template `{key}` contains {describe(issues)}", severity=severity,
                    location=blob.location(key, kind="object"))]
