"""Prompt templates and system prompts: injection, jailbreaks, hidden text, exfiltration, canary leaks.

Prompts in a repository end up verbatim in an LLM's context. A template that tells the model to ignore
its instructions, hides text in invisible unicode, or renders a markdown image whose URL carries the
conversation is an attack that ships with the code. Checks are line-based regular expressions (the
Vigil idea), tuned to stay quiet on defensive wording ("never ignore previous instructions").
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import PurePosixPath

from mlsec_actions.analyzers.base import FORMATS_DOCS, Blob, model_rule
from mlsec_actions.analyzers.gguf import template_issues
from mlsec_actions.findings import Finding, Rule, Severity

MAX_BYTES = 2 * 1024 * 1024
MAX_PER_RULE = 20
TEXT_SUFFIXES = frozenset({".txt", ".md", ".prompt", ".jinja", ".jinja2", ".j2", ".yaml", ".yml", ".json",
                           ".tmpl", ".tpl", ".mustache", ".hbs", ".prompty", ""})


_rule = functools.partial(model_rule, ("llm", "prompt"), FORMATS_DOCS, precision="medium")


OVERRIDE = _rule(
    "prompt/instruction-override", "PromptInstructionOverride", "Prompt tells the model to ignore its instructions",
    "Text such as 'ignore all previous instructions' is the classic prompt-injection payload; in a template "
    "or system prompt it overrides whatever the application told the model.",
    "Remove the text; if it came from user or retrieved content, keep that content out of the system prompt.",
    ("injection",))
JAILBREAK = _rule(
    "prompt/jailbreak-persona", "PromptJailbreakPersona", "Prompt contains a jailbreak role override",
    "DAN-style role overrides ('you are now DAN', 'developer mode', 'no longer bound by rules') switch off "
    "the model's safety behaviour.", "Remove the role override from the prompt.", ("jailbreak",))
HIDDEN = _rule(
    "prompt/hidden-unicode", "PromptHiddenUnicode", "Prompt contains invisible or bidirectional control characters",
    "Zero-width, bidi-override and Unicode tag characters hide instructions from a human reviewer while the "
    "model still reads them (ASCII smuggling).",
    "Delete the invisible characters (`grep -P '[\\x{200B}-\\x{200F}\\x{202A}-\\x{202E}\\x{2066}-\\x{2069}]'`).",
    ("injection", "unicode"))
ENCODED = _rule(
    "prompt/encoded-instructions", "PromptEncodedInstructions", "Prompt contains base64-encoded instructions",
    "A base64 blob that decodes to instructions or commands smuggles a payload past reviews and filters.",
    "Remove the blob, or decode it and keep the plain text if it is legitimate.", ("injection", "obfuscation"))
MD_EXFIL = _rule(
    "prompt/markdown-image-exfiltration", "PromptMarkdownImageExfiltration",
    "Prompt renders a markdown image whose URL carries template data",
    "A markdown or HTML image with a template variable in its URL makes the chat client fetch the URL, "
    "sending the variable's content (conversation, secrets) to that host without a click.",
    "Remove the image, or serve images only from an allowlisted host with no dynamic URL parts.",
    ("exfiltration",))
EXFIL = _rule(
    "prompt/data-exfiltration", "PromptDataExfiltration", "Prompt sends data to an external URL",
    "The prompt tells the model to send or post data to a URL or address, or builds a URL from template data.",
    "Remove the instruction; outbound tools should only reach allowlisted endpoints.", ("exfiltration",))
TEMPLATE = _rule(
    "prompt/template-injection", "PromptTemplateInjection", "Prompt template contains a Jinja sandbox escape",
    "The template reaches Python internals (`__globals__`, `__subclasses__`...), which runs code when it is "
    "rendered outside a sandbox.", "Remove the expression; render templates in a sandboxed environment.",
    ("jinja", "ssti", "code-execution"))
CANARY = _rule(
    "prompt/canary-leak", "PromptCanaryLeak", "A canary token appears in a prompt or artefact",
    "A canary token placed in a system prompt shows up here, so the prompt (or data carrying it) leaked.",
    "Find how the canary got here, rotate the system prompt and its canary.", ("leak",))

RULES = (OVERRIDE, JAILBREAK, HIDDEN, ENCODED, MD_EXFIL, EXFIL, TEMPLATE, CANARY)

_I = re.IGNORECASE
_OVERRIDE_RE = re.compile(
    r"\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}?\b(previous|prior|above|earlier|preceding|"
    r"all|any|your|system|initial|original)\b[^.\n]{0,30}?\b(instructions?|prompts?|rules|directions|"
    r"guidelines|context|constraints)\b", _I)
_JAILBREAK = (
    (re.compile(r"\bdo anything now\b|\byou are (now )?DAN\b|\bDAN mode\b|\bact as DAN\b", _I), Severity.HIGH),
    (re.compile(r"\b(developer|god|jailbreak|unrestricted|evil|dude|stan) mode\b", _I), Severity.HIGH),
    (re.compile(r"\b(no longer|not) (bound|restricted|limited) by\b|\bwithout any (restrictions|filters|"
                r"limitations|censorship|ethical)\b|\b(jailbroken|uncensored|unfiltered) (ai|model|assistant|mode)",
                _I), Severity.HIGH),
    (re.compile(r"\b(pretend|act as if|imagine) (that )?you (are|have) (no|not|an? (unrestricted|unfiltered|"
                r"uncensored|evil))\b", _I), Severity.HIGH),
    (re.compile(r"\byou are now\b|\bfrom now on,? you (are|will)\b", _I), Severity.MEDIUM),
)
# A match inside a sentence that warns against it ("never ignore...", "if a user asks you to ignore...").
_DEFENSIVE = re.compile(r"\b(never|not|don't|do not|refuse|reject|decline|if|even if|attempts? to|tries to|"
                        r"asks? you to|requests? to|must not|cannot|can't)\b", _I)
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060-\u2064\u180e\ufeff\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/=])")
_SUSPECT_DECODED = re.compile(r"\b(ignore|instructions?|system prompt|you are|jailbreak|curl|wget|bash|"
                              r"powershell|exec|eval|password|api[_ ]?key|send|exfiltrate)\b", _I)
_PLACEHOLDER = r"(\{\{|\{%|\{[A-Za-z_]|\$\{|%\(|%s\b|<\w+>|\[[A-Z_]{3,}\])"
# Quantifiers are bounded so a long line cannot make the search quadratic.
_MD_IMAGE = re.compile(r"!\[[^\]\n]{0,200}\]\(\s{0,20}(https?:)?//[^)\s]{0,500}?" + _PLACEHOLDER +
                       r"|<img\b[^>\n]{0,200}?\bsrc\s{0,5}=\s{0,5}[\"']?(https?:)?//[^\"'>\s]{0,500}?"
                       + _PLACEHOLDER, _I)
_URL_PLACEHOLDER = re.compile(r"https?://[^\s)\"'?&]{1,300}[^\s)\"']{0,300}?[?&][\w.-]{1,50}=[^\s)\"'&]{0,100}?"
                              + _PLACEHOLDER, _I)
_SEND_TO = re.compile(r"\b(send|post|upload|forward|transmit|exfiltrate|leak|submit|email)\b[^.\n]{0,60}?"
                      r"\b(data|conversations?|chat|history|messages?|keys?|secrets?|passwords?|credentials?|"
                      r"tokens?|cookies?|personal|pii|context|prompt|api)\b[^.\n]{0,40}?"
                      r"\b(to|at)\s+(https?://\S+|[\w.+-]+@[\w-]+\.[\w.]+)", _I)


def analyze(blob: Blob) -> list[Finding]:
    """Check a prompt template or system prompt."""
    return analyze_with_canaries(blob, ())


def analyze_with_canaries(blob: Blob, canaries: Sequence[str]) -> list[Finding]:
    """Check a prompt, also for any of the given canary tokens."""
    with blob.open() as fh:
        text = fh.read(MAX_BYTES).decode("utf-8", "replace")
    findings: list[Finding] = []
    counts: dict[str, int] = {}
    for finding in _scan(blob, text, [c for c in canaries if c]):
        n = counts.get(finding.rule.id, 0)
        counts[finding.rule.id] = n + 1
        if n < MAX_PER_RULE:
            findings.append(finding)
    return findings


def _scan(blob: Blob, text: str, canaries: list[str]) -> Iterator[Finding]:
    def at(rule: Rule, severity: Severity, line: int, message: str) -> Finding:
        location = replace(blob.location(), start_line=line, end_line=line)
        return Finding(rule=rule, message=message, severity=severity, location=location)

    for number, line in enumerate(text.splitlines(), 1):
        if (m := _OVERRIDE_RE.search(line)) and not _defensive(line, m.start()):
            yield at(OVERRIDE, Severity.HIGH, number, f"instruction override: `{_show(m.group(0))}`")
        for pattern, severity in _JAILBREAK:
            if (m := pattern.search(line)) and not _defensive(line, m.start()):
                yield at(JAILBREAK, severity, number, f"role override: `{_show(m.group(0))}`")
                break
        hidden = _hidden(line)
        if hidden:
            yield at(HIDDEN, Severity.HIGH, number, hidden)
        for m in _BASE64.finditer(line):
            decoded = _decode(m.group(0))
            if decoded and (_SUSPECT_DECODED.search(decoded) or _OVERRIDE_RE.search(decoded)):
                yield at(ENCODED, Severity.HIGH, number, f"base64 decodes to `{_show(decoded)}`")
                break
        if m := _MD_IMAGE.search(line):
            yield at(MD_EXFIL, Severity.HIGH, number, f"image URL with template data: `{_show(m.group(0))}`")
        elif m := _SEND_TO.search(line):
            if not _defensive(line, m.start()):
                yield at(EXFIL, Severity.HIGH, number, f"sends data out: `{_show(m.group(0))}`")
        elif m := _URL_PLACEHOLDER.search(line):
            yield at(EXFIL, Severity.MEDIUM, number, f"URL built from template data: `{_show(m.group(0))}`")
        for canary in canaries:
            if canary in line:
                yield at(CANARY, Severity.HIGH, number, f"canary token `{canary[:4]}...` ({len(canary)} chars) found")
    if "{{" in text or "{%" in text:
        for issue in template_issues(text):
            lineno = text.count("\n", 0, issue.offset) + 1
            yield at(TEMPLATE, issue.severity, lineno, f"{issue.label} near `{_show(issue.excerpt)}`")


def _defensive(line: str, start: int) -> bool:
    """True when the match sits in a sentence that warns against it."""
    sentence_start = max(line.rfind(".", 0, start), line.rfind("!", 0, start), line.rfind("?", 0, start)) + 1
    return bool(_DEFENSIVE.search(line[sentence_start:start]))


def _hidden(line: str) -> str | None:
    if not _INVISIBLE.search(line):
        return None
    chars = []
    for i, ch in enumerate(line):
        if not _INVISIBLE.match(ch):
            continue
        if ch == "\u200d" and i > 0 and unicodedata.category(line[i - 1]) in ("So", "Sk", "Mn"):
            continue  # joins emoji sequences
        if ch == "\ufeff" and i == 0:
            continue  # a byte-order mark at the start
        chars.append(ch)
    if not chars:
        return None
    tags = "".join(chr(ord(c) - 0xE0000) for c in chars if 0xE0020 <= ord(c) <= 0xE007E)
    names = sorted({f"U+{ord(c):04X}" for c in chars})
    message = f"{len(chars)} invisible/bidi characters ({', '.join(names[:6])})"
    return message + (f" hiding the text `{_show(tags)}`" if tags else "")


def _decode(blob: str) -> str | None:
    try:
        raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    printable = sum(ch.isprintable() or ch.isspace() for ch in text)
    return text if text and printable / len(text) > 0.9 else None


def _show(text: str, limit: int = 100) -> str:
    text = text.replace("`", "'").replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


_CODE_SUFFIXES = frozenset({".py", ".js", ".ts", ".go", ".java", ".rs", ".c", ".h", ".cpp", ".rb", ".sh",
                            ".ipynb", ".html", ".css", ".lock", ".toml", ".cfg", ".ini"})
_CONTENT_HINT = re.compile(r"[\"']role[\"'][ \t]*:[ \t]*[\"']system[\"']|^[ \t]*(?:-[ \t]*)?role:[ \t]*[\"']?system\b|"
                           r"\b(system_prompt|system_message|prompt_template)[\"']?\s*[:=]", _I | re.MULTILINE)


def looks_like_prompt(path: str, head: bytes) -> bool:
    """Whether a text file is a prompt template or system prompt, by its name and first bytes."""
    p = PurePosixPath(path.lower())
    suffix = p.suffix
    if suffix in _CODE_SUFFIXES or suffix not in TEXT_SUFFIXES:
        return False
    if suffix in (".prompt", ".prompty", ".jinja", ".jinja2"):
        return True
    if any("prompt" in part for part in p.parts):
        return True
    text = head[:8192].decode("utf-8", "replace")
    if suffix in (".txt", ".md", "") and re.match(r"\s*(#+\s*\w+\s*\n+\s*)?you are (a|an|the)\b", text, _I):
        return True
    return suffix in (".yaml", ".yml", ".json", ".txt", ".md") and bool(_CONTENT_HINT.search(text))
