"""code-scan (ML stage 3, Dev stage 3): secrets, SAST, IaC misconfiguration and dependency vulnerabilities.

The parts run concurrently (a thread each, at most one per core plus one: the external tools are
processes, the in-house analyzers are quick), each with its own timeout and version. A part that
crashes, is missing or times out is a failed tool in SARIF while the others' findings stay. Results of
different tools about the same file, line and issue are merged into one (`code_scan_merge`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.findings import Finding, StageResult, ToolRun, ToolStatus, sort_findings
from mlsec_actions.stages.base import ScanContext, Stage, add_scan_arguments, run_scan
from mlsec_actions.tools import trivy

STAGE_ID = "code-scan"


@dataclass(frozen=True)
class Part:
    """One tool of the stage."""

    name: str
    """Tool name (as in its ToolRun and rule ids)."""
    run: Callable[[ScanContext], tuple[list[Finding], ToolRun]]
    """Scan the context's root."""


def _trivy(ctx: ScanContext) -> tuple[list[Finding], ToolRun]:
    args = ctx.args
    options = trivy.TrivyOptions(vuln_db=args.vuln_db, timeout=args.timeout, cache_dir=args.trivy_cache_dir,
                                 repo_config=bool(getattr(args, "repo_ignore_files", False)),
                                 db_repository=getattr(args, "trivy_db_repository", None))
    return trivy.scan(ctx.root, options)


def _secrets(ctx: ScanContext) -> tuple[list[Finding], ToolRun]:
    from mlsec_actions.analyzers import secrets

    return secrets.scan(ctx.root, ctx.args.timeout)


def _gitleaks(ctx: ScanContext) -> tuple[list[Finding], ToolRun]:
    from mlsec_actions.tools import gitleaks

    return gitleaks.scan(ctx.root, ctx.args.timeout, bool(getattr(ctx.args, "repo_ignore_files", False)))


def _bandit(ctx: ScanContext) -> tuple[list[Finding], ToolRun]:
    from mlsec_actions.tools import bandit

    return bandit.scan(ctx.root, ctx.args.timeout, bool(getattr(ctx.args, "repo_ignore_files", False)))


def _semgrep(ctx: ScanContext) -> tuple[list[Finding], ToolRun]:
    from mlsec_actions.tools import semgrep

    return semgrep.scan(ctx.root, ctx.args.timeout, bool(getattr(ctx.args, "repo_ignore_files", False)))


def _checkov(ctx: ScanContext) -> tuple[list[Finding], ToolRun]:
    from mlsec_actions.tools import checkov

    return checkov.scan(ctx.root, ctx.args.timeout, bool(getattr(ctx.args, "repo_ignore_files", False)))


def _history(ctx: ScanContext) -> tuple[list[Finding], ToolRun]:
    from mlsec_actions.tools import git_history

    return git_history.scan(ctx.root, ctx.args.since, ctx.args.timeout)


def _signatures(ctx: ScanContext) -> tuple[list[Finding], ToolRun]:
    from mlsec_actions.tools import git_signatures

    return git_signatures.scan(ctx.root, ctx.args.since, ctx.args.timeout, ctx.args.allowed_signers)


def _ml_sast(ctx: ScanContext) -> tuple[list[Finding], ToolRun]:
    from mlsec_actions.analyzers import ml_sast

    return ml_sast.scan(ctx.root, ctx.args.timeout)


PARTS: tuple[Part, ...] = (
    Part("trivy", _trivy),
    Part("gitleaks", _gitleaks),
    Part("bandit", _bandit),
    Part("mlsec-secrets", _secrets),
    Part("mlsec-ml-sast", _ml_sast),
    Part("checkov", _checkov),
)
"""Every part run on every scan, in the order their records appear in SARIF."""
SEMGREP_PARTS: tuple[Part, ...] = (Part("semgrep", _semgrep),)
"""With `--semgrep`: opt-in until it keeps up with the other tools (docs/code-scan.md#semgrep)."""
HISTORY_PARTS: tuple[Part, ...] = (Part("gitleaks-history", _history),)
"""With `--since REV`: the commits of REV..HEAD."""
SIGNATURE_PARTS: tuple[Part, ...] = (Part("git-signatures", _signatures),)
"""With `--since REV --commit-signatures`."""
SLOWEST_FIRST = ("semgrep", "checkov", "bandit", "trivy", "gitleaks")
"""Started first, so the slowest tool never waits for a free worker behind the quick ones."""


