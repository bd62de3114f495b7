"""In-house secret scanner: the credential formats ML and data teams leak, in one pass per file.

A file is read once and lower-cased once; a format's regex runs only on files holding one of its
keywords (its prefix, or the vendor's name), so most files cost a few substring searches. A match is
a finding unless its value is a placeholder: a documented
example, a template or variable reference, one character repeated (`tools/decoys.py`), a word such as
`password` standing for one, a value whose randomness is below the rule's entropy floor, or a token
whose CRC32 checksum does not match (GitHub, npm). Every match dropped is a coverage gap (never silent).
The value itself is never copied into a finding: the message names the format and the line only.
"""

from __future__ import annotations

import bisect
import re
import time
from pathlib import Path

from mlsec_actions.analyzers import source_files
from mlsec_actions.analyzers.secrets_rules import RULES, SARIF_RULES, SecretRule
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, ToolRun, ToolStatus
from mlsec_actions.tools import decoys

TOOL = "mlsec-secrets"
VERSION = "1"
_WORDS = re.compile(r"(?i)^(?:your|my|the|some|db|user)?[_-]?(?:pass(?:word|wd)?|pwd|secret|token|key|changeme|"
                    r"redacted|hidden|placeholder|dummy|fake|sample|example)s?(?:[_-]?here|\d{0,3})?$|^\*+$|^\.{3,}$")


_COMPILED = tuple(re.compile(r.pattern) for r in RULES)
_REFERENCE = re.compile(r"^(?:\{[^{}]*\}|\$[A-Za-z_{(].*|%\(?\w*\)?s|<[^<>]*>|.*\*{3}.*|.*\.{3}.*)$")


entropy = decoys.entropy
base62 = decoys.base62
checksum_ok = decoys.checksum_ok


def _why_not(rule: SecretRule, value: str) -> str | None:
    """Why a match is not a credential, or None when it is one."""
    why = decoys.value_placeholder(value)
    if why:
        return why
    if _REFERENCE.match(value):
        return "a variable reference, a masked or an elided value"
    if _WORDS.match(value):
        return "a word standing for a value"
    random_part = value[len(rule.prefix):]
    if rule.min_entropy and entropy(random_part) < rule.min_entropy:
        return f"entropy below {rule.min_entropy:g} bits per character"
    if rule.checksum == "crc32-base62" and not checksum_ok(value):
        return "its CRC32 checksum does not match (not an issued token)"
    return None


_CONTAINERS = frozenset({"connection-uri-password", "token-in-url"})


def _specific(index: int, value: str) -> int:
    """A password or URL token that is itself a known format (`https://x:ghp_...@`) is reported as that format."""
    if RULES[index].name in _CONTAINERS:
        for other, rule in enumerate(RULES):
            if rule.name not in _CONTAINERS and not rule.files and _COMPILED[other].fullmatch(value):
                return other
    return index


def _matches(name: str, text: str) -> list[tuple[int, int, int]]:
    """(start, end, rule index) of each value, earlier rules first where two overlap."""
    lower = text.lower()
    spans = []
    for index, rule in enumerate(RULES):
        if (rule.files and name not in rule.files) or not any(k in lower for k in rule.triggers):
            continue
        spans += [(m.start("v"), m.end("v"), index) for m in _COMPILED[index].finditer(text)]
    kept: list[tuple[int, int, int]] = []
    for start, end, index in sorted(spans, key=lambda s: (s[2], s[0])):
        if not any(start < k_end and k_start < end for k_start, k_end, _ in kept):
            kept.append((start, end, index))
    return sorted(kept)


def scan_text(path: str, text: str, gaps: list[CoverageGap]) -> list[Finding]:
    """Findings in one file's text; placeholders dropped go to `gaps`."""
    matches = _matches(path.rsplit("/", 1)[-1], text)
    if not matches:
        return []
    starts = [0, *(m.end() for m in re.finditer("\n", text))]
    found: list[Finding] = []
    for start, end, index in matches:
        value = text[start:end]
        line, last = bisect.bisect_right(starts, start), bisect.bisect_right(starts, end - 1)
        index = _specific(index, value)
        rule = RULES[index]
        why = _why_not(rule, value)
        if why:
            gaps.append(CoverageGap(GapKind.ALLOW_RULE, f"secret/{rule.name} match at line {line} dropped as a "
                                    f"placeholder ({why})", path=path))
            continue
        found.append(Finding(rule=SARIF_RULES[index], severity=rule.severity,
                             message=f"{rule.title} committed in {path} (line {line}); value withheld",
                             location=Location(path, line, last)))
    return found


def scan(root: Path, timeout: float = 600.0) -> tuple[list[Finding], ToolRun]:
    """Scan every text file under `root`; returns the findings and this analyzer's record.

    Past `timeout` seconds the walk stops and the run is a TIMEOUT (fail closed), with what was found so far.
    """
    deadline = time.monotonic() + timeout
    gaps: list[CoverageGap] = []
    findings: list[Finding] = []
    for source in source_files.files(root, gaps):
        if time.monotonic() > deadline:
            return findings, ToolRun(TOOL, ToolStatus.TIMEOUT, version=VERSION, gaps=tuple(gaps),
                                     message=f"timed out after {timeout:g}s; the rest of the tree was not scanned")
        findings.extend(scan_text(source.path, source.text, gaps))
    return findings, ToolRun(TOOL, ToolStatus.OK, version=VERSION, gaps=tuple(gaps))
