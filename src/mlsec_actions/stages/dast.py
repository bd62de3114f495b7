"""dast (Dev stage 6): a black-box web scan of the deployed service, plus imported scanner reports.

Here the scanner is wapiti (`tools/wapiti.py`, installed in its own venv by `scripts/install-wapiti`), run against
each `--target` URL with a time budget, crawling only under the target's folder; dast's own passive check reads
the target page and its same-origin links for directory listings. On GitHub the action can also run the ZAP
baseline scan (its official action, pinned by SHA) and import its JSON report (`--zap-report`). Burp Suite and
Acunetix XML reports are imported with `--burp-report` / `--acunetix-report`.

Only the hosts the caller lists are contacted: every target must be in the allowlist (`--allow-host`, else the
targets' own hosts), checked before anything is sent (exit 2). A target that does not answer, a scanner that is
missing, crashes, times out, writes no report or crawls nothing fails the stage closed (exit 1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlsec_actions.findings import CoverageGap, Finding, GapKind, StageResult, ToolRun, ToolStatus
from mlsec_actions.stages.base import (
    ScanContext,
    Stage,
    add_scan_arguments,
    non_negative_int,
    processing,
    run_scan,
)

STAGE_ID = "dast"
PASSIVE = "dast"


def configure(parser: argparse.ArgumentParser) -> None:
    add_scan_arguments(parser, STAGE_ID)
    parser.add_argument("--target", action="append", default=[], metavar="URL",
                        help="the deployed service's URL to scan (repeatable); the crawl stays under its folder")
    parser.add_argument("--allow-host", action="append", default=[], metavar="HOST",
                        help="hosts that may be scanned; a target elsewhere is refused (default: the targets' hosts)")
    parser.add_argument("--policy", default=None, metavar="POLICY",
                        help="trusted policy whose `dast.allow-hosts` also bounds the targets")
    parser.add_argument("--wapiti-modules", default=None, metavar="LIST",
                        help="comma-separated wapiti modules (default: injections and header checks)")
    parser.add_argument("--depth", type=non_negative_int, default=3, help="crawl depth (default: %(default)s)")
    parser.add_argument("--no-wapiti", action="store_true", help="only the passive check and imported reports")
    parser.add_argument("--burp-report", action="append", default=[], type=Path, metavar="FILE",
                        help="import a Burp Suite XML issues report (repeatable)")
    parser.add_argument("--acunetix-report", action="append", default=[], type=Path, metavar="FILE",
                        help="import an Acunetix XML export (repeatable)")
    parser.add_argument("--zap-report", action="append", default=[], type=Path, metavar="FILE",
                        help="import a ZAP JSON report, e.g. the baseline scan's report_json.json (repeatable)")


def _imports(args: argparse.Namespace) -> tuple[list[Finding], list[ToolRun]]:
    from mlsec_actions.tools import web_reports

    findings: list[Finding] = []
    runs: list[ToolRun] = []
    for tool, parse, files in (("burp", web_reports.burp, args.burp_report),
                               ("acunetix", web_reports.acunetix, args.acunetix_report),
                               ("zap", web_reports.zap, args.zap_report)):
        gaps: list[CoverageGap] = []
        for path in files:
            processing(path)
            got, more = parse(Path(path))  # a malformed report is exit 2 naming it (InputError)
            findings += got
            gaps += more
        if files:
            runs.append(ToolRun(tool, ToolStatus.OK, notes=(f"{len(files)} report(s) imported",), gaps=tuple(gaps)))
    return findings, runs


def scan(ctx: ScanContext) -> StageResult:
    if Path(ctx.args.paths[0]).resolve() != ctx.target:  # the inputs are options: judged once
        return StageResult(STAGE_ID)
    from mlsec_actions import web_targets
    from mlsec_actions.analyzers import web_passive
    from mlsec_actions.findings import sort_findings
    from mlsec_actions.tools import wapiti

    args = ctx.args
    targets = web_targets.checked_targets(args.target, args.allow_host, policy_hosts=args.policy_hosts)
    mods = wapiti.modules(args.wapiti_modules or wapiti.DEFAULT_MODULES)
    findings, tools = _imports(args)
    if not targets and not tools:
        gap = CoverageGap(GapKind.EXCLUSION, "no --target and no imported report given: nothing was scanned")
        return StageResult(STAGE_ID, (), (ToolRun(PASSIVE, ToolStatus.OK, gaps=(gap,)),))
    budget = args.timeout / max(len(targets), 1)
    passive_gaps: list[CoverageGap] = []
    passive_status, message, pages = ToolStatus.OK, "", 0
    for target in targets:
        got, read = web_passive.directory_listings(target, min(10.0, budget))
        if read == 1 and web_targets.send(target, "GET", target.with_query(target.query),
                                          timeout=min(10.0, budget)).status is None:
            passive_status, message = ToolStatus.FAILED, f"target {target.origin} did not answer: nothing was scanned"
            continue
        findings += got
        pages += read
        if args.no_wapiti:
            passive_gaps.append(CoverageGap(GapKind.EXCLUSION, f"wapiti not run on {target.url} (--no-wapiti)"))
            continue
        found, run = wapiti.scan(target, mods, args.depth, budget)
        findings += found
        tools.append(run)
    if targets:
        tools.insert(0, ToolRun(PASSIVE, passive_status, message=message, gaps=tuple(passive_gaps),
                                notes=(f"directory-listing check: {pages} pages read",)))
    return StageResult(STAGE_ID, sort_findings(findings), tuple(tools))


def execute(args: argparse.Namespace) -> int:
    from mlsec_actions import web_targets
    from mlsec_actions.tools import wapiti

    # Refused before anything is sent: a target outside the allowlist, a module that would leave it.
    args.policy_hosts = web_targets.policy_hosts(args.policy, STAGE_ID)
    web_targets.checked_targets(args.target, args.allow_host, policy_hosts=args.policy_hosts)
    wapiti.modules(args.wapiti_modules or wapiti.DEFAULT_MODULES)
    return run_scan(args, STAGE_ID, scan)


STAGE = Stage(STAGE_ID, "web application scan of the deployed service", configure, execute)
