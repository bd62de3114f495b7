"""An early-stopping training log as hostile data: which epoch's metrics describe the model that was kept.

The format (docs/evaluate.md#training-log) is JSON lines, one object a line, blank lines ignored:

    {"epoch": 1, "val_loss": 0.41, "val_accuracy": 0.86}
    {"epoch": 2, "val_loss": 0.35, "val_accuracy": 0.89}
    {"best_epoch": 2, "restored": true, "monitor": "val_loss"}

Epoch lines give an `epoch` (an integer, strictly increasing) and finite metric values. At most one marker
line, after every epoch line, says which epoch was best and whether early stopping restored its weights. The
metrics that count are the best epoch's when `restored` is true, else the last epoch's (the weights the run
ended with). Anything inconsistent is refused whole (`InputError`: exit 2, the file and line named), since a
log that cannot be trusted on which epoch was kept cannot be trusted on any value: a duplicate or
out-of-order epoch, a NaN or infinite value, a duplicate key, a best epoch that is not in the log, a marker
before an epoch, and a `monitor` whose value at the best epoch is not the best of the log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsec_actions.analyzers.metrics import MAX_METRICS, NAME, better_is_lower, finite_number
from mlsec_actions.errors import InputError
from mlsec_actions.inputs import read_regular
from mlsec_actions.json_strict import DuplicateKey, no_duplicate_keys

MAX_LOG_BYTES = 8 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024
MAX_EPOCHS = 100_000
MARKER_KEYS = frozenset({"best_epoch", "restored", "monitor"})


@dataclass(frozen=True)
class TrainingLog:
    """What a training log says about the model that was kept."""

    values: dict[str, float]
    """The metrics that count: the best epoch's when restored, else the last epoch's."""
    epoch: int
    """The epoch those metrics are from."""
    epochs: int
    """Epoch lines read."""
    best_epoch: int | None
    """The marker's best epoch, None without a marker."""
    restored: bool
    """Whether early stopping restored the best epoch's weights."""
    monitor: str | None
    """The metric early stopping watched, when the marker names it."""


class _Refused(ValueError):
    pass


def _constant(name: str) -> float:
    raise _Refused(f"{name} is not a metric value")


def _object(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw, object_pairs_hook=no_duplicate_keys, parse_constant=_constant)
    except _Refused:
        raise
    except DuplicateKey as e:
        raise _Refused(str(e)) from None
    except RecursionError:
        raise _Refused("nested too deeply") from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise _Refused(f"not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise _Refused("each line must be a JSON object")
    return doc


def _value(key: str, raw: Any) -> float:
    if not NAME.fullmatch(key):
        raise _Refused(f"{key[:60]!r} is not a metric name (letters, digits, . _ -, at most 64)")
    number = finite_number(raw)
    if isinstance(number, str):
        raise _Refused(f"{key} is {number}")
    return number


def _integer(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
        raise _Refused(f"{key} must be an integer from 0 to 10^9")
    return value


class _Reader:
    def __init__(self) -> None:
        self.epochs: dict[int, dict[str, float]] = {}
        self.lines: dict[int, int] = {}
        self.marker: dict[str, Any] | None = None
        self.last: int | None = None

    def line(self, number: int, doc: dict[str, Any]) -> None:
        if "epoch" in doc:
            self._epoch(number, doc)
        elif "best_epoch" in doc:
            self._marker(number, doc)
        else:
            raise _Refused("neither an epoch line (\"epoch\") nor the early-stopping line (\"best_epoch\")")

    def _epoch(self, number: int, doc: dict[str, Any]) -> None:
        if self.marker is not None:
            raise _Refused(f"an epoch after the early-stopping line (line {self.marker['line']})")
        epoch = _integer(doc, "epoch")
        last = self.last
        if last is not None and epoch <= last:
            raise _Refused(f"epoch {epoch} after epoch {last} (line {self.lines[last]}): epochs must increase")
        if len(self.epochs) >= MAX_EPOCHS:
            raise _Refused(f"more than {MAX_EPOCHS} epochs")
        metrics = {k: _value(k, v) for k, v in doc.items() if k != "epoch"}
        if not metrics or len(metrics) > MAX_METRICS:
            raise _Refused(f"an epoch line needs 1 to {MAX_METRICS} metrics")
        self.epochs[epoch], self.lines[epoch], self.last = metrics, number, epoch

    def _marker(self, number: int, doc: dict[str, Any]) -> None:
        if self.marker is not None:
            raise _Refused(f"a second early-stopping line (the first is line {self.marker['line']})")
        if unknown := sorted(set(doc) - MARKER_KEYS):
            raise _Refused(f"unknown key {unknown[0][:60]!r} in the early-stopping line")
        best = _integer(doc, "best_epoch")
        if best not in self.epochs:
            raise _Refused(f"best_epoch {best} is not an epoch of the log")
        restored = doc.get("restored")
        if not isinstance(restored, bool):
            raise _Refused("restored must be true or false")
        monitor = doc.get("monitor")
        if monitor is not None:
            self._monitor(monitor, best)
        self.marker = {"line": number, "best": best, "restored": restored, "monitor": monitor}

    def _monitor(self, monitor: Any, best: int) -> None:
        if not isinstance(monitor, str) or not NAME.fullmatch(monitor):
            raise _Refused("monitor must be a metric name")
        if monitor not in self.epochs[best]:
            raise _Refused(f"best_epoch {best} (line {self.lines[best]}) has no {monitor}")
        lower = better_is_lower(monitor)
        at_best = self.epochs[best][monitor]
        for epoch, metrics in self.epochs.items():
            value = metrics.get(monitor)
            if value is not None and (value < at_best if lower else value > at_best):
                raise _Refused(f"best_epoch {best} has {monitor} {at_best:g}, but epoch {epoch} (line "
                               f"{self.lines[epoch]}) has a better {value:g}")

    def result(self) -> TrainingLog:
        last = self.last
        if last is None:
            raise _Refused("no epoch lines")
        m = self.marker
        chosen = m["best"] if m is not None and m["restored"] else last
        return TrainingLog(dict(self.epochs[chosen]), chosen, len(self.epochs), m["best"] if m else None,
                           bool(m and m["restored"]), m["monitor"] if m else None)


def parse(data: bytes, label: str | Path) -> TrainingLog:
    """A training log's bytes (`label` names the file in errors)."""
    reader = _Reader()
    number = 0
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            if len(raw) > MAX_LINE_BYTES:
                raise _Refused(f"over {MAX_LINE_BYTES} bytes")
            reader.line(number, _object(raw))
        except _Refused as e:
            raise InputError(label, f"training log line {number}: {e}") from None
    try:
        return reader.result()
    except _Refused as e:
        raise InputError(label, f"training log: {e}") from None


def load(path: Path) -> TrainingLog:
    """A training log file, at most `MAX_LOG_BYTES`."""
    return parse(read_regular(path, "training log", MAX_LOG_BYTES), path)
