"""fetch (ML stage 2, Dev stage 2): bring in the artifacts `mlsec.lock` pins, checked, or nothing at all.

With a lock (`--lock`, default `PATH/mlsec.lock` when it exists): every artifact is downloaded into a
quarantine folder (bounded: `--max-mb`, `--timeout`, https/s3 only), its SHA-256 checked, its signature
bundle verified with the project's own verify code when it has one (or the lock requires it), then ClamAV
(`tools/clamav.py`) and model-scan's in-house analyzers read it. Only when every artifact passed and every
tool ran are they moved into `--dest` (`supply/place.py`); otherwise nothing is, and `fetch/withheld` says
so. The quarantine is deleted either way.

Without a lock there is nothing to fetch: the stage is the antivirus pass over PATH (Dev stage 2), ClamAV on
every regular file the walk finds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from mlsec_actions import gha
from mlsec_actions.errors import UsageError
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.stages.base import ScanContext, Stage, add_scan_arguments, positive_int, processing, run_scan
from mlsec_actions.supply import rules
from mlsec_actions.supply.lock import LOCK_NAME, Artifact, Lock
from mlsec_actions.tools import clamav

STAGE_ID = "fetch"
TOOL = "mlsec-fetch"
_MIB = 1024 * 1024


def configure(parser: argparse.ArgumentParser) -> None:
    add_scan_arguments(parser, STAGE_ID)
    parser.add_argument("--lock", type=Path, default=None,
                        help=f"the lock file pinning the artifacts (default: PATH/{LOCK_NAME} when it exists)")
    parser.add_argument("--dest", type=Path, default=None,
                        help="folder the artifacts are placed in, by their lock names (default: PATH)")
    parser.add_argument("--max-mb", type=positive_int, default=8192,
                        help="largest artifact downloaded, in MiB (default: %(default)s)")
    parser.add_argument("--clamav-db", type=Path, default=None,
                        help=f"ClamAV signature database, file or folder (default: ${clamav.DB_ENV}, "
                             f"else {clamav.DEFAULT_DB})")
    parser.add_argument("--fail-on", choices=[s.name.lower() for s in Severity], default="high",
                        help="a finding at this severity or above withholds every artifact (default: %(default)s)")
    parser.add_argument("--public-key", type=Path, default=None, help="verify bundles against this PEM public key")
    parser.add_argument("--identity", default=None, help="verify keyless/OpenPubkey bundles: expected signer")
    parser.add_argument("--issuer", default=None, help="expected OIDC issuer (with --identity)")
    parser.add_argument("--trust-policy", type=Path, default=None, metavar="FILE",
                        help="YAML list of trusted signers (docs/signing.md#trust-policy); adds to --public-key "
                             "and --identity; checked even when nothing is signed")
    parser.add_argument("--pin", default=None, metavar="URL",
                        help="add URL to the lock (with --name) at the digest it serves now, then stop")
    parser.add_argument("--name", default=None, help="--pin: where the artifact lands, relative to --dest")


def _verifiers(args: argparse.Namespace) -> list[object]:
    from mlsec_actions.stages import verify

    keys = [args.public_key] if args.public_key is not None else []
    return list(verify.trusted_verifiers(public_keys=keys, identity=args.identity, issuer=args.issuer, offline=True,
                                         trust_policy=args.trust_policy))


def _lock(ctx: ScanContext) -> Lock | None:
    from mlsec_actions.supply import lock, sources

    explicit = ctx.args.lock
    path = Path(explicit) if explicit is not None else ctx.root / LOCK_NAME
    if explicit is None and not path.is_file():
        return None
    pinned = lock.load(path)
    sources.check_environment(pinned.artifacts)  # HF_ENDPOINT, MLFLOW_TRACKING_URI: exit 2 before any download
    return pinned


def _database(ctx: ScanContext, dest: Path | None) -> Path:
    """The ClamAV database, refused (exit 2) when it lies in the scanned tree, the source root or the
    destination, by its own path or where its links lead: the repository must not choose the signatures."""
    db = clamav.database(ctx.args.clamav_db)
    trees = [ctx.root, *([dest] if dest is not None else []),
             *([Path(ctx.args.source_root)] if ctx.args.source_root is not None else [])]

    def both(path: Path) -> tuple[Path, Path]:  # as spelled (a link in the tree) and where it leads
        return Path(os.path.normpath(path.absolute())), path.resolve()

    for tree in trees:
        if any(p.is_relative_to(t) for p in both(db) for t in both(tree)):
            raise UsageError(f"{db}: the ClamAV database is inside the scanned tree {tree}; the signatures must "
                             "come from the runner, not the repository")
    return db


def scan(ctx: ScanContext) -> StageResult:
    from mlsec_actions.supply import place

    pinned = _lock(ctx)
    policy = ctx.args.trust_policy is not None  # a given policy is read and checked always: a bad one is exit 2
    if pinned is None:
        if policy:
            _verifiers(ctx.args)
        return _antivirus_tree(ctx, _database(ctx, None))
    named = Path(ctx.args.dest) if ctx.args.dest is not None else ctx.root
    place.refuse_linked_parents(named)  # every folder above it too: `a -> /etc` with `--dest a/b` is refused
    if named.is_symlink() or not named.is_dir():  # checked as named: a planted link is refused, not followed
        raise UsageError(f"{named}: destination is not a folder (or is a link)")
    dest = named.resolve()
    db = _database(ctx, dest)
    signed = pinned.require_signatures or any(a.bundle for a in pinned.artifacts)
    verifiers = _verifiers(ctx.args) if signed or policy else []  # none configured: exit 2 before any download
    quarantine = Path(tempfile.mkdtemp(prefix=".mlsec-quarantine-", dir=dest))
    try:
        return _fetch_all(ctx, pinned, dest, quarantine, db, verifiers)
    finally:
        shutil.rmtree(quarantine, ignore_errors=True)


def _antivirus_tree(ctx: ScanContext, db: Path) -> StageResult:
    from mlsec_actions.stages import model_scan

    gaps: list[CoverageGap] = []
    files: list[tuple[str, Path]] = []
    for entry in model_scan.walk(ctx.root, ctx.target):
        if entry.path is None:
            if entry.skip is not None:
                gaps.append(CoverageGap(GapKind.FILE_SKIPPED, f"{entry.rel}: {entry.problem}", entry.rel))
            continue
        files.append((entry.rel, entry.path))
    findings, run = clamav.scan(files, ctx.args.timeout, db)
    return StageResult(STAGE_ID, tuple(findings), (ToolRun(TOOL, ToolStatus.OK, gaps=tuple(gaps)), run))


def _fetch_all(ctx: ScanContext, pinned: Lock, dest: Path, quarantine: Path, db: Path,
               verifiers: list[object]) -> StageResult:
    from mlsec_actions.supply import place

    findings: list[Finding] = []
    errors: list[str] = []
    kept: list[Artifact] = []
    for artifact in pinned.artifacts:
        processing(artifact.name)
        problem = _one(ctx, artifact, quarantine, pinned.require_signatures, verifiers, findings)
        if problem:
            errors.append(f"{artifact.name}: {problem}")
        elif (quarantine / artifact.name).is_file():
            kept.append(artifact)
    processing(None)
    files = [(a.name, quarantine / a.name) for a in kept]
    av_findings, av_run = clamav.scan(files, ctx.args.timeout, db)
    ms_findings, ms_runs = _model_scan(ctx, quarantine) if kept else ([], [])
    findings += av_findings + ms_findings
    fetch_run = ToolRun(TOOL, ToolStatus.FAILED if errors else ToolStatus.OK,
                        message=errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
                        if errors else "")
    tools = (fetch_run, av_run, *ms_runs)
    threshold = Severity.parse(ctx.args.fail_on)
    blocking = [f for f in findings if f.severity >= threshold]
    placed: list[str] = []
    if blocking or not all(t.status.succeeded for t in tools) or len(kept) != len(pinned.artifacts):
        findings.append(_withheld(pinned, blocking, tools))
    else:
        names = [a.name for a in kept] + [a.name + ".sigstore.json" for a in kept if a.bundle]
        placed = place.place(quarantine, dest, names)
    gha.set_output("artifacts", str(len([n for n in placed if not n.endswith(".sigstore.json")])))
    gha.set_output("withheld", "true" if not placed and pinned.artifacts else "false")
    return StageResult(STAGE_ID, tuple(findings), tools, extra={"placed": placed})


def _withheld(pinned: Lock, blocking: list[Finding], tools: tuple[ToolRun, ...]) -> Finding:
    why = (f"{len(blocking)} finding(s) at or above the --fail-on severity" if blocking
           else "a tool failed: " + ", ".join(f"{t.name} {t.status.value}" for t in tools if not t.status.succeeded))
    return Finding(rule=rules.WITHHELD, severity=Severity.HIGH, location=Location(pinned.path.name),
                   message=f"None of the {len(pinned.artifacts)} artifact(s) were placed: {why}.")


def _one(ctx: ScanContext, artifact: Artifact, quarantine: Path, require: bool, verifiers: list[object],
         findings: list[Finding]) -> str | None:
    """Download, digest and signature of one artifact; returns a download error, appends findings."""
    from mlsec_actions.supply import download

    target = quarantine / artifact.name
    target.parent.mkdir(parents=True, exist_ok=True)
    limit = ctx.args.max_mb * _MIB if artifact.size is None else min(ctx.args.max_mb * _MIB, artifact.size)
    try:
        got = download.fetch(artifact.source, target, limit, ctx.args.timeout)
    except download.DownloadError as e:
        target.unlink(missing_ok=True)
        return str(e)
    except download.LimitError as e:
        target.unlink(missing_ok=True)
        rule, message = ((rules.DIGEST_MISMATCH, f"not the pinned {artifact.size} bytes: {e}") if artifact.size
                         is not None and artifact.size < ctx.args.max_mb * _MIB else (rules.SIZE_LIMIT, str(e)))
        findings.append(_finding(rule, artifact, message))
        return None
    if got.sha256 != artifact.sha256 or (artifact.size is not None and got.size != artifact.size):
        target.unlink()
        findings.append(_finding(rules.DIGEST_MISMATCH, artifact, f"got SHA-256 {got.sha256} ({got.size} bytes), "
                                                                  f"the lock pins {artifact.sha256}"))
        return None
    return _signature(ctx, artifact, target, require, verifiers, findings)


def _signature(ctx: ScanContext, artifact: Artifact, target: Path, require: bool, verifiers: list[object],
               findings: list[Finding]) -> str | None:
    from mlsec_actions.signing.verify import bundle_path, verify_artifact
    from mlsec_actions.supply import download

    if artifact.bundle is None:
        if require:
            target.unlink()
            findings.append(_finding(rules.SIGNATURE_MISSING, artifact, "the lock requires a signature; none given"))
        return None
    try:
        download.fetch(artifact.bundle, bundle_path(target), 4 * _MIB, ctx.args.timeout)
    except (download.DownloadError, download.LimitError) as e:
        target.unlink()
        return f"bundle: {e}"
    check = verify_artifact(target, verifiers)  # type: ignore[arg-type]
    if not check.ok:
        target.unlink()
        findings.append(_finding(rules.SIGNATURE_INVALID, artifact, check.message))
    return None


def _finding(rule: object, artifact: Artifact, message: str) -> Finding:
    severity = Severity.HIGH if rule is rules.SIZE_LIMIT else Severity.CRITICAL
    return Finding(rule=rule, severity=severity, location=Location(artifact.name),  # type: ignore[arg-type]
                   message=f"{artifact.name} from {artifact.source.url}: {message}.",
                   properties=(("url", artifact.source.url), ("sha256", artifact.sha256)))


def _model_scan(ctx: ScanContext, quarantine: Path) -> tuple[list[Finding], list[ToolRun]]:
    """model-scan's in-house analyzers on the quarantine (modelscan runs in the model-scan stage itself)."""
    from mlsec_actions.stages import model_scan

    options = argparse.Namespace(paths=[str(quarantine)], no_modelscan=True, max_member_mb=512, max_entries=10_000,
                                 max_depth=4, canary=[], garak_report=[], timeout=ctx.args.timeout)
    result = model_scan.scan(ScanContext(root=quarantine, target=quarantine, args=options))
    return list(result.findings), list(result.tools)


def execute(args: argparse.Namespace) -> int:
    if args.pin is not None:
        return _pin(args)
    return run_scan(args, STAGE_ID, scan)


def _pin(args: argparse.Namespace) -> int:
    import sys

    from mlsec_actions.sanitize import log_line
    from mlsec_actions.supply import pin

    if not args.name:
        raise UsageError("--pin needs --name (where the artifact lands)")
    lock_path = Path(args.lock) if args.lock is not None else Path(args.paths[0]) / LOCK_NAME
    entry = pin.add(lock_path, str(args.pin), str(args.name), args.max_mb * _MIB, args.timeout)
    print(log_line(f"fetch: pinned {entry['name']} at sha256:{entry['sha256']} ({entry['size']} bytes) in "
                   f"{lock_path}; review the artifact before committing the pin"), file=sys.stderr)
    return 0


STAGE = Stage(id=STAGE_ID, summary="fetch artifacts pinned by SHA-256 in mlsec.lock: verify, antivirus, "
                                   "model-scan, then place them (or none)",
              configure=configure, execute=execute)
