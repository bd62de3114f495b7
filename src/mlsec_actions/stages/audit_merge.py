"""`mlsec audit-merge`: every audited repository's `mlsec run` results -> one verdict, summary and page.

RESULTS holds one folder per repository, named by the plan's `slot` (the audit workflow downloads each scan
job's artifact there). A planned repository without a readable verdict fails the audit. Exit 3 when the
audit fails (written first), 0 when every repository passed. docs/audit.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlsec_actions import audit, audit_models, gha, outputs
from mlsec_actions.errors import ExitCode, UsageError
from mlsec_actions.sanitize import log_line
from mlsec_actions.stages.base import Stage, positive_int


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, help="folder with one results folder per repository (its slot)")
    parser.add_argument("--repositories", default="",
                        help="the audit's list, as given to audit-plan (what must have a result)")
    parser.add_argument("--chunks", type=positive_int, default=1, help="as given to audit-plan")
    parser.add_argument("--chunk", type=positive_int, default=1, help="as given to audit-plan")
    parser.add_argument("--models", default="", help="the audit's model URIs, as given to audit-plan")
    parser.add_argument("--out", type=outputs.output_dir, default=Path("mlsec-audit"),
                        help="where audit-verdict.json, audit-summary.md and audit-report.html go "
                             "(default: %(default)s)")


def execute(args: argparse.Namespace) -> int:
    if not args.results.is_dir():
        raise UsageError(f"{args.results}: not a folder")
    models = audit_models.parse_models(args.models)
    planned = audit.chunk(audit.parse_targets(args.repositories, allow_empty=bool(models)), args.chunk, args.chunks)
    rows = audit.merge(planned, args.results)
    rows += audit.merge(audit.chunk(models, args.chunk, args.chunks, what="models"), args.results)
    if not rows:
        raise UsageError(f"chunk {args.chunk} of {args.chunks}: no repository or model in it")
    outputs.write_text(args.out / "audit-verdict.json", json.dumps(audit.to_json(rows), indent=2) + "\n")
    md = audit.markdown(rows)
    outputs.write_text(args.out / "audit-summary.md", md)
    outputs.write_text(args.out / "audit-report.html", audit.page(rows))
    gha.append_summary(md)
    ok = audit.passed(rows)
    gha.set_output("verdict", "pass" if ok else "fail")
    for r in rows:
        print(log_line(f"{r.target.label}: {r.verdict}" + (f" ({r.problem})" if r.problem else "")),
              file=sys.stderr)
    return ExitCode.OK if ok else ExitCode.GATE_FAILED


STAGE = Stage(id="audit-merge", summary="one verdict, summary and report over an audit's repositories",
              configure=configure, execute=execute, listed=False)
