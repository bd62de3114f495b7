"""`mlsec`: one sub-command per stage, plus `stages`. The one place errors become exit codes.

Option precedence: command line > `MLSEC_<OPTION>` environment variable (how the composite actions
pass inputs) > the stage's section of `--config FILE` > built-in default.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlsec_actions import __version__
from mlsec_actions.errors import ExitCode, InputError, MlsecError, UsageError
from mlsec_actions.stages import PLANNED, STAGES, by_id

_NO_ENV = {"help", "version", "config", "command"}


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="mlsec", description="MLSecOps and DevSecOps pipeline stages.")
    parser.add_argument("--version", action="version", version=f"mlsec-actions {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="STAGE")
    sub.add_parser("stages", help="list the implemented stages")
    subs = {}
    for stage in STAGES:
        sp = sub.add_parser(stage.id, help=stage.summary, description=stage.summary)
        sp.add_argument("--config", type=Path, default=None,
                        help=f"YAML file whose '{stage.id}' section sets defaults for these options")
        stage.configure(sp)
        subs[stage.id] = sp
    return parser, subs


def _env_value(action: argparse.Action, raw: str) -> Any:
    if isinstance(action, argparse._StoreTrueAction):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    convert: Any = action.type if callable(action.type) else str
    if action.nargs in ("*", "+") or isinstance(action, argparse._AppendAction):
        return [convert(p.strip()) for p in raw.replace("\r", "").split("\n") if p.strip()]
    return convert(raw)


def _config_defaults(sub: argparse.ArgumentParser, stage_id: str, path: Path) -> dict[str, Any]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(path, f"cannot read config: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise InputError(path, f"{where}not valid YAML") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InputError(path, "config must be a mapping of stage ids to options")
    section = doc.get(stage_id) or {}
    if not isinstance(section, dict):
        raise InputError(path, f"'{stage_id}' must be a mapping of option names to values")
    known = {a.dest: a for a in sub._actions}
    out: dict[str, Any] = {}
    for key, value in section.items():
        dest = str(key).replace("-", "_")
        if dest not in known or dest in _NO_ENV:
            raise InputError(path, f"{stage_id}.{key}: unknown option for this stage")
        action = known[dest]
        if isinstance(value, list):
            out[dest] = [_env_value(action, str(v))[0] if isinstance(v, str) else v for v in value]
        else:
            out[dest] = _env_value(action, value) if isinstance(value, str) else value
    return out


def _apply_defaults(sub: argparse.ArgumentParser, stage_id: str, argv: Sequence[str]) -> None:
    pre, _ = sub.parse_known_args(argv)
    defaults: dict[str, Any] = {}
    config = pre.config if getattr(pre, "config", None) is not None else os.environ.get("MLSEC_CONFIG") or None
    if config is not None:
        defaults.update(_config_defaults(sub, stage_id, Path(config)))
    for action in sub._actions:
        if action.dest in _NO_ENV:
            continue
        raw = os.environ.get("MLSEC_" + action.dest.upper())
        if raw not in (None, ""):
            try:
                defaults[action.dest] = _env_value(action, raw)
            except (TypeError, ValueError):
                raise UsageError(f"MLSEC_{action.dest.upper()}={raw!r}: not a valid value") from None
    sub.set_defaults(**defaults)


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser, subs = _parser()
    try:
        command = next((a for a in args_in if not a.startswith("-")), None)
        if command in PLANNED and by_id(command) is None:
            implemented = ", ".join(s.id for s in STAGES)
            raise UsageError(f"stage '{command}' is not implemented yet; implemented: {implemented}")
        if command in subs:
            _apply_defaults(subs[command], command, args_in[args_in.index(command) + 1:])
        args = parser.parse_args(args_in)
        if args.command is None:
            parser.print_help(sys.stderr)
            return ExitCode.USAGE
        if args.command == "stages":
            listed = [s for s in STAGES if s.listed]
            width = max(len(s.id) for s in listed)
            for s in listed:
                print(f"{s.id.ljust(width)}  {s.summary}")
            return ExitCode.OK
        stage = by_id(args.command)
        assert stage is not None  # argparse only accepts registered commands
        return int(stage.execute(args))
    except MlsecError as e:
        print(f"mlsec: error: {e.diagnostics()}", file=sys.stderr)
        return int(e.exit_code)
    except SystemExit as e:  # argparse's usage errors and --help/--version
        return e.code if isinstance(e.code, int) else ExitCode.USAGE
    except KeyboardInterrupt:
        print("mlsec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
