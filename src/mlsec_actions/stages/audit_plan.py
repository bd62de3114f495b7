"""`mlsec audit-plan`: the audit's repository list as a GitHub Actions matrix (docs/audit.md).

Prints the matrix JSON and, in Actions, sets the step outputs `matrix` and `count`, and for `--models`
(`URL#sha256=HEX`, audit_models.py) `models-matrix` and `models-count`. A bad entry, or more repositories (or
models) than one matrix may start, is exit 2 before any job is planned. `--write-lock FILE` with one model
writes the `mlsec.lock` its leg fetches with, and plans nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlsec_actions import audit, audit_models, gha, outputs
from mlsec_actions.errors import UsageError
from mlsec_actions.stages.base import Stage, positive_int


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repositories", default="",
                        help="owner/name or owner/name@ref, separated by commas, spaces or lines")
    parser.add_argument("--chunks", type=positive_int, default=1,
                        help="split the list into this many even runs (default 1)")
    parser.add_argument("--chunk", type=positive_int, default=1, help="which of them this run scans (1-based)")
    parser.add_argument("--models", default="",
                        help="model URIs as URL#sha256=HEX (https://, s3://), separated by commas, spaces or lines")
    parser.add_argument("--write-lock", type=outputs.output_file, default=None, metavar="FILE",
                        help="with one --models entry: write the mlsec.lock its leg fetches with, plan nothing")


def execute(args: argparse.Namespace) -> int:
    models = audit_models.parse_models(args.models)
    if args.write_lock is not None:
        audit_models.write_lock(models, Path(args.write_lock))
        return 0
    targets = audit.chunk(audit.parse_targets(args.repositories, allow_empty=bool(models)), args.chunk, args.chunks)
    models = audit.chunk(models, args.chunk, args.chunks, what="models")
    if not targets and not models:
        raise UsageError(f"chunk {args.chunk} of {args.chunks}: no repository or model in it")
    text = json.dumps(audit.matrix(targets), separators=(",", ":"))
    models_text = json.dumps(audit_models.matrix(models), separators=(",", ":"))
    print(text)
    if models:
        print(models_text)
    gha.set_output("matrix", text)
    gha.set_output("count", str(len(targets)))
    gha.set_output("models-matrix", models_text)
    gha.set_output("models-count", str(len(models)))
    return 0


STAGE = Stage(id="audit-plan", summary="an org-wide audit's repository list as a matrix (docs/audit.md)",
              configure=configure, execute=execute, listed=False)
