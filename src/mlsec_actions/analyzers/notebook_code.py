"""Risky code in one notebook code cell: shell lines and magics checked as text, the rest turned into
plain Python (each magic or shell line becomes `pass`, so line numbers stay) for the ML SAST walk.

Shell lines are `!cmd`, `x = !cmd`, `%sx`/`%system`, and every line of a `%%bash`, `%%sh` or
`%%script` cell. Nothing is run; values of secrets are never copied into a message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlsec_actions.analyzers import notebook_rules as R
from mlsec_actions.tools import decoys

_SHELL_CELL = re.compile(r"^\s*%%(?:bash|sh|zsh|script\s+(?:ba|z)?sh|system)\b")
_NOT_PYTHON_CELL = re.compile(r"^\s*%%(?!time\b|timeit\b|capture\b|prun\b)\w+")
_LINE_MAGIC = re.compile(r"^(\s*)(?:[\w.]+\s*=\s*)?([!%])(.*)$")
_SHELL_MAGIC = re.compile(r"^(?:sx|system|sc)\s+")
_PIPE_SHELL = re.compile(r"\b(?:curl|wget|fetch)\b[^|;&\n]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+)?"
                         r"(?:ba|z|da|k)?sh\b|\b(?:ba)?sh\s+-c\s+[\"']?\$\((?:curl|wget)\b|\bbash\s+<\(\s*(?:curl|wget)\b")
_INSTALL = re.compile(r"^\s*(?:pip3?|python3?\s+-m\s+pip|uv\s+pip|conda|mamba|micromamba)\s+install\s+(.*)$")
_TLS = re.compile(r"\bcurl\b[^\n]*\s(?:-k|--insecure)\b|\bwget\b[^\n]*--no-check-certificate|"
                  r"--trusted-host\b|\bgit\b[^\n]*http\.sslVerify=false")
_PY_TLS = re.compile(r"\bssl\._create_unverified_context\b|\bssl\.CERT_NONE\b|\bPYTHONHTTPSVERIFY['\"]?\]?\s*=\s*"
                     r"['\"]?0|\bCURL_CA_BUNDLE['\"]\]\s*=\s*['\"]['\"]")
_SECRET_NAME = r"\w*(?i:key|token|secret|passw(?:or)?d|pwd|credential|auth)\w*"  # noqa: S105 -- a pattern
_ENV_MAGIC = re.compile(rf"^\s*env\s+(?P<n>{_SECRET_NAME})\s*[= ]\s*(?P<v>\S.*?)\s*$")
_ENV_SET = re.compile(rf"""os\.environ\[\s*["'](?P<n>{_SECRET_NAME})["']\s*\]\s*=\s*[rbuf]?["'](?P<v>[^"'\n]+)["']|"""
                      rf"""os\.(?:environ\.setdefault|putenv)\(\s*["'](?P<n2>{_SECRET_NAME})["']\s*,\s*[rbuf]?["']"""
                      r"""(?P<v2>[^"'\n]+)["']""")
_CRED_PATH = re.compile(r"""["'][^"'\n]{0,200}?(?:\.aws/credentials|\.ssh/id_(?:rsa|dsa|ecdsa|ed25519)\b|(?<![\w.])"""
                        r"""\.netrc\b|\.kaggle/kaggle\.json|\.docker/config\.json|\.config/gcloud/|\.git-credentials|"""
                        r"""\.pgpass|\.huggingface/token|\.cache/huggingface/token)[^"'\n]{0,100}["']""")
_PINNED = re.compile(r"===?|@\s*(?:git\+|https?://)\S*@[0-9a-f]{40}|\.whl$|\.tar\.gz$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class Hit:
    """One risky thing in a cell."""

    rule: R.NbRule
    """What it is."""
    line: int
    """1-based line in the cell's source."""
    message: str
    """What and why, without secret values."""


@dataclass(frozen=True)
class Cell:
    """A code cell read for checks."""

    python: str
    """The cell as plain Python (shell and magic lines as `pass`); empty for a non-Python cell."""
    hits: tuple[Hit, ...]
    """Risky shell, magic and text patterns found."""


def _placeholder(value: str) -> bool:
    value = value.strip().strip("'\"")
    return (not value or value.startswith(("$", "{", "<", "%")) or bool(decoys.value_placeholder(value))
            or decoys.entropy(value) < 2.0 or value.lower() in {"none", "null", "changeme", "xxx", "secret"})


def _shell(line: str, number: int) -> list[Hit]:
    hits = []
    if _PIPE_SHELL.search(line):
        hits.append(Hit(R.CURL_SHELL, number, "a download is piped into a shell"))
    if _TLS.search(line):
        hits.append(Hit(R.TLS_OFF, number, "a shell line turns TLS certificate checks off"))
    install = _INSTALL.match(line)
    if install:
        loose = _unpinned(install.group(1))
        if loose:
            more = f" and {len(loose) - 3} more" if len(loose) > 3 else ""
            hits.append(Hit(R.UNPINNED_PIP, number, f"installs {', '.join(loose[:3])}{more} without a pinned version"))
    return hits


def _unpinned(args: str) -> list[str]:
    words = args.split("#", 1)[0].split()
    loose: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word.startswith("-"):  # -r file, -e path, --index-url URL: their value is not a package
            skip_next = word in {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
                                 "--extra-index-url", "-f", "--find-links", "--trusted-host", "--channel"}
            continue
        clean = word.strip("'\"")
        if clean.startswith((".", "/", "$", "{")) or _PINNED.search(clean):
            continue
        name = _NAME.match(clean)
        if name:
            loose.append(name.group())
    return loose


def read_cell(source: str) -> Cell:
    """The checks of one code cell's source."""
    lines = source.split("\n")
    hits: list[Hit] = []
    if lines and _SHELL_CELL.match(lines[0]):
        for number, line in enumerate(lines[1:], start=2):
            hits.extend(_shell(line, number))
        return Cell("", tuple(hits))
    python_cell = not (lines and _NOT_PYTHON_CELL.match(lines[0]))
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        magic = _LINE_MAGIC.match(line) if python_cell and not line.lstrip().startswith("%%") else None
        if magic or (number == 1 and line.lstrip().startswith("%%")):
            if magic:
                hits.extend(_magic(magic.group(2), magic.group(3), number))
            out.append(f"{magic.group(1) if magic else ''}pass")
            continue
        hits.extend(_python_text(line, number))
        out.append(line)
    return Cell("\n".join(out) if python_cell else "", tuple(hits))


def _magic(sigil: str, body: str, number: int) -> list[Hit]:
    env = _ENV_MAGIC.match(body)
    if env and not _placeholder(env.group("v")):
        return [Hit(R.ENV_SECRET, number, f"%env sets {env.group('n')} to a literal value (withheld)")]
    if sigil == "!" or _SHELL_MAGIC.match(body):
        return _shell(_SHELL_MAGIC.sub("", body), number)
    if body.startswith(("pip ", "conda ", "mamba ", "uv ")):
        return _shell(body, number)
    return []


def _python_text(line: str, number: int) -> list[Hit]:
    hits = []
    env = _ENV_SET.search(line)
    if env:
        name, value = env.group("n") or env.group("n2"), env.group("v") or env.group("v2")
        if not _placeholder(value):
            hits.append(Hit(R.ENV_SECRET, number, f"os.environ gets {name} as a literal value (withheld)"))
    if _CRED_PATH.search(line):
        hits.append(Hit(R.CREDENTIAL_FILE, number, "a credential file is read from a fixed path"))
    if _PY_TLS.search(line):
        hits.append(Hit(R.TLS_OFF, number, "TLS certificate checks are turned off in code"))
    return hits
