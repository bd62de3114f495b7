"""What a notification says, and what a channel is.

A `Summary` is everything that may leave the runner: counts, durations, coverage gaps and finding titles (rule
id and rule title). Finding messages and locations are in it only when the caller opts in (`--details`).
Every text in it already went through `sanitize.log_line` (results.py), so a channel only adds its own format's
escaping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlsec_actions.errors import MlsecError

if TYPE_CHECKING:
    from mlsec_actions.notify.http import Client

SEVERITIES = ("critical", "high", "medium", "low", "info")


class NotifyFailed(MlsecError):
    """A channel could not deliver: a warning, never an exit code. The message carries no credential."""


@dataclass(frozen=True)
class StageSummary:
    """One stage of the run."""

    stage: str
    """Stage id as its SARIF names it (sanitised to `[a-z0-9._/-]`)."""
    counts: Mapping[str, int]
    """Findings by severity name (every name of SEVERITIES present)."""
    tool_errors: int = 0
    """Tools of the stage that failed, crashed or timed out."""
    seconds: float | None = None
    """Wall time from the run record, when there is one."""
    coverage_gaps: int = 0
    """What the stage could not check (the verdict's coverage section)."""
    sarif: Path | None = None
    """The SARIF file it came from (DefectDojo imports it)."""
    readable: bool = True
    """False: its SARIF could not be read (too big, malformed); counts are then zero and say nothing."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Title:
    """One finding as it may leave the runner: by default its rule and severity only."""

    stage: str
    rule: str
    """Rule id (`bandit/B301`)."""
    severity: str
    title: str
    """The rule's short description."""
    message: str | None = None
    """The finding's own message: only with `--details`."""
    location: str | None = None
    """`path:line`: only with `--details`."""


@dataclass(frozen=True)
class Summary:
    """A run, as notifications describe it."""

    verdict: str
    """`pass`, `fail`, or `none` when the gate left no verdict (it did not run, or crashed)."""
    violations: int
    stages: tuple[StageSummary, ...]
    titles: tuple[Title, ...]
    """The most severe findings, at most `MAX_TITLES`."""
    coverage_total: int = 0
    run_id: str = ""
    pipeline: str = ""
    repository: str = ""
    ref: str = ""
    sha: str = ""
    run_url: str = ""
    warnings: tuple[str, ...] = ()
    """What could not be read (a SARIF over the size bound, ...), said in every notification."""

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def totals(self) -> dict[str, int]:
        """Findings by severity over every stage."""
        return {sev: sum(s.counts.get(sev, 0) for s in self.stages) for sev in SEVERITIES}

    def headline(self) -> str:
        """`mlsec: FAIL on owner/repo (main): 3 high, 1 medium; 2 violations`."""
        word = {"pass": "PASS", "fail": "FAIL"}.get(self.verdict, "NO VERDICT")
        where = f" on {self.repository}" if self.repository else ""
        ref = f" ({self.ref})" if self.ref else ""
        counts = ", ".join(f"{n} {sev}" for sev, n in self.totals().items() if n) or "no findings"
        return f"mlsec {self.pipeline or 'run'}: {word}{where}{ref}: {counts}; {self.violations} violation(s)"


@dataclass(frozen=True)
class Settings:
    """A channel's configuration: options (from the command line, MLSEC_* or the config's `notify:` section)
    and secrets (from the environment only, never an option, so never in a config file or a process list)."""

    options: Mapping[str, object]
    """Parsed option values by dest (`webhook_url`, `telegram_chat_id`, ...)."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    """Credential by environment variable name; masked in the log as soon as read."""
    details: bool = False
    """The caller opted in to finding messages and locations leaving the runner."""

    def option(self, name: str) -> str | None:
        value = self.options.get(name)
        return None if value is None or value == "" else str(value)

    def secret(self, name: str) -> str | None:
        return self.secrets.get(name) or None


@dataclass(frozen=True)
class Channel:
    """One way to notify. `check` runs before anything is sent (UsageError: exit 2); `send` returns one line
    saying what was done, or raises NotifyFailed (a warning)."""

    id: str
    summary: str
    secrets: tuple[str, ...]
    """Environment variables it reads credentials from."""
    check: Callable[[Settings], None]
    send: Callable[[Settings, Summary, Client], str]


def read_secrets(names: tuple[str, ...]) -> dict[str, str]:
    """The credentials present in the environment."""
    return {n: os.environ[n] for n in names if os.environ.get(n)}
