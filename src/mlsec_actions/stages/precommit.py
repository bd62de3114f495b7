"""precommit (ML stage 1, Dev stage 1): a fast secret and model pass, and the repository's pre-commit hooks on
request.

The fast pass is ours and reads every file, never runs one: the in-house secret scanner and model-scan's
in-house analyzers (no modelscan process), so it costs one `mlsec` start-up plus the reading. With
`--run-hooks` the repository's `.pre-commit-config.yaml` runs too (`tools/precommit.py`): that executes the
repository's code, so it is opt-in and belongs in its own job without write tokens.

`--hook` is the mode `.pre-commit-hooks.yaml` uses: the files pre-commit passes are checked, each finding is
printed as one line, no SARIF is written, and the exit code is 1 when a finding is at or above `--fail-on`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlsec_actions import sanitize
from mlsec_actions.errors import UsageError
from mlsec_actions.findings import CoverageGap, Finding, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.stages.base import ScanContext, Stage, add_scan_arguments, processing, run_scan

STAGE_ID = "precommit"
TOOL = "mlsec-precommit"
MAX_TEXT = 4 * 1024 * 1024


def configure(parser: argparse.ArgumentParser) -> None:
    add_scan_arguments(parser, STAGE_ID)
    parser.add_argument("--run-hooks", action="store_true",
                        help="also run the repository's .pre-commit-config.yaml (runs repository code: opt-in)")
    parser.add_argument("--hook", action="store_true",
                        help="pre-commit hook mode: no SARIF, one line per finding, exit 1 on a finding")
    parser.add_argument("--fail-on", choices=[s.name.lower() for s in Severity], default="low",
                        help="--hook: fail on findings at this severity or above (default: %(default)s)")


def _fast_pass(ctx: ScanContext) -> tuple[list[Finding], list[ToolRun]]:
    from mlsec_actions.analyzers import secrets
    from mlsec_actions.stages import model_scan

    gaps: list[CoverageGap] = []
    findings: list[Finding] = []
    for entry in model_scan.walk(ctx.root, ctx.target):
        if entry.path is None:
            continue
        processing(entry.rel)
        try:
            with entry.path.open("rb") as fh:
                head = fh.read(MAX_TEXT + 1)
        except OSError:
            continue  # model-scan's pass below reports unreadable files
        if b"\0" not in head[:8192] and len(head) <= MAX_TEXT:
            findings.extend(secrets.scan_text(entry.rel, head.decode("utf-8", "replace"), gaps))
    options = argparse.Namespace(paths=[str(ctx.target)], no_modelscan=True, max_member_mb=64, max_entries=2_000,
                                 max_depth=3, canary=[], garak_report=[], timeout=ctx.args.timeout)
    models = model_scan.scan(ScanContext(root=ctx.root, target=ctx.target, args=options))
    tools = [ToolRun(secrets.TOOL, ToolStatus.OK, version=secrets.VERSION, gaps=tuple(gaps)),
             *(t for t in models.tools if t.name != "modelscan")]
    return [*findings, *models.findings], tools


def scan(ctx: ScanContext) -> StageResult:
    findings, tools = _fast_pass(ctx)
    if getattr(ctx.args, "run_hooks", False) and ctx.target == ctx.root:
        from mlsec_actions.tools import precommit

        config = ctx.root / ".pre-commit-config.yaml"
        if config.is_file() and not config.is_symlink():
            hooks, run = precommit.run(ctx.root, config, ctx.args.timeout)
            findings += hooks
            tools.append(run)
        else:
            tools.append(ToolRun(precommit.SPEC.name, ToolStatus.SKIPPED, message="no .pre-commit-config.yaml"))
    return StageResult(STAGE_ID, tuple(findings), tuple(tools))


def _hook(args: argparse.Namespace) -> int:
    threshold = Severity.parse(args.fail_on)
    worst = 0
    for raw in args.paths:
        target = Path(raw)
        if not target.exists():
            raise UsageError(f"{target}: no such file or folder")
        resolved = target.resolve()
        root = resolved if resolved.is_dir() else resolved.parent
        result = scan(ScanContext(root=root, target=resolved, args=args))
        for t in result.tools:
            if not t.status.succeeded:
                print(sanitize.log_line(f"mlsec precommit: {t.name} {t.status.value}: {t.message}"), file=sys.stderr)
                worst = 1
        for f in result.findings:
            if f.severity >= threshold:
                where = f"{raw}:{f.location.start_line}" if f.location.start_line else str(raw)
                print(sanitize.log_line(f"{where}: {f.severity.name.lower()}: {f.rule.id}: {f.message}"))
                worst = 1
    return worst


def execute(args: argparse.Namespace) -> int:
    if args.hook:
        return _hook(args)
    return run_scan(args, STAGE_ID, scan)


STAGE = Stage(id=STAGE_ID, summary="fast secret and model pass; the repository's pre-commit hooks with --run-hooks",
              configure=configure, execute=execute)
