"""Run one `mlsec` command against the hostile repository and check what an attacker could have gained.

The command runs as `python -I -m mlsec_actions ...` (as the workflows and `mlsec run` start stages),
inside a GitHub-Actions-like environment (GITHUB_ACTIONS=true, GITHUB_OUTPUT / GITHUB_STEP_SUMMARY in
temporary files, a token in the environment), under `strace -f` so every file any process of it opens is
seen with the path it asked for and the file the kernel gave it.

The checks (`problems`): no hostile code ran (canaries), nothing outside the root was opened through the
root, no workflow command but our own annotations in any log line, none at all in the summary and
output files, no link or HTML the tree chose in the summary or a SARIF message, and no planted secret,
outside file content or environment token (nor any 12-character window of one) in any output.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.adversarial.hostile_repo import MARKER, HostileRepo
from tests.adversarial.workflow_commands import fragment_is_inert, parse_command, runner_lines

WINDOW = 12
"""No run of this many characters of a secret may appear in an output."""
OUR_COMMANDS = frozenset({"error", "warning", "notice", "add-mask"})
_OPEN = re.compile(r'^\d+\s+(?:openat2?\((?:AT_FDCWD|\d+)<(?P<dir>.*?)>, |open\()"(?P<path>(?:[^"\\]|\\.)*)"'
                   r'.*\) = \d+<(?P<got>.*)>$')


def strace_path() -> str:
    """strace is part of the test tools (scripts/bootstrap dev installs it): a missing one fails."""
    found = shutil.which("strace")
    assert found, "strace is not installed: run scripts/bootstrap dev (it installs strace with apt-get)"
    return found


@dataclass(frozen=True)
class Opened:
    """One successful open(2) of any process of the command."""

    asked: str
    """The path as asked for, made absolute against the process's folder (not resolved)."""
    got: str
    """The file the kernel opened (symlinks resolved)."""


@dataclass
class Observed:
    """What one command did and left behind."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    gh_output: str
    gh_summary: str
    files: dict[Path, bytes] = field(default_factory=dict)
    """Every file the command wrote under its output folder."""
    opened: list[Opened] = field(default_factory=list)

    def describe(self) -> str:
        return (f"$ {' '.join(self.argv)}\nexit {self.returncode}\n--- stderr (tail)\n{self.stderr[-3000:]}"
                f"\n--- stdout (tail)\n{self.stdout[-2000:]}")


def _unstrace(text: str) -> str:
    """strace's C-style escapes back to text (paths here are ASCII but for the hostile names)."""
    return re.sub(r"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)", lambda m: _unescape_one(m[1]), text)


def _unescape_one(code: str) -> str:
    if code[0] == "x":
        return chr(int(code[1:], 16))
    if code[0] in "01234567":
        return chr(int(code, 8))
    return {"n": "\n", "r": "\r", "t": "\t", "v": "\v", "f": "\f", '"': '"', "\\": "\\"}.get(code, code)


def _parse_strace(log: Path) -> list[Opened]:
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _OPEN.match(line)
        if not m:
            continue
        asked = _unstrace(m["path"])
        if not asked.startswith("/") and m["dir"]:
            asked = os.path.join(_unstrace(m["dir"]), asked)  # noqa: PTH118 -- strings from a log, not paths
        out.append(Opened(os.path.normpath(asked), _unstrace(m["got"])))
    return out


def environment(h: HostileRepo, work: Path) -> dict[str, str]:
    """A runner-like environment: Actions on, output files in `work`, a token an attacker wants."""
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    (work / "runner-temp").mkdir(exist_ok=True)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
           "LANG": "C.UTF-8", "GITHUB_ACTIONS": "true", "CI": "true",
           "GITHUB_OUTPUT": str(work / "gh-output"), "GITHUB_STEP_SUMMARY": str(work / "gh-summary"),
           "GITHUB_WORKSPACE": str(h.root), "RUNNER_TEMP": str(work / "runner-temp"),
           "GITHUB_TOKEN": h.env_secret, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": h.env_secret}
    for name in ("PIP_FIND_LINKS", "PIP_CERT", "PIP_INDEX_URL", "UV_CACHE_DIR", "SSL_CERT_FILE"):
        if name in os.environ:  # how this machine reaches its package mirror; not the attacker's
            env[name] = os.environ[name]
    return env


