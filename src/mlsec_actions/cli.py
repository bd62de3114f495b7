"""`mlsec`: one sub-command per implemented stage of the catalog, plus `stages`, `run` and `policy`. The one
place errors become exit codes: an `MlsecError` is its one-line diagnostic and exit code, any other
exception is exit 1 with one line naming the stage (and the file, when known), never a traceback.

Option precedence: command line > `MLSEC_<OPTION>` environment variable (how the composite actions
pass inputs) > the stage's section of `--config FILE` > built-in default. Every value is checked the same
way whatever its source (the option's type and choices); a bad one is exit 2 naming where it came from
(`mlsec.yml:3: code-scan.vuln-db: invalid choice 'skp' ...`, `MLSEC_VULN_DB: ...`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from mlsec_actions import __version__, catalog
from mlsec_actions.errors import ExitCode, InputError, MlsecError, UsageError
from mlsec_actions.sanitize import log_line
from mlsec_actions.stages import PLANNED, STAGE_IDS, by_id, summary

if TYPE_CHECKING:  # pathlib is imported only by the commands that take paths
    from pathlib import Path

_NO_ENV = {"help", "version", "config", "command"}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
# A config file is a small document; the bounded reader refuses anything else (FIFOs, devices, huge files).
_MAX_CONFIG_BYTES = 1024 * 1024


class _Parser(argparse.ArgumentParser):
    """argparse with one-line, sanitised usage errors (the value in the message may be hostile)."""

    def error(self, message: str) -> NoReturn:
        print(f"mlsec: error: {log_line(f'{self.prog}: {message}')}", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE)


def _parser(configured: Collection[str] = ()) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The `mlsec` parser; only the sub-commands in `configured` get their options (and so their stage module
    imported): the others are listed with their catalog summary, which is all `--help` shows of them."""
    parser: argparse.ArgumentParser = _Parser(prog="mlsec", description="MLSecOps and DevSecOps pipeline stages.")
    parser.add_argument("--version", action="version", version=f"mlsec-actions {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="STAGE", parser_class=_Parser)
    stages = sub.add_parser("stages", help="list the stages (implemented ones; --all: the whole stage map)")
    stages.add_argument("--all", action="store_true", help="also list the stages not built yet")
    subs: dict[str, argparse.ArgumentParser] = {}
    for stage_id in STAGE_IDS:
        sp = sub.add_parser(stage_id, help=summary(stage_id), description=summary(stage_id))
        if stage_id not in configured:
            continue
        from pathlib import Path

        stage = by_id(stage_id)
        assert stage is not None  # STAGE_IDS are the registered ones
        sp.add_argument("--config", type=Path, default=None,
                        help=f"YAML file whose '{stage_id}' section sets defaults for these options")
        stage.configure(sp)
        subs[stage_id] = sp
    return parser, subs


def stage_parsers(stage_ids: Collection[str]) -> dict[str, argparse.ArgumentParser]:
    """The configured sub-command parsers of these stages (e.g. to check their config sections)."""
    return _parser(stage_ids)[1]


def _is_list(action: argparse.Action) -> bool:
    return action.nargs in ("*", "+") or isinstance(action, argparse._AppendAction)


def _one(action: argparse.Action, value: object, where: str) -> Any:
    if value is None or isinstance(value, dict | list):
        raise UsageError(f"{where}: expected a single value, got {type(value).__name__}")
    text = str(value)  # YAML numbers and booleans become text, then the option's own type decides
    convert: Any = action.type if callable(action.type) else str
    try:
        out = convert(text)
    except argparse.ArgumentTypeError as e:
        raise UsageError(f"{where}: {e}") from None
    except (TypeError, ValueError) as e:  # a type's own error class carries its reason; int()/float() do not
        reason = str(e) if type(e) not in (TypeError, ValueError) else "not a valid value"
        raise UsageError(f"{where}: {text!r}: {reason}") from None
    if action.choices is not None and out not in action.choices:
        raise UsageError(f"{where}: invalid choice {out!r} (choose from {', '.join(map(str, action.choices))})")
    return out


def convert_value(action: argparse.Action, value: object, where: str) -> Any:
    """One option value from the environment (text) or a config file (YAML data), checked as the command line
    would check it; `where` names the source in the error."""
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if isinstance(value, bool):
            flag = value
        elif isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            flag = value.strip().lower() in _TRUE
        else:
            raise UsageError(f"{where}: expected true or false, got {value!r}")
        return flag if isinstance(action, argparse._StoreTrueAction) else not flag
    if _is_list(action):
        if isinstance(value, str):  # the environment's form: one item per line
            items: list[object] = [p.strip() for p in value.replace("\r", "").split("\n") if p.strip()]
        else:
            items = value if isinstance(value, list) else [value]
        return [_one(action, v, where) for v in items]
    return _one(action, value, where)


def _env_value(action: argparse.Action, raw: str) -> Any:
    """An `MLSEC_*` value converted for `action` (kept for callers and tests of the environment's list form)."""
    return convert_value(action, raw, f"MLSEC_{action.dest.upper()}")


def _read_config(path: Path) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    # The bounded reader refuses FIFOs, devices and big files; yaml_lines.compose applies its default alias, depth
    # and node limits and keeps the line of every key for the errors.
    import yaml

    from mlsec_actions import inputs
    from mlsec_actions.yaml_lines import DuplicateKey, compose

    data = inputs.read_regular(path, "config", _MAX_CONFIG_BYTES)
    try:
        return compose(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(path, "config is not UTF-8 text") from None
    except DuplicateKey as e:
        raise InputError(f"{path}:{e.line}", f"{e.key}: duplicate key") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise InputError(path, f"{where}not valid YAML") from None
    except RecursionError:
        raise InputError(path, "config is nested too deeply") from None


def config_defaults(sub: argparse.ArgumentParser, stage_id: str, path: Path) -> dict[str, Any]:
    """The `stage_id` section of a config file as checked option values (exit 2 naming file:line: key)."""
    from mlsec_actions.yaml_lines import line_of

    doc, lines = _read_config(path)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InputError(path, "config must be a mapping of stage ids to options")
    from mlsec_actions.run_config import RUN_KEYS  # `.mlsec.yml`'s workflow-input keys sit beside the sections

    unknown = sorted(str(k) for k in doc if k not in catalog.stage_ids() | set(STAGE_IDS) | RUN_KEYS)
    if unknown:
        raise InputError(f"{path}:{line_of(lines, (unknown[0],))}", f"{unknown[0]}: not a stage id")
    section = doc.get(stage_id)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise InputError(f"{path}:{line_of(lines, (stage_id,))}",
                         f"'{stage_id}' must be a mapping of option names to values")
    known = {a.dest: a for a in sub._actions}
    out: dict[str, Any] = {}
    for key, value in section.items():
        where = f"{path}:{line_of(lines, (stage_id, key))}: {stage_id}.{key}"
        dest = str(key).replace("-", "_")
        if dest not in known or dest in _NO_ENV:
            raise UsageError(f"{where}: unknown option for this stage")
        out[dest] = convert_value(known[dest], value, where)
    return out


def _apply_defaults(sub: argparse.ArgumentParser, stage_id: str, argv: Sequence[str]) -> None:
    pre, _ = sub.parse_known_args(argv)
    defaults: dict[str, Any] = {}
    config = pre.config if getattr(pre, "config", None) is not None else os.environ.get("MLSEC_CONFIG") or None
    if config is not None:
        from pathlib import Path

        defaults.update(config_defaults(sub, stage_id, Path(config)))
    for action in sub._actions:
        if action.dest in _NO_ENV:
            continue
        raw = os.environ.get("MLSEC_" + action.dest.upper())
        if raw not in (None, ""):
            defaults[action.dest] = convert_value(action, raw, f"MLSEC_{action.dest.upper()}")
    sub.set_defaults(**defaults)


def _list_stages(everything: bool) -> None:
    rows = [s for s in catalog.CATALOG if everything or s.implemented]
    width = max(len(s.id) for s in rows)

    def numbers(n: tuple[int, ...]) -> str:
        return ",".join(map(str, n)) or "-"

    for s in rows:
        state = "" if s.implemented else "  (not built yet)"
        print(f"{s.id.ljust(width)}  ML {numbers(s.ml):<5} Dev {numbers(s.dev):<7} {s.summary}{state}")


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    command: str | None = None
    if args_in == ["--version"]:  # the one answer that needs nothing else loaded
        print(f"mlsec-actions {__version__}")
        return ExitCode.OK
    try:
        command = next((a for a in args_in if not a.startswith("-")), None)
        parser, subs = _parser((command,) if command in STAGE_IDS else ())
        if command in PLANNED and command not in STAGE_IDS:
            implemented = ", ".join(s.id for s in catalog.implemented())
            raise UsageError(f"stage '{command}' is not implemented yet; implemented: {implemented}")
        if command in subs:
            _apply_defaults(subs[command], command, args_in[args_in.index(command) + 1:])
        args = parser.parse_args(args_in)
        if args.command is None:
            parser.print_help(sys.stderr)
            return ExitCode.USAGE
        if args.command == "stages":
            _list_stages(args.all)
            return ExitCode.OK
        stage = by_id(args.command)
        assert stage is not None  # argparse only accepts registered commands
        from mlsec_actions import outputs
        from mlsec_actions.stages.base import processing

        processing(None)

        with contextlib.ExitStack() as held:
            for folder in stage.locks(args):
                held.enter_context(outputs.lock(folder))
            return int(stage.execute(args))
    except MlsecError as e:
        print(f"mlsec: error: {log_line(e.diagnostics())}", file=sys.stderr)
        return int(e.exit_code)
    except SystemExit as e:  # argparse's usage errors and --help/--version
        return e.code if isinstance(e.code, int) else ExitCode.USAGE
    except KeyboardInterrupt:
        print("mlsec: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug or an unforeseen input: one line naming the stage, exit 1, fail closed
        from mlsec_actions.stages.base import crash_message, current_file

        print(f"mlsec: error: {crash_message(command or 'mlsec', e, current_file())}", file=sys.stderr)
        return ExitCode.ERROR


if __name__ == "__main__":
    sys.exit(main())
