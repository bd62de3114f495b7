"""External scanners described as data, and the one place they are executed.

A `ToolSpec` says how to find a tool, read its version, what its exit codes mean (MegaLinter's descriptor
idea) and how its configuration discovery is neutralised (`Isolation`); adapters add only the parsing
that differs. `execute` never raises for a tool's failure: it returns a `ToolRun` with MISSING, TIMEOUT
or FAILED so the stage reports it.

Isolation is enforced here, not left to each adapter: every tool runs in a folder we own (never the
scanned tree), with the environment variables it reads as configuration removed, with Python's own
start-up hooks (`PYTHONPATH`, `PYTHONSTARTUP`, ...) and the package installers' settings removed, and
only with the flags that point its discovery at our files (`execute` refuses a command without them).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlsec_actions import sanitize
from mlsec_actions.findings import ToolRun, ToolStatus
from mlsec_actions.tools import process

_STDERR_TAIL = 400
_VERSION_TIMEOUT = 10.0
MAX_STDOUT = 256 * 1024 * 1024
"""Standard output kept from one tool; more is a failure (a tool printing gigabytes must not exhaust memory)."""
STRIPPED_ENV_PREFIXES = ("PYTHON", "PIP_", "UV_")
"""Environment every tool starts without: Python start-up hooks, pip's and uv's configuration."""


@dataclass(frozen=True)
class Isolation:
    """How a tool's own configuration discovery is neutralised (the scanned tree configures nothing)."""

    discovers: tuple[str, ...]
    """Files the tool reads on its own from its current folder (or the scanned tree) when not told otherwise."""
    forced_flags: tuple[str, ...] = ()
    """Flags every scan command must carry, each pointing discovery at a file of ours (checked by `execute`)."""
    env_prefixes: tuple[str, ...] = ()
    """Prefixes of environment variables the tool reads as configuration; removed before it starts."""
    python_module: str | None = None
    """Run as `python -I -m <module>` with this interpreter (isolated mode: no cwd or user site on sys.path)."""


@dataclass(frozen=True)
class ToolSpec:
    """How to run one external tool."""

    name: str
    """Tool name, also the rule-id prefix (`trivy`)."""
    executable: str
    """Program name looked up next to this Python, then on PATH; `MLSEC_<NAME>_BIN` overrides."""
    version_args: tuple[str, ...]
    """Arguments that print the version."""
    version_pattern: str
    """Regex with one group that captures the version from that output."""
    ok_exit_codes: frozenset[int]
    """Exit codes meaning 'ran to completion' (findings or not)."""
    install_hint: str
    """What to tell a user for whom the tool is missing."""
    isolation: Isolation = field(default_factory=lambda: Isolation(discovers=()))
    """What the tool discovers by itself and how that is neutralised."""
    version_in_output: bool = False
    """The adapter reads the version from the tool's report, saving a `--version` process on success."""
    distribution: str | None = None
    """The Python distribution that installs the tool: when the program about to run is one of its installed
    files (the module run with `python -I -m`, or the launcher found beside this Python), the tool's version is
    that distribution's release (`8.30.1` of `8.30.1.post3`), read without a `--version` process."""


@dataclass(frozen=True)
class Execution:
    """A finished (or failed) tool process."""

    run: ToolRun
    """Status record for SARIF and the gate."""
    stdout: bytes
    """Raw standard output (empty when the tool did not run)."""
    stderr: str
    """Standard error text (its tail), for diagnostics."""
    seconds: float
    """Wall time."""


def _override(spec: ToolSpec) -> str | None:
    return os.environ.get(f"MLSEC_{spec.name.upper().replace('-', '_')}_BIN") or None


def locate(spec: ToolSpec) -> str | None:
    """Find the tool: an explicit override, this interpreter's bin folder (a venv), then PATH."""
    override = _override(spec)
    if override:
        return override if Path(override).is_file() else None
    beside = Path(sys.executable).parent / spec.executable
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(spec.executable)


def command_prefix(spec: ToolSpec) -> tuple[str, ...] | None:
    """What starts the tool: `python -I -m module` for a Python tool (unless overridden), else its binary."""
    module = spec.isolation.python_module
    if module and not _override(spec):
        top = module.split(".", 1)[0]
        return (sys.executable, "-I", "-m", module) if importlib.util.find_spec(top) else None
    binary = locate(spec)
    return (binary,) if binary else None


