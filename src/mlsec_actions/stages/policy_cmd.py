"""`mlsec policy validate FILE...`: check gate policies; every problem names the file, line and key (exit 2)."""

from __future__ import annotations

import argparse
import sys

from mlsec_actions.errors import ExitCode, InputError
from mlsec_actions.stages.base import Stage


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("validate",), help="what to do")
    parser.add_argument("files", nargs="+", metavar="FILE", help="policy files, or builtin names (default, strict)")


def execute(args: argparse.Namespace) -> int:
    from mlsec_actions.gate import policy  # jsonschema is slow to import; only this command and the gate need it

    status = ExitCode.OK
    for name in args.files:
        try:
            pol = policy.load(name)
        except policy.PolicyError as e:
            print("\n".join(e.problems), file=sys.stderr)
            status = ExitCode.USAGE
            continue
        except InputError as e:
            print(e.diagnostics(), file=sys.stderr)
            status = ExitCode.USAGE
            continue
        for w in pol.warnings:
            print(f"{w} (warning)", file=sys.stderr)
        print(f"{pol.path}: valid ({len(pol.thresholds)} thresholds, {len(pol.metrics)} metrics, "
              f"{len(pol.waivers)} waivers; sha256 {pol.sha256})")
    return status


STAGE = Stage(id="policy", summary="validate gate policy files: mlsec policy validate FILE...",
              configure=configure, execute=execute, listed=False)
