"""model-scan (ML stage 7): model artifacts checked by content, never loaded, plus modelscan as a second opinion.

Every regular file under the root is detected by its bytes (not its name) and handed to the analyzer for
its format; archives are opened with limits and recursed. Symlinks are never followed: one pointing out
of the root is a finding. Each in-house analyzer that ran is a ToolRun, so a crash fails closed.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from mlsec_actions.analyzers import archive, hf_remote_code, pickle_allow, tree
from mlsec_actions.analyzers import archive_rules as rules
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.dispatch import Dispatcher, prompt_entry
from mlsec_actions.findings import (
    CoverageGap,
    Finding,
    Location,
    Severity,
    StageResult,
    ToolRun,
    ToolStatus,
    sort_findings,
)
from mlsec_actions.stages.base import (
    ScanContext,
    Stage,
    add_scan_arguments,
    non_negative_int,
    positive_int,
    processing,
    run_scan,
)
from mlsec_actions.tools import garak, modelscan

STAGE_ID = "model-scan"
TOOL = "mlsec-model-scan"
HF_TOOL = "mlsec-hf-remote-code"
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "node_modules", "mlsec-results", "__pycache__",
                       ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tox"})
_MIB = 1024 * 1024


def configure(parser: argparse.ArgumentParser) -> None:
    add_scan_arguments(parser, STAGE_ID)
    parser.add_argument("--no-modelscan", action="store_true",
                        help="do not run modelscan as a second opinion (the in-house analyzers always run)")
    parser.add_argument("--max-member-mb", type=positive_int, default=512,
                        help="largest archive member or decompressed stream read, in MiB (default: %(default)s)")
    parser.add_argument("--max-entries", type=positive_int, default=10_000,
                        help="archive entries read per archive (default: %(default)s)")
    parser.add_argument("--max-depth", type=non_negative_int, default=4,
                        help="archive nesting depth (default: %(default)s)")
    parser.add_argument("--canary", action="append", default=[], metavar="TOKEN",
                        help="a canary token that must never appear in prompt files (repeatable)")
    parser.add_argument("--garak-report", action="append", default=[], type=Path, metavar="FILE",
                        help="import a garak report.jsonl: each failed probe family becomes a finding (repeatable)")
    parser.add_argument("--policy", default=None, metavar="POLICY",
                        help="gate policy (a file, or default/strict) whose model-scan.allow-globals accepts exact "
                             "pickle imports after review (default: none)")


def _limits(args: argparse.Namespace) -> archive.Limits:
    member = max(1, int(getattr(args, "max_member_mb", 512))) * _MIB
    return archive.Limits(max_entries=max(1, int(getattr(args, "max_entries", 10_000))),
                          max_member_bytes=member, max_total_bytes=max(member, 8 * member),
                          max_depth=max(0, int(getattr(args, "max_depth", 4))))


def walk(root: Path, target: Path) -> Iterator[tree.Entry]:
    """Every entry under the target, iteratively (`analyzers/tree.py`); symlinks are reported, not followed."""
    return tree.walk(root, target, SKIP_DIRS)


def scan(ctx: ScanContext) -> StageResult:
    args = ctx.args
    allows = _allows(args)  # a bad policy stops the stage before anything is scanned
    entries = list(walk(ctx.root, ctx.target))
    # modelscan is a separate process: start it first so it runs while our own analyzers do. It gets only
    # the regular files the walk found inside the root (never a symlink), see tools/modelscan.py.
    with ThreadPoolExecutor(max_workers=1) as pool:
        files = [(e.rel, e.path) for e in entries if e.path is not None]
        theirs = None if getattr(args, "no_modelscan", False) else pool.submit(
            modelscan.scan, files, args.timeout, _limits(args).max_entries)
        return _scan(ctx, entries, theirs, allows)


def _scan(ctx: ScanContext, entries: list[tree.Entry], pending: Future[tuple[list[Finding], ToolRun]] | None,
          allows: tuple[pickle_allow.Allow, ...] = ()) -> StageResult:
    args = ctx.args
    dispatcher = Dispatcher(limits=_limits(args), text=prompt_entry(tuple(getattr(args, "canary", None) or ())))
    findings: list[Finding] = _garak(ctx)
    hf_folders: set[str] = set()
    gaps: list[CoverageGap] = []
    for entry in entries:
        rel, path = entry.rel, entry.path
        if path is None:
            findings.extend(tree.not_scanned(entry, gaps))
            continue
        processing(rel)  # a crash below names this file
        if hf_remote_code.is_config_name(path.name):
            hf_folders.add(Path(rel).parent.as_posix())
        findings.extend(_scan_file(dispatcher, rel, path))
    hf_findings: list[Finding] = []
    for folder in sorted(hf_folders):
        hf_findings.extend(hf_remote_code.analyze_folder(ctx.root, "" if folder == "." else folder))
    findings.extend(hf_findings)
    findings, allowed = pickle_allow.apply(findings, allows)
    gaps.extend(allowed)
    tools = [ToolRun(TOOL, ToolStatus.OK, gaps=(*gaps, *dispatcher.gaps)), *_analyzer_runs(dispatcher)]
    if hf_folders:
        tools.append(ToolRun(HF_TOOL, ToolStatus.OK))
    if getattr(args, "garak_report", None):
        tools.append(ToolRun("garak-import", ToolStatus.OK))
    if pending is None:
        tools.append(ToolRun(modelscan.SPEC.name, ToolStatus.SKIPPED, message="disabled with --no-modelscan"))
    else:
        theirs, run = pending.result()
        findings = modelscan.merge(findings, theirs)
        tools.append(run)
    return StageResult(STAGE_ID, sort_findings(findings), tuple(tools),
                       extra={"formats": dict(sorted(dispatcher.formats.items()))})


def _allows(args: argparse.Namespace) -> tuple[pickle_allow.Allow, ...]:
    """The policy's `model-scan.allow-globals` (a bad policy is an InputError: exit 2, nothing scanned)."""
    source = getattr(args, "policy", None)
    if not source:
        return ()
    from mlsec_actions.gate import policy  # jsonschema and yaml only when a policy is given

    return policy.load(source).allow_globals


