"""`mlsec run`: the whole pipeline locally (pipeline.py), with progress on stderr."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlsec_actions import outputs, pipeline
from mlsec_actions.errors import UsageError
from mlsec_actions.stages.base import Stage


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", metavar="PATH", help="project to run on (default: .)")
    parser.add_argument("--pipeline", choices=sorted(pipeline.PIPELINES), default="mlsecops",
                        help="which stage set (default: %(default)s)")
    parser.add_argument("--out", type=outputs.output_dir, default="mlsec-results",
                        help="folder for SARIF, verdict, SBOM, signatures (default: %(default)s)")
    parser.add_argument("--policy", type=Path, default=None, help="gate policy file (default: policies/default.yml)")
    parser.add_argument("--model", type=Path, action="append", default=[],
                        help="model file or folder to record in the SBOM and sign (repeatable)")
    parser.add_argument("--model-card", type=Path, default=None, help="model-card YAML for the SBOM")
    parser.add_argument("--sign-key", type=Path, default=None,
                        help="PEM private key: sign the results after a passing gate (key backend)")


def execute(args: argparse.Namespace) -> int:
    from mlsec_actions.stages import STAGES

    root = Path(args.path)
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder")
    for name, value in (("policy", args.policy), ("sign key", args.sign_key), ("model card", args.model_card)):
        if value is not None and not Path(value).is_file():
            raise UsageError(f"{value}: {name} file not found")
    for model in args.model:
        if not model.exists():
            raise UsageError(f"{model}: model not found")
    available = [s.id for s in STAGES]
    plan = pipeline.plan(root.resolve(), args.out.resolve(), args.pipeline, available,
                         sign_key=args.sign_key.resolve() if args.sign_key else None,
                         policy=args.policy.resolve() if args.policy else None,
                         models=[m.resolve() for m in args.model],
                         model_card=args.model_card.resolve() if args.model_card else None)
    print(f"mlsec run: {args.pipeline} on {root}: {', '.join(plan.scans) or 'no scan stages'}"
          + (" -> gate" if plan.gate else "") + (" -> sbom" if plan.sbom else "")
          + (" -> sign" if plan.sign_key else ""), file=sys.stderr, flush=True)
    return pipeline.run(plan, lambda line: print(line, file=sys.stderr, flush=True))


STAGE = Stage(id="run", summary="run a whole pipeline locally: scan stages in parallel, gate, sbom, sign",
              configure=configure, execute=execute, listed=False)
