"""The build stage's Dockerfile checks (`dockerfile/<check>`), hadolint-like, on `dockerfile.parse`'s instructions.

Each check is a function of the parsed file returning findings on the instruction's line; `CHECKS` is the
registry. Secret values never reach a message: they are named by the ARG/ENV key only.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mlsec_actions import redact
from mlsec_actions.analyzers.base import DOCS
from mlsec_actions.analyzers.dockerfile import Instruction, Parsed
from mlsec_actions.findings import Finding, Location, Rule, Severity

BUILD_DOCS = DOCS + "build.md"


@dataclass(frozen=True)
class LintRule:
    """One check and its SARIF rule."""

    rule: Rule
    """The SARIF rule."""
    severity: Severity
    """Severity of its findings."""


def _r(name: str, short: str, full: str, fix: str, severity: Severity, *tags: str) -> LintRule:
    rid = f"dockerfile/{name}"
    return LintRule(Rule(id=rid, name="Dockerfile" + "".join(w.title() for w in name.split("-")),
                         short_description=short, full_description=full, help_text=fix,
                         help_uri=f"{BUILD_DOCS}#{rid.replace('/', '')}", tags=("dockerfile", "container", *tags)),
                    severity)


LATEST_BASE = _r("latest-base", "Base image not pinned: `latest` or no tag",
                 "`FROM image` or `FROM image:latest` builds on whatever the registry serves that day: the image "
                 "changes under you, builds are not reproducible, and a hijacked tag is pulled silently.",
                 "Pin the base image by digest (`FROM image:1.2.3@sha256:...`), or at least to a version tag.",
                 Severity.MEDIUM, "supply-chain")
NO_USER = _r("no-user", "The image runs as root: no USER instruction",
             "The final stage sets no USER, so the container's process runs as root (uid 0). A flaw in the service "
             "then has root's rights inside the container and an easier path out of it.",
             "Add `USER <name or uid>` (a non-root account, e.g. `USER 65532`) to the final stage.",
             Severity.MEDIUM, "external/cwe/cwe-250")
ROOT_USER = _r("root-user", "The image runs as root: the last USER is root",
               "The final stage's last USER is `root` or uid 0, so the container's process runs as root.",
               "Switch to a non-root user (`USER 65532`) after the steps that need root.",
               Severity.MEDIUM, "external/cwe/cwe-250")
ADD_URL = _r("add-url", "ADD downloads a URL without a checksum",
             "`ADD https://...` fetches whatever the server sends at build time into the image, unverified: a changed "
             "or hijacked URL puts its content into every image built.",
             "Download in a RUN step and check the SHA-256, use `ADD --checksum=sha256:...`, or COPY a vendored file.",
             Severity.MEDIUM, "supply-chain", "external/cwe/cwe-494")
SECRET = _r("secret-arg-env", "Secret in an ARG or ENV",
            "An ARG or ENV whose name says it holds a secret (password, token, key) or whose value has a known "
            "credential format. ENV values are stored in the image's configuration, ARG values in its history and "
            "the build's provenance: everyone who can pull the image can read them.",
            "Remove it; pass secrets at build time with a secret mount (`RUN --mount=type=secret,id=...`) and at "
            "run time from the orchestrator's secret store.", Severity.HIGH, "secret", "external/cwe/cwe-798")
CURL_SHELL = _r("curl-pipe-shell", "Download piped into a shell",
                "A RUN step pipes `curl`/`wget` output into a shell or interpreter (`curl ... | sh`, "
                "`sh -c \"$(curl ...)\"`): whatever the server sends runs as root in the build.",
                "Download to a file, check its SHA-256 against a pinned value, then run it; or install a pinned "
                "package from the distribution.", Severity.HIGH, "supply-chain", "external/cwe/cwe-494")
NOT_LINTED = _r("not-linted", "Part of the Dockerfile was not linted",
                "The Dockerfile hit a reader limit (size, instruction length, count) or has a part that is not an "
                "instruction (an unclosed heredoc): what lies past it was not checked.",
                "Keep Dockerfiles small and well-formed; split generated content into files that are COPYed.",
                Severity.MEDIUM, "coverage")

RULES: tuple[LintRule, ...] = (LATEST_BASE, NO_USER, ROOT_USER, ADD_URL, SECRET, CURL_SHELL, NOT_LINTED)

_SECRET_NAME = re.compile(r"(?i)(passw(?:or)?d|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|"
                          r"credential|auth)")
_NOT_A_SECRET = re.compile(r"(?i)(_file|_path|_dir|_url|_uri|_name|_id|_type|_method|_header)$")
_FETCH = r"(?:curl|wget)\b"
_SHELL = r"(?:sudo\s+)?(?:/\S*/)?(?:sh|bash|zsh|ash|dash|ksh|python[0-9.]*|perl|ruby|node)\b"
_PIPED = re.compile(rf"{_FETCH}[^|;&\n]*\|\s*(?:\S+=\S*\s+)*{_SHELL}")
_SUBSHELL = re.compile(rf"{_SHELL}[^\n]*(?:-c\s*)?[\"']?\$\(\s*{_FETCH}|{_SHELL}\s+<\(\s*{_FETCH}")
_URL = re.compile(r"^(?:https?|ftp)://|^git@|\.git(?:#.*)?$", re.I)


def _finding(lint: LintRule, path: str, ins: Instruction, message: str) -> Finding:
    return Finding(lint.rule, message, lint.severity, Location(path, ins.line, ins.end_line))


def _final_stage(parsed: Parsed) -> list[Instruction]:
    last = parsed.stages - 1
    return [i for i in parsed.instructions if i.stage == last]


def _build_args(parsed: Parsed) -> dict[str, str]:
    """ARG defaults declared before the first FROM (the only ones FROM can use)."""
    out: dict[str, str] = {}
    for ins in parsed.instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            out[name.strip()] = default.strip().strip("\"'")
    return out


def _expand(text: str, values: dict[str, str]) -> str | None:
    """`$VAR` / `${VAR}` replaced by ARG defaults; None when one has no default (unknown at lint time)."""
    unknown = False

    def sub(m: re.Match[str]) -> str:
        nonlocal unknown
        name = m.group(1) or m.group(2)
        if not values.get(name):
            unknown = True
        return values.get(name, "")

    expanded = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, text)
    return None if unknown else expanded


def _tag(image: str) -> str | None:
    """The tag of an image reference (None: no tag); a digest pins it (returns `@`)."""
    if "@" in image:
        return "@"
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def latest_base(path: str, parsed: Parsed) -> Iterator[Finding]:
    values = _build_args(parsed)
    stage_names: set[str] = set()
    for ins in parsed.instructions:
        if ins.keyword != "FROM":
            continue
        words = [w for w in ins.args.split() if not w.startswith("--")]
        if not words:
            continue
        alias = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
        image = _expand(words[0], values)
        earlier_stage = image is not None and image.lower() in stage_names
        if alias:
            stage_names.add(alias)
        if image is None or image.lower() == "scratch" or earlier_stage:
            continue
        tag = _tag(image)
        if tag is None or tag == "latest":
            what = "has no tag (so `latest`)" if tag is None else "is tagged `latest`"
            yield _finding(LATEST_BASE, path, ins, f"Base image {image} {what}; pin it by digest or version.")


def user(path: str, parsed: Parsed) -> Iterator[Finding]:
    final = _final_stage(parsed)
    if not final:
        return
    users = [i for i in final if i.keyword == "USER"]
    if not users:
        yield _finding(NO_USER, path, final[0], "The final stage sets no USER: the container runs as root.")
        return
    name = users[-1].args.split(":", 1)[0].strip().strip("\"'")
    if name in ("root", "0"):
        yield _finding(ROOT_USER, path, users[-1], f"The last USER of the final stage is {name}: the container runs "
                                                   "as root.")


def add_url(path: str, parsed: Parsed) -> Iterator[Finding]:
    for ins in parsed.instructions:
        if ins.keyword != "ADD":
            continue
        words = ins.words()
        if any(w.startswith("--checksum=") for w in words):
            continue
        sources = [w for w in words if not w.startswith("--")][:-1]
        for src in sources:
            if _URL.search(src):
                yield _finding(ADD_URL, path, ins, f"ADD fetches {src[:200]} without a checksum.")


def _pairs(ins: Instruction) -> Iterator[tuple[str, str]]:
    """(name, value) of an ARG or ENV: `K=V K2="v 2"`, or the legacy `ENV K value with blanks`."""
    text = ins.args
    first = text.split(None, 1)[0] if text.split() else ""
    if "=" not in first:
        name, _, value = text.partition(" ")
        yield name.strip(), value.strip()
        return
    try:
        words = shlex.split(text, posix=True)
    except ValueError:
        words = text.split()
    for word in words:
        name, _, value = word.partition("=")
        yield name, value


def secret_arg_env(path: str, parsed: Parsed) -> Iterator[Finding]:
    for ins in parsed.instructions:
        if ins.keyword not in ("ARG", "ENV"):
            continue
        for name, value in _pairs(ins):
            literal = bool(value) and not value.startswith("$")
            if value and redact.text(value) != value:
                yield _finding(SECRET, path, ins, f"{ins.keyword} {name[:100]} holds a value in a known credential "
                                                  "format (value not shown).")
            elif _SECRET_NAME.search(name) and not _NOT_A_SECRET.search(name) and (ins.keyword == "ARG" or literal):
                kept = "is stored in the image configuration" if ins.keyword == "ENV" else \
                    "is recorded in the image history and build provenance"
                yield _finding(SECRET, path, ins, f"{ins.keyword} {name[:100]} names a secret; its value {kept}.")


def curl_pipe_shell(path: str, parsed: Parsed) -> Iterator[Finding]:
    for ins in parsed.instructions:
        if ins.keyword != "RUN":
            continue
        exec_form = ins.exec_form()
        command = " ".join(exec_form) if exec_form is not None else ins.args
        for body in (command, *ins.heredocs):
            if _PIPED.search(body) or _SUBSHELL.search(body):
                yield _finding(CURL_SHELL, path, ins, "RUN pipes a download into a shell or interpreter.")
                break


def not_linted(path: str, parsed: Parsed) -> Iterator[Finding]:
    for line, what in parsed.problems:
        yield Finding(NOT_LINTED.rule, f"Not fully linted: {what}.", NOT_LINTED.severity, Location(path, line))


CHECKS: tuple[Callable[[str, Parsed], Iterator[Finding]], ...] = (
    latest_base, user, add_url, secret_arg_env, curl_pipe_shell, not_linted,
)
"""Every check, in the order their findings are listed."""


def lint(path: str, parsed: Parsed) -> list[Finding]:
    """Every check's findings for one parsed Dockerfile (`path`: its repository-relative name)."""
    return [f for check in CHECKS for f in check(path, parsed)]
