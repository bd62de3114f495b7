"""`mlsec run`: the whole pipeline locally (pipeline.py), with progress on stderr.

Everything the run will need is checked before the first stage starts (exit 2, one line): the project
folder, the output folder, the policy (a builtin name or a file), the model, key and model-card paths,
and every stage's section of `--config`, with the same checks as the stage itself applies.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlsec_actions import catalog, outputs, pipeline
from mlsec_actions.errors import UsageError
from mlsec_actions.stages import summary
from mlsec_actions.stages.base import Stage, positive_float


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", metavar="PATH", help="project to run on (default: .)")
    parser.add_argument("--pipeline", choices=catalog.PIPELINES, default="mlsecops",
                        help="which stage set, from the stage catalog (default: %(default)s)")
    parser.add_argument("--out", type=outputs.output_dir, default="mlsec-results",
                        help="folder for SARIF, verdict, SBOM, signatures; locked during the run and emptied of "
                             "the previous run's results first (default: %(default)s)")
    parser.add_argument("--policy", default=None,
                        help="gate policy: a builtin (default, strict) or a policy file (default: default)")
    parser.add_argument("--model", type=Path, action="append", default=[],
                        help="model file or folder to record in the SBOM and sign (repeatable)")
    parser.add_argument("--model-card", type=Path, default=None, help="model-card YAML for the SBOM")
    parser.add_argument("--sign-key", type=Path, default=None,
                        help="PEM private key: sign the results after a passing run (key backend)")
    parser.add_argument("--stage-timeout", type=positive_float, default=pipeline.DEFAULT_STAGE_TIMEOUT,
                        help="seconds a stage process may run before it is killed and failed (default: %(default)s)")


def _policy(value: str | None) -> str | None:
    """A builtin name as is, a file resolved; checked now so a bad policy stops the run before it starts."""
    if value is None:
        return None
    from mlsec_actions.gate import policy

    if value not in policy.BUILTIN and not Path(value).is_file():
        raise UsageError(f"{value}: policy file not found (builtins: {', '.join(policy.BUILTIN)})")
    policy.load(value)  # PolicyError (exit 2) names the file, line and key
    return value if value in policy.BUILTIN else str(Path(value).resolve())


def _check_config(config: Path, stages: list[str]) -> None:
    """Every stage's section of the config, checked as that stage will check it (file:line: key: problem)."""
    from mlsec_actions import cli

    subs = cli.stage_parsers(stages)
    for stage in stages:
        cli.config_defaults(subs[stage], stage, config)


def execute(args: argparse.Namespace) -> int:
    root = Path(args.path)
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder")
    for name, value in (("sign key", args.sign_key), ("model card", args.model_card)):
        if value is not None and not Path(value).is_file():
            raise UsageError(f"{value}: {name} file not found")
    for model in args.model:
        if not Path(model).exists():
            raise UsageError(f"{model}: model not found")
    policy = _policy(args.policy)
    config = Path(args.config).resolve() if args.config is not None else None
    plan = pipeline.plan(root.resolve(), Path(args.out).resolve(), args.pipeline,
                         sign_key=Path(args.sign_key).resolve() if args.sign_key else None,
                         policy=policy, models=tuple(Path(m).resolve() for m in args.model),
                         model_card=Path(args.model_card).resolve() if args.model_card else None,
                         config=config, stage_timeout=args.stage_timeout)
    if config is not None:
        _check_config(config, [s for s in (*plan.scans, plan.gate, plan.sbom, plan.sign) if s])
    return pipeline.run(plan, lambda line: print(line, file=sys.stderr, flush=True))


STAGE = Stage(id="run", summary=summary("run"),
              configure=configure, execute=execute, listed=False)
