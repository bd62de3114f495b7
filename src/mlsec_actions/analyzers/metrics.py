"""Metrics files as data: `{name: number}`, `{"metrics": {...}}`, or per-fold lists (k-fold, early-stopping
histories), JSON or YAML, bounded; every value checked before it is compared.

A metrics file is written by the training or evaluation code, i.e. repository code: hostile. A NaN would pass
every bound (all comparisons with NaN are false), so non-finite and non-numeric values are findings
(`evaluate/metric-invalid`), never metrics. A list is read as folds: its mean is the metric, its values kept.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsec_actions.errors import InputError
from mlsec_actions.inputs import load_json, load_yaml

MAX_METRICS_BYTES = 8 * 1024 * 1024
MAX_METRICS = 1000
MAX_FOLDS = 10_000
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LOWER_IS_BETTER = re.compile(r"(^|[_.-])(loss|error|err|rmse|mse|mae|mape|logloss|log_loss|brier)([_.-]|$)",
                             re.I)


@dataclass(frozen=True)
class Metrics:
    """The metrics read from one file."""

    values: dict[str, float]
    """Metric name -> finite value (a fold list's mean)."""
    folds: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """Metric name -> the per-fold (or per-epoch) values it was averaged from."""
    invalid: tuple[tuple[str, str], ...] = ()
    """(name as shown, why) for every entry that is not a usable metric."""


def better_is_lower(name: str, direction: str | None = None) -> bool:
    """Whether smaller is better: the policy's `direction`, else the name (loss, error, RMSE...)."""
    if direction is not None:
        return direction == "lower"
    return LOWER_IS_BETTER.search(name) is not None


def _shown(name: object) -> str:
    text = str(name)
    return (text[:60] + "...") if len(text) > 60 else text


def finite_number(value: Any) -> float | str:
    """A finite float, or why the value is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"not a number ({type(value).__name__})"
    try:
        number = float(value)
    except OverflowError:  # an integer literal past the float range
        return "infinite"
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "infinite"
    return number


def parse(doc: Any, label: str) -> Metrics:
    """Metrics from a parsed document (`label` names the file in errors)."""
    if isinstance(doc, dict) and isinstance(doc.get("metrics"), dict):
        doc = doc["metrics"]
    if not isinstance(doc, dict):
        raise InputError(label, "metrics must be a mapping of metric names to numbers (or {\"metrics\": {...}})")
    if len(doc) > MAX_METRICS:
        raise InputError(label, f"{len(doc)} metrics; the limit is {MAX_METRICS}")
    values: dict[str, float] = {}
    folds: dict[str, tuple[float, ...]] = {}
    invalid: list[tuple[str, str]] = []
    for name, raw in doc.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            invalid.append((_shown(name), "not a metric name (letters, digits, . _ -, at most 64)"))
            continue
        if isinstance(raw, list):
            got = [finite_number(v) for v in raw[:MAX_FOLDS + 1]]
            bad = next((g for g in got if isinstance(g, str)), None)
            if not raw or len(raw) > MAX_FOLDS or bad is not None:
                invalid.append((name, f"fold {bad}" if bad else f"needs 1 to {MAX_FOLDS} fold values"))
                continue
            numbers = tuple(float(g) for g in got)
            try:
                mean = math.fsum(numbers) / len(numbers)
            except OverflowError:
                mean = math.inf
            if not math.isfinite(mean):
                invalid.append((name, "folds overflow"))
                continue
            values[name], folds[name] = mean, numbers
            continue
        number = finite_number(raw)
        if isinstance(number, str):
            invalid.append((name, number))
        else:
            values[name] = number
    return Metrics(values, folds, tuple(invalid))


def load(path: Path) -> Metrics:
    """A metrics file: YAML when it is named `.yml`/`.yaml`, else JSON (NaN and Infinity literals included)."""
    if path.suffix.lower() in (".yml", ".yaml"):
        doc = load_yaml(path, "metrics", min(MAX_METRICS_BYTES, 1024 * 1024))
    else:
        doc = load_json(path, "metrics", MAX_METRICS_BYTES, max_depth=8)
    return parse(doc, str(path))
