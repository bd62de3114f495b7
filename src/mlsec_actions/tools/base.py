"""External scanners described as data, and the one place they are executed.

A `ToolSpec` says how to find a tool, read its version and what its exit codes mean (MegaLinter's
descriptor idea); adapters add only the parsing that differs. `execute` never raises for a tool's
failure: it returns a `ToolRun` with MISSING, TIMEOUT or FAILED so the stage reports it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.findings import ToolRun, ToolStatus

_STDERR_TAIL = 400


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
    version_in_output: bool = False
    """The adapter reads the version from the tool's report, saving a `--version` process on success."""


@dataclass(frozen=True)
class Execution:
    """A finished (or failed) tool process."""

    run: ToolRun
    """Status record for SARIF and the gate."""
    stdout: bytes
    """Raw standard output (empty when the tool did not run)."""
    stderr: str
    """Standard error text, for diagnostics."""
    seconds: float
    """Wall time."""


def locate(spec: ToolSpec) -> str | None:
    """Find the tool: an explicit override, this interpreter's bin folder (a venv), then PATH."""
    override = os.environ.get(f"MLSEC_{spec.name.upper().replace('-', '_')}_BIN")
    if override:
        return override if Path(override).is_file() else None
    beside = Path(sys.executable).parent / spec.executable
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(spec.executable)


@functools.cache
def _version(binary: str, args: tuple[str, ...], pattern: str) -> str | None:
    try:
        out = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else None


def version(spec: ToolSpec) -> str | None:
    binary = locate(spec)
    return _version(binary, spec.version_args, spec.version_pattern) if binary else None


def execute(spec: ToolSpec, args: Sequence[str], *, cwd: Path | None = None, timeout: float = 600,
            env: Mapping[str, str] | None = None) -> Execution:
    """Run the tool; a missing binary, a timeout or an unexpected exit code become a failed `ToolRun`."""
    binary = locate(spec)
    if binary is None:
        run = ToolRun(spec.name, ToolStatus.MISSING, message=f"{spec.executable} not found; {spec.install_hint}")
        return Execution(run, b"", "", 0.0)
    command = (binary, *args)
    shown = (spec.executable, *args)
    full_env = {**os.environ, **(env or {})}
    started = time.monotonic()
    try:
        proc = subprocess.run(command, cwd=cwd, capture_output=True, timeout=timeout, env=full_env, check=False)
    except subprocess.TimeoutExpired as e:
        run = ToolRun(spec.name, ToolStatus.TIMEOUT, version=version(spec), command=shown,
                      message=f"timed out after {timeout:g}s")
        return Execution(run, e.stdout or b"", _decode(e.stderr), time.monotonic() - started)
    except OSError as e:
        run = ToolRun(spec.name, ToolStatus.FAILED, command=shown, message=f"could not start: {e}")
        return Execution(run, b"", "", time.monotonic() - started)
    seconds = time.monotonic() - started
    stderr = _decode(proc.stderr)
    if proc.returncode in spec.ok_exit_codes:
        found = None if spec.version_in_output else version(spec)
        run = ToolRun(spec.name, ToolStatus.OK, version=found, command=shown, exit_code=proc.returncode)
    else:
        tail = stderr.strip().splitlines()[-1][-_STDERR_TAIL:] if stderr.strip() else "no output"
        run = ToolRun(spec.name, ToolStatus.FAILED, version=version(spec), command=shown,
                      exit_code=proc.returncode, message=f"exited {proc.returncode}: {tail}")
    return Execution(run, proc.stdout, stderr, seconds)


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")
