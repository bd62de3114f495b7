"""`mlsec report`: report.html from a SARIF folder and a verdict (what `mlsec run` writes at its end), for CI
jobs that gather the stages' SARIF artifacts and the gate's verdict. docs/report.md.

Missing or unreadable inputs do not stop it: the page says which (a report is for reading; the gate decides).
A bad output path is exit 2 before anything is read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlsec_actions import outputs
from mlsec_actions.errors import UsageError
from mlsec_actions.sanitize import log_line
from mlsec_actions.stages import summary
from mlsec_actions.stages.base import Stage


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sarif-dir", type=Path, required=True, help="folder of the stages' SARIF files")
    parser.add_argument("--verdict", type=Path, default=None, help="the gate's verdict JSON")
    parser.add_argument("--sbom", type=Path, default=None, help="CycloneDX SBOM (its models and datasets are listed)")
    parser.add_argument("--run-record", type=Path, default=None, help="mlsec run's run.json (the stage timeline)")
    parser.add_argument("--out", type=outputs.output_file, default=Path("mlsec-results") / "report.html",
                        help="the HTML file to write (default: %(default)s)")


def execute(args: argparse.Namespace) -> int:
    from mlsec_actions import report
    from mlsec_actions.report.collect import Sources

    if not args.sarif_dir.is_dir():
        raise UsageError(f"{args.sarif_dir}: not a folder")
    notes = tuple(f"{p}: not found" for p in (args.verdict, args.sbom, args.run_record) if p is not None
                  and not (p.exists() or p.is_symlink()))
    present = [p if p is not None and (p.exists() or p.is_symlink()) else None
               for p in (args.verdict, args.run_record, args.sbom)]
    path = report.write(Sources(args.sarif_dir, present[0], present[1], present[2], notes), args.out)
    print(log_line(f"report: {path}"), file=sys.stderr)
    return 0


STAGE = Stage(id="report", summary=summary("report"), configure=configure, execute=execute, listed=False)