def _cap_memory(limit: int) -> Callable[[], None]:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return cap


def run(h: HostileRepo, work: Path, *args: str, cwd: Path | None = None, timeout: float = 600,
        trace: bool = True, max_memory: int | None = None, env: dict[str, str] | None = None) -> Observed:
    """Run `python -I -m mlsec_actions ARGS` with `cwd` (default: the hostile root, the worst case);
    `max_memory` caps its address space (a bomb then fails the test instead of the machine); `env` adds
    to the runner-like environment."""
    work.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-I", "-m", "mlsec_actions", *args]
    log = work / "strace.log"
    full = [strace_path(), "-f", "-qq", "-y", "-e", "trace=open,openat,openat2", "-e", "status=successful",
            "-o", str(log), "--", *argv] if trace else argv
    before = {p for p in work.rglob("*")} if work.exists() else set()
    try:
        proc = subprocess.run(full, cwd=cwd or h.root, env=environment(h, work) | (env or {}), capture_output=True,
                              timeout=timeout, check=False,
                              preexec_fn=_cap_memory(max_memory) if max_memory else None)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"hung: {' '.join(args)} ran over {timeout}s (a FIFO, a device or a bomb?)") from e
    obs = Observed(argv, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                   proc.stderr.decode("utf-8", "replace"), _read(work / "gh-output"), _read(work / "gh-summary"))
    for path in sorted(work.rglob("*")):
        if path.is_file() and not path.is_symlink() and path not in before and path.name != "strace.log":
            obs.files[path] = path.read_bytes()
    if trace:
        obs.opened = _parse_strace(log)
    return obs


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "replace") if path.exists() else ""


# --- the checks: each returns a list of problems (empty: held)

def canaries(h: HostileRepo) -> list[str]:
    ran = sorted(p.name for p in h.canaries.iterdir())
    if (h.root / "PWNED").exists():
        ran.append("PWNED in the root (a hook or an install step ran)")
    return [f"hostile code ran: {name}" for name in ran]


def outside_reads(h: HostileRepo, obs: Observed) -> list[str]:
    root = os.path.realpath(h.root)
    outside = os.path.realpath(h.outside)
    bad = []
    for o in obs.opened:
        through_root = o.asked == root or o.asked.startswith(root + os.sep)
        if (through_root and not (o.got == root or o.got.startswith(root + os.sep))) \
                or o.got.startswith(outside + os.sep) or o.got == outside or o.got == "/etc/shadow":
            bad.append(f"opened {o.asked!r} -> {o.got!r}")
    return sorted(set(bad))[:20]


def _streams(obs: Observed) -> dict[str, str]:
    texts = {"stdout": obs.stdout, "stderr": obs.stderr, "GITHUB_OUTPUT": obs.gh_output,
             "GITHUB_STEP_SUMMARY": obs.gh_summary}
    for path, data in obs.files.items():
        texts[str(path)] = data.decode("utf-8", "replace")
    return texts