def configure(parser: argparse.ArgumentParser) -> None:
    add_scan_arguments(parser, STAGE_ID)
    parser.add_argument("--vuln-db", choices=trivy.VULN_DB_MODES, default="auto",
                        help="dependency vulnerabilities: auto (scan when trivy's DB is cached or downloadable, "
                             "else say so), download (a failed download is a tool error), skip")
    parser.add_argument("--trivy-cache-dir", type=Path, default=None, help="trivy cache folder (default: trivy's own)")
    parser.add_argument("--trivy-db-repository", default=None, metavar="REF",
                        help="where trivy downloads its vulnerability DB from (a mirror; default: trivy's)")
    parser.add_argument("--repo-ignore-files", action="store_true",
                        help="honour the scanned repository's own scanner configuration (trivy.yaml, .trivyignore, "
                             "trivy-secret.yaml, .gitleaks.toml, .gitleaksignore, bandit settings and # nosec, "
                             "#checkov:skip comments, .semgrepignore and # nosemgrep; never the tree's semgrep "
                             "rules) "
                             "(off by default: the scanned tree does not configure the scan); each one applied "
                             "is listed as a coverage gap")
    parser.add_argument("--semgrep", action="store_true",
                        help="also run semgrep with the taint rules shipped in this package (needs the semgrep "
                             "extra; then a missing semgrep is a failed tool). Off by default: on large trees it "
                             "is several times slower than the other tools")
    parser.add_argument("--since", type=rev, default=None, metavar="REV",
                        help="also scan the commits REV..HEAD for secrets (gitleaks over the history: a secret "
                             "added and deleted again is still found); on a pull request, its base commit. The clone "
                             "must hold REV (actions/checkout with fetch-depth: 0)")
    parser.add_argument("--commit-signatures", action="store_true",
                        help="with --since: report commits of the range that are unsigned or whose signature cannot "
                             "be verified (one finding each; every commit's status in the notes)")
    parser.add_argument("--allowed-signers", type=_allowed_signers, default=None, metavar="FILE",
                        help="SSH allowed-signers file that commit signatures are verified against (gpg signatures "
                             "use the caller's keyring)")


def rev(value: str) -> str:
    from mlsec_actions.tools import git_history

    return git_history.rev(value)


def _allowed_signers(value: str) -> Path:
    from mlsec_actions import inputs

    path = Path(value)
    inputs.read_regular(path, "allowed signers file", 1024 * 1024)  # a regular, bounded file, or exit 2
    return path.resolve()


def _parts(args: argparse.Namespace) -> tuple[Part, ...]:
    since = bool(getattr(args, "since", None))
    return (*PARTS, *(SEMGREP_PARTS if getattr(args, "semgrep", False) else ()), *(HISTORY_PARTS if since else ()),
            *(SIGNATURE_PARTS if since and getattr(args, "commit_signatures", False) else ()))


def _guarded(part: Part, ctx: ScanContext) -> tuple[list[Finding], ToolRun]:
    """Run a part; an exception of ours is that part's failure, not the stage's."""
    try:
        return part.run(ctx)
    except Exception as e:  # one part's crash must not hide the others' findings
        from mlsec_actions.tools.base import safe

        return [], ToolRun(part.name, ToolStatus.FAILED, message=safe(f"crashed: {type(e).__name__}: {e}"))


def scan(ctx: ScanContext) -> StageResult:
    from mlsec_actions.stages.code_scan_merge import merge

    parts = _parts(ctx.args)
    workers = min(len(parts), (os.cpu_count() or 1) + 1)
    order = sorted(parts, key=lambda p: SLOWEST_FIRST.index(p.name) if p.name in SLOWEST_FIRST else len(parts))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="code-scan") as pool:
        futures = {p.name: pool.submit(_guarded, p, ctx) for p in order}
        results = [futures[p.name].result() for p in parts]
    findings = [f for found, _ in results for f in found]
    if ctx.target != ctx.root:
        rel = ctx.target.name
        findings = [f for f in findings if f.location.path == rel]
    runs = tuple(run for _, run in results)
    return StageResult(STAGE_ID, sort_findings(merge(findings)), runs, extra=_license_inventory(runs))


def _license_inventory(runs: tuple[ToolRun, ...]) -> dict[str, object]:
    """`run.properties.mlsec-licenses`: trivy's packages and licences; incomplete when trivy did not finish."""
    from mlsec_actions import licenses

    listed = [r for r in runs if r.name == trivy.SPEC.name]
    complete = bool(listed) and all(r.status is ToolStatus.OK and r.licenses is not None for r in listed)
    return {licenses.PROPERTY: licenses.to_property((p for r in listed for p in r.licenses or ()), complete)}


def execute(args: argparse.Namespace) -> int:
    if getattr(args, "commit_signatures", False) and not getattr(args, "since", None):
        from mlsec_actions.errors import UsageError

        raise UsageError("code-scan: --commit-signatures needs --since REV (the range whose commits are checked)")
    return run_scan(args, STAGE_ID, scan)


STAGE = Stage(id=STAGE_ID, summary="secrets, SAST, IaC misconfiguration and dependency vulnerabilities",
              configure=configure, execute=execute)
