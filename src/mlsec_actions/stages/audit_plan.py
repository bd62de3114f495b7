"""`mlsec audit-plan`: the audit's repository list as a GitHub Actions matrix (docs/audit.md).

Prints the matrix JSON and, in Actions, sets the step outputs `matrix` and `count`, and for `--models`
(`URL#sha256=HEX`, audit_models.py) `models-matrix` and `models-count`; `repositories` and `models` are this
chunk's entries, what the merge expects. `--org`/`--topic` add the repositories a query of GitHub's API names
(audit_query.py, with the token in `GITHUB_TOKEN`) after the listed ones. A bad entry, an API answer that
cannot be read whole, or more repositories (or models) than one matrix may start, is exit 2 before any job is
planned. `--write-lock FILE` with one model writes the `mlsec.lock` its leg fetches with, and plans nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mlsec_actions import audit, audit_models, audit_query, gha, outputs, sanitize
from mlsec_actions.errors import UsageError
from mlsec_actions.stages.base import Stage, positive_int


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repositories", default="",
                        help="owner/name or owner/name@ref, separated by commas, spaces or lines")
    parser.add_argument("--org", default="",
                        help="also every repository of these organisations (GitHub's API; commas, spaces or lines)")
    parser.add_argument("--topic", default="",
                        help="also the repositories carrying any of these topics (in --org when given)")
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
    query = audit_query.parse_query(args.org, args.topic)
    listed = audit.parse_targets(args.repositories, allow_empty=bool(models) or query is not None)
    if query is not None:
        listed = _add_query(listed, query)
    targets = audit.chunk(listed, args.chunk, args.chunks)
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
    gha.set_output("repositories", " ".join(t.label for t in targets))
    gha.set_output("models", " ".join(m.entry for m in models))
    return 0


def _add_query(listed: list[audit.Target], query: audit_query.Query) -> list[audit.Target]:
    """The listed repositories, then the query's (sorted); one already listed, or sharing a listed one's
    results name, is not added twice. Each left-out repository is a notice."""
    base = audit_query.api_base(os.environ)
    found = audit_query.resolve(query, base, os.environ.get("GITHUB_TOKEN", ""), listed=listed)
    notes = found.notes
    listed.extend(found.targets)
    print(f"audit-plan: the query added {len(found.targets)} repositories; {len(notes)} left out", file=sys.stderr)
    for note in notes[:100]:
        print(sanitize.log_line(note), file=sys.stderr)
        gha.annotation("notice", note, title="mlsec audit query", stream=sys.stderr)
    if len(notes) > 100:
        print(f"... and {len(notes) - 100} more left out", file=sys.stderr)
    return listed


STAGE = Stage(id="audit-plan", summary="an org-wide audit's repository list as a matrix (docs/audit.md)",
              configure=configure, execute=execute, listed=False)
