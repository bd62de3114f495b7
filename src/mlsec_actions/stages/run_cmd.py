"""`mlsec run`: the whole pipeline locally (pipeline.py), with progress on stderr (progress.py) and
OUT/report.html at the end (report/).

Everything the run will need is checked before the first stage starts (exit 2, one line): the project
folder, the output folder, the config (`--config FILE`, else PATH/.mlsec.yml outside CI: run_config.py), the
policy (a builtin name or a file), the model, dataset, key and model-card paths, `--only`/`--skip`, and every
stage's section of the config, with the same checks as the stage itself applies.

Precedence: the command line > the config's workflow-input keys > the defaults. Relative paths in the config
are read from the project root, as the workflows read them from the repository root, except `path` and
`policy`, which are read beside the config file (a config from the base commit brings its own policy; with
`.mlsec.yml` at the root the two are the same folder).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlsec_actions import catalog, outputs, pipeline, progress, run_config
from mlsec_actions.errors import UsageError
from mlsec_actions.stages import STAGE_IDS, summary
from mlsec_actions.stages.base import Stage, positive_float


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=None, metavar="PATH",
                        help="project to run on (default: the config's `path`, else .)")
    parser.add_argument("--pipeline", choices=catalog.PIPELINES, default="mlsecops",
                        help="which stage set, from the stage catalog (default: %(default)s)")
    parser.add_argument("--only", type=_stage_list, action="append", default=[], metavar="STAGES",
                        help="run only these scan stages (comma-separated, repeatable); the gate still expects "
                             "what the policy requires")
    parser.add_argument("--skip", type=_stage_list, action="append", default=[], metavar="STAGES",
                        help="leave these scan stages out (comma-separated, repeatable); never counted as passed")
    parser.add_argument("--keep-going", action="store_true",
                        help="start every stage even after one failed (default: stages not started yet are not)")
    parser.add_argument("--no-project-config", action="store_true",
                        help=f"do not read PATH/{run_config.FILE_NAME} (never read in GitHub Actions anyway)")
    parser.add_argument("--sign", action="store_true",
                        help="sign after a passing run; without --sign-key a key is generated into --out")
    parser.add_argument("--log-format", choices=progress.FORMATS, default="auto",
                        help="progress on stderr: live (a terminal), plain lines, json (one event per line); "
                             "auto: live on a terminal outside CI, else plain (default: %(default)s)")
    parser.add_argument("--no-report", action="store_true", help="do not write OUT/report.html")
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


def _stage_list(value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected stage ids, comma-separated")
    return names


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


def _in_root(root: Path, value: str | Path) -> Path:
    """A config path: relative to the project root, as CI reads it from the repository root."""
    return (root / value).resolve()


def _signing(args: argparse.Namespace, cfg: run_config.RunConfig, out: Path,
             notes: list[str]) -> tuple[Path | None, bool]:
    """(key, generate it): --sign-key, else --sign or the config's `signing-backend: key` with a generated key."""
    if args.sign_key is not None:
        return Path(args.sign_key).resolve(), False
    backend = cfg.text("signing-backend")
    if args.sign or backend == "key":
        return out / pipeline.GENERATED_KEY, True
    if backend is not None:
        notes.append(f"config signing-backend {backend}: needs CI's identity; mlsec run signs with a key only "
                     "(--sign, --sign-key), so nothing is signed")
    return None, False


def execute(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    first_root = Path(args.path) if args.path is not None else Path()
    stage_ids = frozenset(catalog.stage_ids()) | frozenset(STAGE_IDS)  # `run:` sets this command's defaults
    cfg = run_config.find(first_root, Path(args.config) if args.config is not None else None, stage_ids,
                          discover=not args.no_project_config)
    if args.path is None and cfg.text("path") and cfg.path is not None:
        first_root = cfg.path.parent / str(cfg.text("path"))
    root = first_root
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder")
    root = root.resolve()
    notes = [f"config: {cfg.path} ({cfg.source}, sha256 {cfg.sha256[:12]})"] if cfg.path else []
    notes += cfg.unused()
    models = [Path(m) for m in args.model] or [_in_root(root, m) for m in cfg.items("models")]
    datasets = [_in_root(root, d) for d in cfg.items("datasets")]
    card = cfg.text("model-card")
    model_card = Path(args.model_card) if args.model_card is not None else _in_root(root, card) if card else None
    for name, value in (("sign key", args.sign_key), ("model card", model_card)):
        if value is not None and not Path(value).is_file():
            raise UsageError(f"{value}: {name} file not found")
    for kind, paths in (("model", models), ("dataset", datasets)):
        for path in paths:
            if not path.exists():
                raise UsageError(f"{path}: {kind} not found")
    policy_value = args.policy if args.policy is not None else cfg.text("policy")
    if args.policy is None and policy_value is not None and policy_value not in _builtin_policies():
        # Beside the config, not in the scanned tree: a config from the base commit brings its policy along
        # (the same folder as the project root when .mlsec.yml sits at the root).
        assert cfg.path is not None  # a value came from a file
        policy_value = str((cfg.path.parent / policy_value).resolve())
    policy = _policy(policy_value)
    sign_key, generate = _signing(args, cfg, out, notes)
    try:
        plan = pipeline.plan(root, out, args.pipeline, sign_key=sign_key, policy=policy,
                             models=tuple(m.resolve() for m in models),
                             model_card=model_card.resolve() if model_card else None,
                             config=cfg.path, stage_timeout=args.stage_timeout,
                             only=tuple(n for group in args.only for n in group),
                             skip=tuple(n for group in args.skip for n in group),
                             keep_going=args.keep_going, datasets=tuple(datasets),
                             stage_args=cfg.stage_args(root), config_record=cfg.record(),
                             generate_key=generate, notes=tuple(notes), report=not args.no_report)
    except ValueError as e:
        raise UsageError(f"--only/--skip: {e}") from None
    if sign_key is not None and plan.sign_key is None:
        raise UsageError(f"the {args.pipeline} pipeline has no signing stage built")
    if not plan.scans:
        raise UsageError("--only/--skip leave no scan stage to run")
    from mlsec_actions.stages.notify import channel_ids

    try:
        channels = channel_ids(cfg.items("notify-channels"))
    except UsageError as e:
        raise UsageError(f"{cfg.path}: notify-channels: {e}") from None
    if cfg.path is not None:
        _check_config(cfg.path, [s for s in (*plan.scans, plan.gate, plan.sbom, plan.sign) if s]
                      + (["notify"] if channels else []))
    emit, close = progress.choose(args.log_format)
    try:
        code = pipeline.run(plan, emit)
    finally:
        close()
    if channels:
        _notify(out, channels, cfg.path)
    return code


def _notify(out: Path, channels: list[str], config: Path | None) -> None:
    """The config's `notify-channels`, after the run: its own warnings and errors, never the run's exit code."""
    from mlsec_actions import cli

    args = ["notify", str(out), *(a for c in channels for a in ("--channel", c))]
    cli.main([*args, *(("--config", str(config)) if config is not None else ())])


def _builtin_policies() -> tuple[str, ...]:
    from mlsec_actions.gate import policy

    return tuple(policy.BUILTIN)


STAGE = Stage(id="run", summary=summary("run"),
              configure=configure, execute=execute, listed=False)
