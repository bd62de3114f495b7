"""The commits since a revision: secrets anywhere in them (gitleaks `git` mode), and the range itself for others.

A secret that was committed and deleted again is gone from the tree but not from the history (and so from
every clone): scanning the tree cannot find it. `--since REV` scans each commit of `REV..HEAD` that touches
the scanned folder with gitleaks, isolated as for the tree scan (our `--config`, an empty ignore folder,
`--ignore-gitleaks-allow`, `--redact`, `GITLEAKS_*` removed) and with git itself isolated (`git_env`): no
system or global git configuration, no hooks, pager, fsmonitor, external diff or text conversion program,
no `GIT_*` variable from the caller; the repository's own `.git/config` is the checkout's, not the tree's.

REV is resolved to a commit by us before anything runs (`--end-of-options`: a REV cannot be an option); one
that is not in the clone (a shallow checkout) is a failed tool that says to fetch the history. Findings are
`gitleaks/history/<rule>` at the file and line of the commit that added them, naming the commit.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlsec_actions import redact
from mlsec_actions.analyzers.base import DOCS
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Rule, Severity, ToolRun, ToolStatus
from mlsec_actions.tools import gitleaks
from mlsec_actions.tools.base import Isolation, ToolSpec, execute, safe

HELP = DOCS + "code-scan.md#git-history"
REV_PATTERN = re.compile(r"^[A-Za-z0-9@][A-Za-z0-9._/@{}~^-]{0,199}$")
"""What `--since` accepts: a commit id, branch, tag or `HEAD~N`; never an option, a space or a control character."""
MAX_COMMITS = 10_000

GIT = ToolSpec(
    name="git", executable="git", version_args=("--version",), version_pattern=r"git version (\S+)",
    ok_exit_codes=frozenset({0}), install_hint="install git",
    isolation=Isolation(discovers=(".git/config",), env_prefixes=("GIT_",)),
)
_OVERRIDES = (("core.fsmonitor", "false"), ("core.hooksPath", "/dev/null"), ("core.pager", "cat"),
              ("core.attributesFile", "/dev/null"), ("diff.external", ""), ("log.showSignature", "false"),
              ("gpg.program", "gpg"), ("gpg.ssh.program", "ssh-keygen"), ("gpg.x509.program", "gpgsm"),
              ("safe.directory", "*"), ("core.quotePath", "false"))


def rev(value: str) -> str:
    """argparse type for `--since`: a revision name, checked before git ever sees it."""
    import argparse

    text = str(value).strip()
    if not REV_PATTERN.match(text) or ".." in text:
        raise argparse.ArgumentTypeError(f"{value!r}: not a revision (a commit id, branch, tag or HEAD~N)")
    return text


def git_env(home: Path) -> dict[str, str]:
    """Environment for every git process we start (and gitleaks', whose git inherits it)."""
    env = {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0",
           "GIT_OPTIONAL_LOCKS": "0", "GIT_ATTR_NOSYSTEM": "1", "GIT_CONFIG_COUNT": str(len(_OVERRIDES))}
    for i, (key, value) in enumerate(_OVERRIDES):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


@dataclass(frozen=True)
class Range:
    """The commits to scan."""

    base: str
    """The resolved commit of `--since`."""
    head: str
    """The resolved HEAD."""
    top: Path
    """The repository's top folder."""
    prefix: str
    """The scanned folder relative to the repository's top (`''` at the top; ends with `/` otherwise)."""
    commits: tuple[str, ...]
    """Every commit of base..head touching the folder, newest first."""


def git(root: Path, args: list[str], home: Path, timeout: float, extra: dict[str, str] | None = None
        ) -> tuple[str | None, ToolRun]:
    """Run `git -C root ARGS` isolated; (its output, its record). Output is None when it failed."""
    got = execute(GIT, ["-C", str(root), "--no-pager", *args], timeout=timeout, env={**git_env(home), **(extra or {})},
                  max_stdout=64 * 1024 * 1024)
    if got.run.status is not ToolStatus.OK:
        return None, got.run
    return got.stdout.decode("utf-8", "replace"), got.run


def resolve(root: Path, since: str, home: Path, timeout: float) -> tuple[Range | None, ToolRun]:
    """The range `since..HEAD` in the repository holding `root`; a failed record when it cannot be had."""
    out, run = git(root, ["rev-parse", "--show-toplevel", "--show-prefix"], home, timeout)
    resolved: list[str] = []
    for name in (since, "HEAD") if out is not None else ():
        sha, run = git(root, ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}"], home,
                       timeout)
        if sha is None:
            break
        resolved.append(sha.strip())
    places = (out or "").split("\n")
    if out is None or len(resolved) != 2 or len(places) < 2:
        why = "not a git repository, or the revision is not in this clone (a shallow checkout needs fetch-depth: 0)"
        return None, replace(run, status=ToolStatus.FAILED, message=safe(f"--since {since}: {why}"))
    (top, prefix), (base, head) = places[:2], resolved
    listing, run = git(root, ["rev-list", f"--max-count={MAX_COMMITS + 1}", f"{base}..{head}", "--", "."], home,
                       timeout)
    if listing is None:
        return None, replace(run, status=ToolStatus.FAILED, message=safe(f"cannot list {since}..HEAD: {run.message}"))
    return Range(base, head, Path(top), prefix, tuple(listing.split())), run


