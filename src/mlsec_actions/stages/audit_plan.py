"""`mlsec audit-plan`: the audit's repository list as a GitHub Actions matrix (docs/audit.md).

Prints the matrix JSON and, in Actions, sets the step outputs `matrix` and `count`. A bad entry, or more
repositories than one matrix may start, is exit 2 before any job is planned.
"""

from __future__ import annotations

import argparse
import json

from mlsec_actions import audit, gha
from mlsec_actions.stages.base import Stage, positive_int


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repositories", default="",
                        help="owner/name or owner/name@ref, separated by commas, spaces or lines")
    parser.add_argument("--chunks", type=positive_int, default=1,
                        help="split the list into this many even runs (default 1)")
    parser.add_argument("--chunk", type=positive_int, default=1, help="which of them this run scans (1-based)")


def execute(args: argparse.Namespace) -> int:
    targets = audit.chunk(audit.parse_targets(args.repositories), args.chunk, args.chunks)
    text = json.dumps(audit.matrix(targets), separators=(",", ":"))
    print(text)
    gha.set_output("matrix", text)
    gha.set_output("count", str(len(targets)))
    return 0


STAGE = Stage(id="audit-plan", summary="an org-wide audit's repository list as a matrix (docs/audit.md)",
              configure=configure, execute=execute, listed=False)
