"""Commit signatures of the range `--since REV..HEAD` (`--commit-signatures`): one finding per commit that is not
signed by a key we can verify, and each commit's status in the tool's notes.

git verifies each signature itself (`%G?`), isolated as in `git_history.git_env`: gpg with the caller's
keyring (`GNUPGHOME`, else `~/.gnupg`), SSH signatures against `--allowed-signers FILE` (git's
`gpg.ssh.allowedSignersFile`; without it an SSH signature cannot be verified). What each status means here:

| `%G?` | status | finding |
|---|---|---|
| G | good | none |
| U | good signature, untrusted key (SSH: not in the allowed signers) | `git/unverifiable-signature`, low |
| N | unsigned | `git/unsigned-commit`, medium |
| E | cannot be checked (key not in the keyring or allowed signers) | `git/unverifiable-signature`, low |
| X, Y | good signature, expired signature or key | `git/unverifiable-signature`, low |
| R | good signature by a revoked key | `git/bad-signature`, high |
| B | bad signature | `git/bad-signature`, high |

A commit has no file of its own: the finding is placed on the first file it changed under the scanned folder
(its logical location is the commit), or on the folder's first file changed in the range when it changed none.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.analyzers.base import DOCS
from mlsec_actions.findings import Finding, Location, Rule, Severity, ToolRun, ToolStatus
from mlsec_actions.tools import git_history
from mlsec_actions.tools.base import safe

HELP = DOCS + "code-scan.md#git"  # + the rule: the anchor of the heading `git/<rule>`
MAX_NOTES = 200


@dataclass(frozen=True)
class Status:
    """What one `%G?` letter means."""

    word: str
    """How the notes name it."""
    rule: str | None
    """The rule of the finding it is, or None when the commit is fine."""
    severity: Severity
    """The finding's severity."""


STATUSES = {
    "G": Status("good", None, Severity.INFO),
    "U": Status("signed by a key that is not trusted", "unverifiable-signature", Severity.LOW),
    "N": Status("unsigned", "unsigned-commit", Severity.MEDIUM),
    "E": Status("cannot be verified (unknown key)", "unverifiable-signature", Severity.LOW),
    "X": Status("expired signature", "unverifiable-signature", Severity.LOW),
    "Y": Status("signed by an expired key", "unverifiable-signature", Severity.LOW),
    "R": Status("signed by a revoked key", "bad-signature", Severity.HIGH),
    "B": Status("bad signature", "bad-signature", Severity.HIGH),
}
RULES = {
    "unsigned-commit": ("Unsigned commit", "A commit in the pushed range carries no signature: nothing shows who "
                        "made it.", "Sign commits (git config commit.gpgsign true, with a GPG or SSH key) and require "
                        "signed commits in the branch protection rules."),
    "unverifiable-signature": ("Signature that cannot be verified", "A commit is signed, but by a key that is not in "
                               "the keyring or allowed-signers file given (or not trusted there), or the signature "
                               "or key has expired.",
                               "Add the signer's public key to the allowed signers (--allowed-signers) or keyring, "
                               "or re-sign with a current key."),
    "bad-signature": ("Bad commit signature", "A commit's signature does not match its content, or its key has been "
                      "revoked: the commit may have been altered or forged.",
                      "Treat the commit as untrusted: find who pushed it, and rewrite or revert it."),
}
_FIELDS = "%H%x00%G?%x00%GK%x00%an"


def scan(root: Path, since: str, timeout: float, allowed_signers: Path | None = None) -> tuple[list[Finding], ToolRun]:
    """A finding per commit of `since..HEAD` not signed by a verifiable key; statuses in the notes."""
    with tempfile.TemporaryDirectory(prefix="mlsec-signatures-") as tmp:
        home = Path(tmp)
        span, run = git_history.resolve(root, since, home, timeout)
        if span is None:
            return [], ToolRun("git-signatures", ToolStatus.FAILED, version=run.version, message=run.message)
        config = ["-c", f"gpg.ssh.allowedSignersFile={allowed_signers or os.devnull}"]
        out, run = git_history.git(root, [*config, "log", f"--format=%x1e{_FIELDS}", "--name-only", "--relative",
                                          "--no-renames", "--diff-merges=first-parent",
                                          f"--max-count={git_history.MAX_COMMITS}", f"{span.base}..{span.head}",
                                          "--", "."], home, timeout,
                                   extra={"GNUPGHOME": os.environ.get("GNUPGHOME")
                                          or str(Path.home() / ".gnupg")})
    if out is None:
        return [], ToolRun("git-signatures", ToolStatus.FAILED, version=run.version, command=run.command,
                           message=safe(f"cannot read the commits since {since}: {run.message}"))
    findings: list[Finding] = []
    notes: list[str] = []
    commits = [c for c in out.split("\x1e") if c.strip()]
    fallback = next((f for c in commits for f in c.split("\n")[1:] if f.strip()), "")
    for record in commits:
        head, *files = record.split("\n")
        sha, letter, key, author = [*head.split("\x00"), "", "", ""][:4]
        status = STATUSES.get(letter, STATUSES["E"])
        if len(notes) < MAX_NOTES:
            notes.append(safe(f"{sha[:12]}: {status.word}{f' (key {key[-16:]})' if key else ''}"))
        if status.rule is None:
            continue
        path = next((f for f in files if f.strip()), fallback)
        title, full, fix = RULES[status.rule]
        rule = Rule(id=f"git/{status.rule}", name="".join(w.title() for w in status.rule.split("-")),
                    short_description=title, full_description=full, help_text=fix, help_uri=HELP + status.rule,
                    tags=("supply-chain", "git", "commit-signature"))
        findings.append(Finding(rule=rule, severity=status.severity,
                                message=safe(f"commit {sha[:12]} by {author[:80]}: {status.word}"),
                                location=Location(path or ".", None, None,
                                                  logical=sha, logical_kind="commit"),
                                properties=(("commit", sha), ("signature-status", letter))))
    if len(commits) > MAX_NOTES:
        notes.append(f"... and {len(commits) - MAX_NOTES} more commit(s)")
    return findings, ToolRun("git-signatures", ToolStatus.OK, version=run.version, command=run.command,
                             notes=(f"{len(commits)} commit(s) since {since} checked", *notes))
