"""Metrics computed from a predictions CSV with scikit-learn, and fairness gaps with fairlearn.

The CSV holds one row per held-out example: the true label, the prediction, optionally a score (probability of
the positive class) and any sensitive columns. It is read as text with a row and size limit; nothing in it is
executed. scikit-learn and fairlearn are imported only here, when a predictions file is given.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from mlsec_actions.errors import InputError
from mlsec_actions.inputs import read_regular

MAX_PREDICTIONS_BYTES = 256 * 1024 * 1024
MAX_ROWS = 2_000_000


@dataclass(frozen=True)
class Columns:
    """Which CSV columns hold what."""

    label: str = "y_true"
    """The true label."""
    prediction: str = "y_pred"
    """The model's prediction."""
    score: str = "y_score"
    """The positive-class probability (optional; ROC AUC needs it)."""


@dataclass(frozen=True)
class Table:
    """A predictions file, parsed."""

    header: tuple[str, ...]
    """Column names."""
    rows: list[list[str]]
    """Cells as text."""

    def column(self, name: str, label: str) -> list[str]:
        if name not in self.header:
            raise InputError(label, f"no column {name!r} (columns: {', '.join(self.header[:20])})")
        i = self.header.index(name)
        return [r[i] for r in self.rows]


def read(path: object, data: bytes | None = None) -> Table:
    raw = read_regular(path, "predictions", MAX_PREDICTIONS_BYTES) if data is None else data  # type: ignore[arg-type]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(path, f"predictions are not UTF-8 text (byte {e.start})") from None
    csv.field_size_limit(1024 * 1024)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = tuple(next(reader, []))
        rows = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(path, f"row {reader.line_num} has {len(row)} cells, the header {len(header)}")
            rows.append(row)
            if len(rows) > MAX_ROWS:
                raise InputError(path, f"more than {MAX_ROWS} rows")
    except csv.Error as e:
        raise InputError(path, f"predictions are not valid CSV ({e})") from None
    if not header or not rows:
        raise InputError(path, "predictions need a header row and at least one row")
    return Table(header, rows)


def _labels(values: Sequence[str]) -> list[int] | list[str]:
    """Labels as integers when every one is an integer (so 0/1 are binary classes), else as text."""
    try:
        return [int(v) for v in values]
    except ValueError:
        return [v.strip() for v in values]


def _floats(values: Sequence[str], what: str, label: str) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except ValueError:
            raise InputError(label, f"{what} {v[:40]!r} is not a number") from None
        if not math.isfinite(f):
            raise InputError(label, f"{what} {v[:40]!r} is not a finite number")
        out.append(f)
    return out


def classification(table: Table, cols: Columns, label: str) -> dict[str, float]:
    """accuracy, precision, recall, F1 (binary, else macro-averaged) and ROC AUC when scores are given."""
    from sklearn import metrics as skm

    y_true, y_pred = _labels(table.column(cols.label, label)), _labels(table.column(cols.prediction, label))
    classes = sorted(set(map(str, y_true)) | set(map(str, y_pred)))
    average = "binary" if len(classes) <= 2 and set(classes) <= {"0", "1"} else "macro"
    out = {"accuracy": float(skm.accuracy_score(y_true, y_pred)),
           "precision": float(skm.precision_score(y_true, y_pred, average=average, zero_division=0)),
           "recall": float(skm.recall_score(y_true, y_pred, average=average, zero_division=0)),
           "f1": float(skm.f1_score(y_true, y_pred, average=average, zero_division=0))}
    if cols.score in table.header and average == "binary" and len(set(map(str, y_true))) == 2:
        out["roc_auc"] = float(skm.roc_auc_score(y_true, _floats(table.column(cols.score, label), "score", label)))
    return out


def regression(table: Table, cols: Columns, label: str) -> dict[str, float]:
    """RMSE, MAE and R²."""
    from sklearn import metrics as skm

    y_true = _floats(table.column(cols.label, label), "label", label)
    y_pred = _floats(table.column(cols.prediction, label), "prediction", label)
    return {"rmse": float(math.sqrt(skm.mean_squared_error(y_true, y_pred))),
            "mae": float(skm.mean_absolute_error(y_true, y_pred)), "r2": float(skm.r2_score(y_true, y_pred))}


@dataclass(frozen=True)
class Fairness:
    """fairlearn's gaps over one sensitive column."""

    column: str
    """The sensitive column."""
    demographic_parity_difference: float
    """Largest difference in selection rate between groups."""
    equalized_odds_difference: float
    """Larger of the largest TPR and FPR differences between groups."""
    groups: dict[str, int]
    """Group -> rows."""


def fairness(table: Table, cols: Columns, column: str, label: str) -> Fairness:
    """Binary labels 0/1 only (fairlearn's definitions); anything else is an InputError naming the file."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    y_true, y_pred = _labels(table.column(cols.label, label)), _labels(table.column(cols.prediction, label))
    if not set(y_true) | set(y_pred) <= {0, 1}:
        raise InputError(label, "fairness checks need binary 0/1 labels and predictions")
    sensitive = table.column(column, label)
    groups: dict[str, int] = {}
    for g in sensitive:
        groups[g] = groups.get(g, 0) + 1
    dp = float(demographic_parity_difference(y_true, y_pred, sensitive_features=sensitive))
    eo = float(equalized_odds_difference(y_true, y_pred, sensitive_features=sensitive))
    return Fairness(column, dp, eo, dict(sorted(groups.items())[:100]))