def child_env(spec: ToolSpec, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment less what would configure the tool or the interpreter, plus `extra`."""
    drop = STRIPPED_ENV_PREFIXES + spec.isolation.env_prefixes
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(drop)}
    env.update(extra or {})
    return env


def _check_isolation(spec: ToolSpec, args: Sequence[str]) -> None:
    missing = [f for f in spec.isolation.forced_flags if f not in args]
    if missing:
        raise ValueError(f"{spec.name} command lacks its isolation flags {missing}")


@functools.cache
def _version(prefix: tuple[str, ...], args: tuple[str, ...], pattern: str, env_key: tuple[tuple[str, str], ...]
             ) -> str | None:
    with tempfile.TemporaryDirectory(prefix="mlsec-version-") as cwd:
        try:
            got = process.run((*prefix, *args), cwd=Path(cwd), env=dict(env_key), timeout=_VERSION_TIMEOUT,
                              max_stdout=64 * 1024)
        except OSError:
            return None
    match = re.search(pattern, _decode(got.stdout) + _decode(got.stderr))
    return match.group(1) if match else None


@functools.cache
def _installed(distribution: str, program: str) -> str | None:
    """`distribution`'s release when `program` is one of the files it installed, else None."""
    try:
        dist = importlib.metadata.distribution(distribution)
        target = Path(program).resolve()
        owned = any(Path(str(dist.locate_file(f))).resolve() == target for f in dist.files or ())
    except (importlib.metadata.PackageNotFoundError, OSError, ValueError):
        return None
    release = re.match(r"\d+(?:\.\d+)*", str(dist.version or ""))
    return release.group(0) if owned and release else None


def _program(spec: ToolSpec, prefix: tuple[str, ...]) -> str | None:
    """The file that will run: the module's source for `python -I -m`, else the binary."""
    module = spec.isolation.python_module
    if module and prefix[:1] == (sys.executable,):
        found = importlib.util.find_spec(module.split(".", 1)[0])
        return found.origin if found is not None else None
    return prefix[0]


def version(spec: ToolSpec, timeout: float = _VERSION_TIMEOUT) -> str | None:
    """The tool's version: its distribution's release when the program is that distribution's (see
    `ToolSpec.distribution`; never with a `MLSEC_<NAME>_BIN` override), else from `version_args`, or None;
    never waits longer than `timeout` (at most 10 s)."""
    prefix = command_prefix(spec)
    if prefix is None or timeout <= 0:
        return None
    if spec.distribution and not _override(spec) and (program := _program(spec, prefix)):
        installed = _installed(spec.distribution, program)
        if installed:
            return installed
    return _version(prefix, spec.version_args, spec.version_pattern, tuple(sorted(child_env(spec).items())))


def execute(spec: ToolSpec, args: Sequence[str], *, timeout: float, workdir: Path | None = None,
            scanned: Path | None = None, env: Mapping[str, str] | None = None,
            max_stdout: int = MAX_STDOUT) -> Execution:
    """Run the tool; a missing binary, a timeout, an overflow or an unexpected exit become a failed `ToolRun`.

    It runs in `workdir` (a folder of ours; a fresh temporary one when None), which must not be inside
    `scanned`, the tree being scanned. `timeout` is the whole budget: nothing is added to it.
    """
    _check_isolation(spec, args)
    prefix = command_prefix(spec)
    if prefix is None:
        run = ToolRun(spec.name, ToolStatus.MISSING, message=f"{spec.executable} not found; {spec.install_hint}")
        return Execution(run, b"", "", 0.0)
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix=f"mlsec-{spec.name}-") as tmp:
            return execute(spec, args, timeout=timeout, workdir=Path(tmp), scanned=scanned, env=env,
                           max_stdout=max_stdout)
    if scanned is not None and workdir.resolve().is_relative_to(scanned.resolve()):
        raise ValueError(f"{spec.name} must not run inside the scanned tree ({workdir})")
    shown = (spec.executable, *args)
    try:
        got = process.run((*prefix, *args), cwd=workdir, env=child_env(spec, env), timeout=timeout,
                          max_stdout=max_stdout)
    except OSError as e:
        run = ToolRun(spec.name, ToolStatus.FAILED, command=shown, message=safe(f"could not start: {e}"))
        return Execution(run, b"", "", 0.0)
    stderr = _decode(got.stderr)
    if got.timed_out:
        run = ToolRun(spec.name, ToolStatus.TIMEOUT, command=shown, message=f"timed out after {timeout:g}s")
    elif got.overflowed:
        run = ToolRun(spec.name, ToolStatus.FAILED, command=shown,
                      message=f"printed more than {max_stdout} bytes; stopped")
    elif got.returncode in spec.ok_exit_codes:
        found = None if spec.version_in_output else version(spec)
        run = ToolRun(spec.name, ToolStatus.OK, version=found, command=shown, exit_code=got.returncode)
    else:
        tail = stderr.strip().splitlines()[-1][-_STDERR_TAIL:] if stderr.strip() else "no output"
        run = ToolRun(spec.name, ToolStatus.FAILED, version=version(spec), command=shown,
                      exit_code=got.returncode, message=safe(f"exited {got.returncode}: {tail}"))
    return Execution(run, got.stdout, stderr, got.seconds)


def safe(text: str) -> str:
    """A tool's text as one safe line: secret values redacted, no workflow command, bounded."""
    from mlsec_actions import redact

    return sanitize.log_line(redact.text(text))


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")