def injected_commands(obs: Observed) -> list[str]:
    """Log lines may hold our own annotations only: a known name at the start of the line, only the
    properties we set, a title of ours, and data that stays inert once the runner unescapes it. The
    summary, the output file and the files we write (Markdown, JSON) may hold no command at all."""
    bad = []
    for where, text in (("stdout", obs.stdout), ("stderr", obs.stderr)):
        for n, line in enumerate(runner_lines(text), 1):
            cmd = parse_command(line)
            if cmd is None:
                continue
            ours = (cmd.form == "v2" and line.startswith("::") and cmd.name in OUR_COMMANDS
                    and set(cmd.props) <= {"file", "line", "title"}
                    and cmd.props.get("title", "mlsec").startswith("mlsec")
                    and MARKER not in cmd.props.get("title", "")
                    and fragment_is_inert(cmd.data) and fragment_is_inert(cmd.props.get("file", "")))
            if not ours:
                bad.append(f"{where}:{n}: {line[:200]!r}")
    for where, text in _streams(obs).items():
        if where in ("stdout", "stderr") or where.endswith((".sarif", ".json")):
            continue  # JSON keeps line breaks escaped; SARIF text is checked by its own viewer rules
        for n, line in enumerate(runner_lines(text), 1):
            if parse_command(line) is not None:
                bad.append(f"{where}:{n}: {line[:200]!r}")
    return bad


def leaked_values(h: HostileRepo, obs: Observed) -> list[str]:
    values = [*h.secrets, h.env_secret, h.outside_value]
    bad = []
    for where, text in _streams(obs).items():
        for value in values:
            windows = {value[i:i + WINDOW] for i in range(len(value) - WINDOW + 1)}
            hit = next((w for w in windows if w in text), None)
            if hit is not None:
                bad.append(f"{where}: holds {hit!r} of a planted value ({value[:4]}...)")
    return bad


# Links we write ourselves: our docs, and a file of the scanned repository at its commit on GitHub.
_OUR_LINKS = ("https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/",)


def _our_link(href: str) -> bool:
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    repo = os.environ.get("GITHUB_REPOSITORY")
    blob = (f"{server}/{repo}/blob/",) if repo else ()
    return href.startswith(_OUR_LINKS + blob)


def active_markdown(obs: Observed) -> list[str]:
    """The summary (ours and GitHub's) renders no link, image or HTML the tree chose. Judged on what a GFM
    renderer makes of it (markdown-it with raw HTML on, tables on): text inside a code span is inert, a link
    is active unless it is one we write (our docs, the scanned file at its commit)."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")
    bad = []
    for where, text in _streams(obs).items():
        if not (where == "GITHUB_STEP_SUMMARY" or where.endswith(".md")):
            continue
        stack = list(md.parse(text))
        while stack:
            tok = stack.pop()
            stack.extend(tok.children or ())
            href = str(tok.attrGet("href") or "") if tok.type == "link_open" else ""
            if tok.type in ("html_inline", "html_block", "image") or (tok.type == "link_open" and not _our_link(href)):
                line = tok.map[0] + 1 if tok.map else 0
                bad.append(f"{where}:{line}: {tok.type} {(href or tok.content)[:200]!r}")
    return bad


_EMBEDDED_LINK = re.compile(r"(?<!\\)\[(?:[^\]\\]|\\.)*(?<!\\)\]\(")


def _messages(doc: object) -> list[str]:
    """Every `message.text` in a SARIF document (results, notifications, anywhere), without recursion."""
    found, stack = [], [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            msg = node.get("message")
            if isinstance(msg, dict) and isinstance(msg.get("text"), str):
                found.append(msg["text"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def sarif_links(obs: Observed) -> list[str]:
    """No SARIF message renders a link the tree chose (SARIF 2.1.0 §3.11.6 embedded links `[text](x)`)."""
    bad = []
    for path, data in obs.files.items():
        if path.suffix != ".sarif":
            continue
        try:
            doc = json.loads(data)
        except ValueError:
            continue
        bad += [f"{path.name}: {text[:160]!r}" for text in _messages(doc)
                if MARKER in text and _EMBEDDED_LINK.search(text)]
    return bad[:20]


def all_problems(h: HostileRepo, obs: Observed) -> list[str]:
    return [*canaries(h), *outside_reads(h, obs), *injected_commands(obs), *leaked_values(h, obs),
            *active_markdown(obs), *sarif_links(obs)]
