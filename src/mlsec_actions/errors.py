"""One error base; `cli.main` is the single place that turns errors into messages and exit codes."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes, documented in the README."""

    OK = 0
    """The stage ran (findings or not), or the gate passed."""
    ERROR = 1
    """A tool or internal error: a scanner was missing, crashed or timed out."""
    USAGE = 2
    """Bad usage or a bad input file; nothing was run."""
    GATE_FAILED = 3
    """`mlsec gate` only: the policy failed."""


class MlsecError(Exception):
    """Base for every error we raise on purpose."""

    exit_code: ExitCode = ExitCode.ERROR

    def diagnostics(self) -> str:
        """A one-line message for the user: what, and where."""
        return str(self)


class UsageError(MlsecError):
    """Bad arguments or a bad input file (exit 2)."""

    exit_code = ExitCode.USAGE


class InputError(UsageError):
    """An input file that is missing or malformed; names the file and the problem."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class ToolError(MlsecError):
    """An external tool failed in a way the stage cannot report as a finding (exit 1)."""

    exit_code = ExitCode.ERROR


class OutputError(UsageError):
    """An output path we cannot or must not write (a folder, under /proc, a parent that is a file); exit 2,
    checked before any work starts."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class BusyError(UsageError):
    """Another `mlsec run`, `gate` or `sign` holds the output folder's lock (exit 2, nothing was run)."""