def _garak(ctx: ScanContext) -> list[Finding]:
    """garak reports are imported once, with the first scanned path (bad report -> InputError, exit 2)."""
    reports = [Path(r) for r in getattr(ctx.args, "garak_report", None) or []]  # env values arrive as str
    if not reports or Path(ctx.args.paths[0]).resolve() != ctx.target:
        return []
    out: list[Finding] = []
    for report in reports:
        full = report.resolve()
        shown = full.relative_to(ctx.root).as_posix() if full.is_relative_to(ctx.root) else full.name
        out.extend(garak.read_report(full, shown))
    return out


def _scan_file(dispatcher: Dispatcher, rel: str, path: Path) -> list[Finding]:
    try:
        size = path.stat().st_size
        blob = Blob(rel, None, size, lambda: path.open("rb"))
        return dispatcher.scan_file(blob)
    except OSError as e:
        return [Finding(rule=rules.UNREADABLE, severity=Severity.MEDIUM, location=Location(rel),
                        message=f"{rel} cannot be read: {e.strerror or e}.")]


def _analyzer_runs(dispatcher: Dispatcher) -> list[ToolRun]:
    runs = []
    for name in sorted(dispatcher.ran):
        errors = dispatcher.errors.get(name, [])
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            runs.append(ToolRun(name, ToolStatus.FAILED, message=f"crashed on {errors[0]}{more}"))
        else:
            runs.append(ToolRun(name, ToolStatus.OK))
    return runs


def execute(args: argparse.Namespace) -> int:
    return run_scan(args, STAGE_ID, scan)


STAGE = Stage(id=STAGE_ID, summary="model artifacts by content: pickle, archives, numpy, Keras, ONNX, "
                                   "safetensors, GGUF, SavedModel (in-house + modelscan)",
              configure=configure, execute=execute)
