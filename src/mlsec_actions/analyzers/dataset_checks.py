"""A dataset file's profile (`dataset_profile`) turned into findings: personal data per column, quality,
poisoning and leakage signals. Thresholds are data here (`Thresholds`), set from the stage's options."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from mlsec_actions.analyzers import dataset_pii
from mlsec_actions.analyzers import dataset_rules as R
from mlsec_actions.analyzers.dataset_column import ColumnStats
from mlsec_actions.analyzers.dataset_profile import MAX_LABELS, Profile
from mlsec_actions.findings import Finding, Location

_SAFE_NAME = re.compile(r"[^\w .()/-]")


@dataclass(frozen=True)
class Thresholds:
    """When a signal becomes a finding."""

    label_flip_share: float = 0.01
    """Share of rows in near-duplicate groups with two labels."""
    imbalance_ratio: float = 0.01
    """Rarest / commonest label count below which the balance is extreme."""
    outlier_z: float = 10.0
    """Robust z-score (in MADs, scaled to a standard deviation) past which a value is an outlier."""
    outlier_share: float = 0.001
    """Share of sampled values past `outlier_z` that is reported."""
    trigger_share: float = 0.995
    """Share of a token's rows with one label for it to look like a trigger."""
    trigger_min_rows: float = 0.005
    """Share of all rows a token must appear in (and at least 20 rows)."""


def column_name(name: str) -> str:
    """A column name safe to print (hostile files name their columns): bounded, plain characters."""
    return _SAFE_NAME.sub("?", name.strip())[:60] or "(unnamed)"


def findings(rel: str, p: Profile, limits: Thresholds) -> list[Finding]:
    """Every finding of one file's profile."""
    out: list[Finding] = []
    for index, col in enumerate(p.columns):
        if index != p.label:
            out.extend(_column(rel, col, p, limits))
    if p.label is not None and 2 <= len(p.labels) <= MAX_LABELS:
        out.extend(_labels(rel, p, limits))
    return out


def _at(rel: str, what: str, line: int | None = None) -> Location:
    return Location(rel, line, line, logical=what, logical_kind="object")


def _column(rel: str, col: ColumnStats, p: Profile, limits: Thresholds) -> list[Finding]:
    name = column_name(col.name)
    out = []
    for kind_name, count in sorted(col.pii.items()):
        kind = dataset_pii.KINDS[kind_name]
        line, shown = col.first_pii[kind_name]
        out.append(Finding(kind.rule, f"{count} values with a {kind.title} in column '{name}' of {rel} "
                           f"(first at line {line}, e.g. {shown})", kind.severity, _at(rel, f"column[{name}]", line),
                           properties=(("count", str(count)), ("column", name))))
    if col.distinct is not None and len(col.distinct) == 1 and p.rows >= 2 and col.filled == p.rows:
        out.append(Finding(R.CONSTANT_COLUMN.rule, f"column '{name}' of {rel} has one value in all {p.rows} rows",
                           R.CONSTANT_COLUMN.severity, _at(rel, f"column[{name}]")))
    if (col.to_label is not None and p.label is not None and p.rows >= 20 and len(p.labels) >= 2
            and len(col.to_label) == len(p.labels) and col.filled == p.rows):
        out.append(Finding(R.LABEL_LEAK.rule, f"column '{name}' of {rel} maps one-to-one onto the label "
                           f"'{column_name(p.header[p.label])}'", R.LABEL_LEAK.severity, _at(rel, f"column[{name}]")))
    out.extend(_outliers(rel, name, col, limits))
    return out


def _outliers(rel: str, name: str, col: ColumnStats, limits: Thresholds) -> list[Finding]:
    sample = col.numbers
    if len(sample) < 100 or col.numeric_seen < col.filled * 0.95:
        return []
    median = statistics.median(sample)
    mad = statistics.median(abs(x - median) for x in sample) * 1.4826
    if mad == 0:
        return []
    far = sum(1 for x in sample if abs(x - median) / mad > limits.outlier_z)
    if far == 0 or far / len(sample) < limits.outlier_share:
        return []
    return [Finding(R.OUTLIERS.rule, f"{far} of {len(sample)} sampled values of column '{name}' of {rel} are more "
                    f"than {limits.outlier_z:g} robust deviations from the median", R.OUTLIERS.severity,
                    _at(rel, f"column[{name}]"), properties=(("count", str(far)),))]


def _labels(rel: str, p: Profile, limits: Thresholds) -> list[Finding]:
    out = []
    label = column_name(p.header[p.label or 0])
    if p.exact_conflict_rows:
        out.append(Finding(R.CONFLICTING_DUPLICATES.rule, f"{p.exact_conflict_rows} rows of {rel} are identical to "
                           f"another row but for the label '{label}' ({len(p.exact_conflicts)} groups)",
                           R.CONFLICTING_DUPLICATES.severity, _at(rel, f"column[{label}]"),
                           properties=(("count", str(p.exact_conflict_rows)),)))
    flipped = p.near_conflict_rows
    # Near-duplicates only mean something when the rounded features still tell rows apart: in a set of few
    # coarse features most rows collide with another, whatever their labels.
    hashed = p.hashed_rows  # the rows the duplicate checks covered (all, up to HASHED_ROWS)
    informative = len(p.near_first) >= 0.9 * hashed
    if hashed and informative and flipped / hashed >= limits.label_flip_share:
        out.append(Finding(R.LABEL_FLIP.rule, f"{flipped} of {hashed} rows of {rel} ({flipped / hashed:.1%}) are "
                           f"near-duplicates of a row with another label '{label}'", R.LABEL_FLIP.severity,
                           _at(rel, f"column[{label}]"), properties=(("count", str(flipped)),)))
    (_, most), (_, least) = p.labels.most_common(1)[0], p.labels.most_common()[-1]
    if least / most < limits.imbalance_ratio:
        out.append(Finding(R.CLASS_IMBALANCE.rule, f"the rarest label of {rel} has {least} rows, the commonest "
                           f"{most}", R.CLASS_IMBALANCE.severity, _at(rel, f"column[{label}]")))
    out.extend(_triggers(rel, p, limits))
    return out


def _triggers(rel: str, p: Profile, limits: Thresholds) -> list[Finding]:
    need = max(20, int(p.rows * limits.trigger_min_rows))
    out = []
    for token, counts in p.tokens.items():
        total = sum(counts.values())
        if total < need:
            continue
        top, n = counts.most_common(1)[0]
        if n / total >= limits.trigger_share and p.labels[top] / p.rows < 0.9 and total < p.labels[top]:
            shown = token if re.fullmatch(r"[a-z0-9_]{2,30}", token) else "(token)"
            out.append(Finding(R.TRIGGER_TOKEN.rule, f"token '{shown}' is in {total} rows of {rel}, "
                               f"{n / total:.1%} of them with one label", R.TRIGGER_TOKEN.severity,
                               _at(rel, f"token[{shown}]"), properties=(("count", str(total)),)))
    return sorted(out, key=lambda f: f.message)[:10]
