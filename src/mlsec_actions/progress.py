"""What `mlsec run` says while it runs: events from pipeline.py, shown one of three ways.

- `plain` (not a terminal, or in CI): one line per event, each through `sanitize.log_line` (stage output and
  file names are hostile: no control characters, no workflow commands);
- `json`: one JSON object per line (`{"event": ..., "time": ..., "stage": ...}`), ASCII only, for ELK or Loki;
- `live` (a terminal, not CI): a `rich` table redrawn in place, a row per stage with a spinner, the elapsed
  time and its findings, and the plain lines printed above it. Texts are `rich.text.Text` objects, never
  markup, so a finding named `[bold]` or `[link=...]` prints as itself.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from mlsec_actions.sanitize import log_line

FORMATS = ("auto", "plain", "json", "live")


@dataclass(frozen=True)
class Event:
    """One thing that happened in a run."""

    kind: str
    """`run-start`, `stage-start`, `stage-end`, `stage-skipped`, `note` or `run-end`."""
    text: str
    """The plain line for it (already sanitised by whoever built it, and sanitised again when shown)."""
    stage: str = ""
    """The stage it is about ('' for the run)."""
    status: str = ""
    """For `stage-end`: ok, TOOL ERROR, BAD INPUT, FAILED ...; for `run-end`: the exit code."""
    seconds: float | None = None
    """For `stage-end`: the stage's wall time."""
    findings: int | None = None
    """For `stage-end`: results in its SARIF (true count); for `run-end`: the run's total."""


Emit = Callable[[Event], None]


def plain(stream: TextIO) -> Emit:
    lock = threading.Lock()  # stages start (and say so) from the runner's worker threads

    def emit(e: Event) -> None:
        if e.kind != "stage-start":  # a start line per stage doubles the output for no information
            with lock:
                print("\n".join(log_line(x) if i == 0 else "    " + log_line(x.strip())
                                for i, x in enumerate(e.text.split("\n"))), file=stream, flush=True)
    return emit


def json_lines(stream: TextIO) -> Emit:
    lock = threading.Lock()

    def emit(e: Event) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        doc: dict[str, Any] = {"event": e.kind, "time": now,
                               "message": " | ".join(log_line(x) for x in e.text.split("\n"))}
        for name in ("stage", "status"):
            if getattr(e, name):
                doc[name] = log_line(getattr(e, name), 200)
        if e.seconds is not None:
            doc["seconds"] = round(e.seconds, 3)
        if e.findings is not None:
            doc["findings"] = e.findings
        line = json.dumps(doc, ensure_ascii=True, separators=(",", ":"))
        with lock:
            print(line, file=stream, flush=True)
    return emit


class Live:
    """The terminal view: a row per stage, redrawn by rich's own thread; `close()` leaves the final table."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live as RichLive

        self._lock = threading.Lock()
        self._print_lock = threading.Lock()
        self._rows: dict[str, list[Any]] = {}  # stage -> [status, started, seconds, findings]
        self._total = 0
        self._console = Console(file=stream, highlight=False, markup=False, emoji=False)
        self._live = RichLive(self, console=self._console, refresh_per_second=8, transient=False)
        self._live.start()

    def __rich__(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        with self._lock:
            for stage, (status, started, seconds, findings) in self._rows.items():
                mark: Any = Spinner("dots") if status == "running" else Text("✓" if status == "ok" else "✗")
                elapsed = seconds if seconds is not None else now - started
                found = "" if findings is None else f"{findings} findings"
                table.add_row(mark, Text(stage), Text(status), Text(f"{elapsed:6.1f}s"), Text(found))
            table.add_row(Text(""), Text(f"findings so far: {self._total}"))
        return table

    def __call__(self, e: Event) -> None:
        from rich.text import Text

        with self._lock:
            if e.kind == "stage-start":
                self._rows[e.stage] = ["running", time.monotonic(), None, None]
                return
            if e.kind == "stage-end" and e.stage in self._rows:
                self._rows[e.stage][0] = e.status.lower()
                self._rows[e.stage][2:] = [e.seconds, e.findings]
                self._total += e.findings or 0
        with self._print_lock:  # not self._lock: rich's refresh thread holds its own lock while reading rows
            for line in e.text.split("\n"):
                self._console.print(Text(log_line(line)))

    def close(self) -> None:
        self._live.stop()


def choose(fmt: str, stream: TextIO = sys.stderr) -> tuple[Emit, Callable[[], None]]:
    """The emitter for `--log-format` (auto: live on a terminal outside CI, else plain) and its closer."""
    if fmt == "auto":
        ci = os.environ.get("CI", "").lower() in ("1", "true") or os.environ.get("GITHUB_ACTIONS") == "true"
        tty = stream.isatty() and os.environ.get("TERM", "") != "dumb"
        fmt = "live" if tty and not ci else "plain"
    if fmt == "json":
        return json_lines(stream), lambda: None
    if fmt == "live":
        view = Live(stream)
        return view, view.close
    return plain(stream), lambda: None
