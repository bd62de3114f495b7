"""code-scan (ML stage 3, Dev stage 3): secrets, IaC misconfiguration and dependency vulnerabilities."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlsec_actions.findings import StageResult, sort_findings
from mlsec_actions.stages.base import ScanContext, Stage, add_scan_arguments, run_scan
from mlsec_actions.tools import trivy

STAGE_ID = "code-scan"


def configure(parser: argparse.ArgumentParser) -> None:
    add_scan_arguments(parser, STAGE_ID)
    parser.add_argument("--vuln-db", choices=trivy.VULN_DB_MODES, default="auto",
                        help="dependency vulnerabilities: auto (scan when trivy's DB is cached or downloadable, "
                             "else say so), download (a failed download is a tool error), skip")
    parser.add_argument("--trivy-cache-dir", type=Path, default=None, help="trivy cache folder (default: trivy's own)")
    parser.add_argument("--trivy-db-repository", default=None, metavar="REF",
                        help="where trivy downloads its vulnerability DB from (a mirror; default: trivy's)")
    parser.add_argument("--repo-ignore-files", action="store_true",
                        help="honour the scanned repository's own trivy.yaml, .trivyignore and trivy-secret.yaml "
                             "(off by default: the scanned tree does not configure the scan); each one applied "
                             "is listed as a coverage gap")


def scan(ctx: ScanContext) -> StageResult:
    args = ctx.args
    options = trivy.TrivyOptions(vuln_db=args.vuln_db, timeout=args.timeout, cache_dir=args.trivy_cache_dir,
                                 repo_config=bool(getattr(args, "repo_ignore_files", False)),
                                 db_repository=getattr(args, "trivy_db_repository", None))
    findings, run = trivy.scan(ctx.root, options)
    if ctx.target != ctx.root:
        rel = ctx.target.name
        findings = [f for f in findings if f.location.path == rel]
    return StageResult(STAGE_ID, sort_findings(findings), (run,))


def execute(args: argparse.Namespace) -> int:
    return run_scan(args, STAGE_ID, scan)


STAGE = Stage(id=STAGE_ID, summary="secrets, IaC misconfiguration and dependency vulnerabilities (trivy)",
              configure=configure, execute=execute)