def scan(root: Path, since: str, timeout: float) -> tuple[list[Finding], ToolRun]:
    """Secrets in every commit of `since..HEAD` that touches `root`, with gitleaks; `timeout` is the whole budget."""
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(0.1, deadline - time.monotonic())

    with tempfile.TemporaryDirectory(prefix="mlsec-history-") as tmp:
        home, work, empty, clone = Path(tmp) / "home", Path(tmp) / "cwd", Path(tmp) / "no-ignore", Path(tmp) / "h.git"
        for d in (home, work, empty):
            d.mkdir()
        span, run = resolve(root, since, home, timeout)
        if span is None:
            return [], replace(run, name="gitleaks-history")
        gaps: list[CoverageGap] = []
        if len(span.commits) > MAX_COMMITS:
            gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"more than {MAX_COMMITS} commits since {since}: "
                                    f"only the newest {MAX_COMMITS} were scanned"))
        notes = (f"{min(len(span.commits), MAX_COMMITS)} commit(s) since {since} "
                 f"({span.base[:12]}..{span.head[:12]})",)
        if not span.commits:
            return [], ToolRun("gitleaks-history", ToolStatus.OK, notes=notes, gaps=tuple(gaps))
        # gitleaks reads a .gitleaksignore from the folder it is given: it is given a bare clone of ours (its
        # objects shared, not copied), which has no work tree and so no file of the tree.
        _, cloned = git(root, ["clone", "--quiet", "--bare", "--shared", "--no-tags", "--", str(span.top), str(clone)],
                        home, left())
        if cloned.status is not ToolStatus.OK:
            return [], replace(cloned, name="gitleaks-history", status=ToolStatus.FAILED,
                               message=safe(f"cannot read the history: {cloned.message}"))
        spec = replace(gitleaks._spec(), isolation=replace(gitleaks.SPEC.isolation,
                                                           env_prefixes=("GITLEAKS_", "GIT_")))
        log_opts = f"--max-count={MAX_COMMITS} {span.base}..{span.head}" + (f" -- {span.prefix}" if span.prefix
                                                                              else "")
        report = work / "report.json"
        args = gitleaks._check(["git", str(clone), "--log-opts", log_opts, "--config", str(gitleaks.CONFIG),
                                "--gitleaks-ignore-path", str(empty), "--ignore-gitleaks-allow", "--redact",
                                "--no-banner", "--no-color", "--log-level", "error", "--report-format", "json",
                                "--report-path", str(report),
                                "--max-target-megabytes", str(gitleaks.MAX_FILE_BYTES // (1024 * 1024)),
                                "--timeout", str(max(1, int(left())))], repo_config=False)
        got = execute(spec, args, timeout=left(), workdir=work, scanned=root, env=git_env(home))
        run = replace(got.run, name="gitleaks-history", gaps=(*got.run.gaps, *gaps), notes=notes)
        if run.status is not ToolStatus.OK:
            return [], run
        data, run = gitleaks.read_report(report, run)
    if data is None:
        return [], run
    findings, dropped = _parse(data, span)
    return findings, replace(run, gaps=(*run.gaps, *dropped))


def _parse(data: list[dict[str, Any]], span: Range) -> tuple[list[Finding], list[CoverageGap]]:
    findings: list[Finding] = []
    gaps: list[CoverageGap] = []
    for leak in data:
        rid = re.sub(r"[^A-Za-z0-9_.-]", "-", str(leak.get("RuleID", "unknown")))[:80]
        commit = str(leak.get("Commit") or "")
        file = str(leak.get("File") or "")
        line = leak.get("StartLine")
        if not re.fullmatch(r"[0-9a-f]{40,64}", commit) or not file.startswith(span.prefix) or \
                not isinstance(line, int) or isinstance(line, bool) or line < 1:
            gaps.append(CoverageGap(GapKind.TOOL_ERROR, f"gitleaks/history/{rid} result outside the range or folder; "
                                    "ignored"))
            continue
        path = file[len(span.prefix):]
        title = redact.text(str(leak.get("Description") or rid))[:300]
        rule = Rule(id=f"gitleaks/history/{rid}",
                    name="GitleaksHistory" + "".join(w.title() for w in re.split(r"[-_.]", rid)),
                    short_description=f"Secret in the git history: {rid}", full_description=title,
                    help_text="Revoke and rotate the credential: it is in every clone of the history even when the "
                              "file no longer holds it. Then rewrite the history if the repository is private.",
                    help_uri=HELP, tags=("secret", "git-history", "gitleaks"))
        findings.append(Finding(rule=rule, severity=Severity.HIGH,
                                message=f"{rid} committed in {path} (line {line}) by commit {commit[:12]}",
                                location=Location(path, line, line),
                                properties=(("commit", commit), ("commit-date", safe(str(leak.get("Date", "")))[:40]))))
    return findings, gaps
