"""Secret values out of every text a third-party tool gives us, before it reaches SARIF, a log or a summary.

Third-party results quote source: trivy's misconfiguration snippets hold `ENV GITHUB_TOKEN=ghp_...`
(DS-0031), Terraform `password = "..."` and Kubernetes `env[].value`. Three passes, each replacing the
value whole (no prefix or suffix of it survives):

1. known credential formats anywhere (GitHub, GitLab, AWS key ids, Slack, OpenAI, Google, Stripe, JWTs,
   PEM private keys, credentials in URLs);
2. the value of any assignment whose key names a secret (`password = x`, `API_KEY: x`, `ENV TOKEN x`,
   `"secret": "x"`, `--password x`);
3. in code snippets, also YAML `value:` lines (Kubernetes env values) and long random-looking tokens.
"""

from __future__ import annotations

import re
from dataclasses import replace

from mlsec_actions.findings import Finding

MASK = "***"

_KNOWN = re.compile("|".join((
    r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|$)",
    r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,255}",
    r"\bgithub_pat_[A-Za-z0-9_]{20,255}",
    r"\bglpat-[A-Za-z0-9_-]{16,64}",
    r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b",
    r"\bxox[abposr]-[A-Za-z0-9-]{10,255}",
    r"\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{20,255}",
    r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,255}",
    r"\bAIza[0-9A-Za-z_-]{35}",
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    r"(?<=://)[^/\s:@]{1,256}:[^/\s@]{1,256}(?=@)",
)))

# A key naming a secret: any prefix (`dbPassword`, `GITHUB_TOKEN`), a suffix only after a separator, so
# `author` or `passwords_file` are not keys of a secret.
_KEY = (
    r"[A-Za-z0-9_.-]*(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|credential|auth|bearer|signing[_-]?key|conn(?:ection)?[_-]?str(?:ing)?)s?"
    r"(?:[_.-][A-Za-z0-9]+)*")
_VALUE = r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s\"',;)}\]]+)"
_ASSIGNED = re.compile(rf"(?i)(?<![A-Za-z0-9_.-])(?P<key>{_KEY})(?P<sep>[\"']?[ \t]*(?::|=>|=)[ \t]*)"
                       rf"{_VALUE}")
# Dockerfiles and command lines also assign with a blank: `ENV TOKEN value`, `--password value`.
_ASSIGNED_BLANK = re.compile(rf"(?i)(?:(?<=ENV )|(?<=ARG )|(?<=--))(?P<key>{_KEY})(?P<sep>[ \t]+)"
                             rf"(?![=:]|\*\*\*){_VALUE}")
_YAML_VALUE = re.compile(r"(?im)^(?P<head>[ \t]*(?:-[ \t]*)?value[ \t]*:[ \t]*)(?P<value>\S.*?)[ \t]*$")
_RANDOM = re.compile(r"(?<![A-Za-z0-9+/=_-])(?=[A-Za-z0-9+/=_-]*\d)(?=[A-Za-z0-9+/=_-]*[a-z])"
                     r"(?=[A-Za-z0-9+/=_-]*[A-Z])[A-Za-z0-9+/=_-]{24,}(?![A-Za-z0-9+/=_-])")


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    if value in ("", '""', "''") or value.startswith(("${", "$(", "{{")):
        return match.group(0)  # a reference or template, not a value
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{MASK}{quote}"


def text(value: str) -> str:
    """`value` with known credential formats and the values of secret-named assignments masked."""
    if not value:
        return value
    value = _KNOWN.sub(MASK, value)
    return _ASSIGNED.sub(_mask_value, value)


def snippet(value: str) -> str:
    """Source quoted by a tool: as `text`, plus YAML `value:` entries and long random-looking tokens."""
    value = text(value)
    value = _ASSIGNED_BLANK.sub(_mask_value, value)
    value = _YAML_VALUE.sub(lambda m: f"{m.group('head')}{MASK}", value)
    return _RANDOM.sub(MASK, value)


def finding(f: Finding) -> Finding:
    """A third-party finding with its message, snippet and properties redacted."""
    loc = f.location
    new_loc = replace(loc, snippet=snippet(loc.snippet)) if loc.snippet else loc
    props = tuple((k, text(v)) for k, v in f.properties)
    return replace(f, message=text(f.message), location=new_loc, properties=props)
