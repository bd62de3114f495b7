"""One dataset file's rows folded into a bounded profile, in one streaming pass: personal data per column,
constant and leaked columns, duplicates with conflicting labels, label-flip suspects, class balance,
robust outliers, trigger-like tokens, and the normalised row hashes the split-leakage check compares.

Every structure is bounded: hashes are 8-byte integers, distinct values and vocabularies stop growing at
a cap, numeric columns keep a fixed-size reservoir sample. Values are never kept in findings: personal
data is counted and shown redacted.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
import re
from collections import Counter
from dataclasses import dataclass, field

from mlsec_actions.analyzers import dataset_pii

LABEL_NAMES = ("label", "labels", "target", "class", "y", "category", "sentiment", "is_spam", "outcome")
"""Column names taken as the label when --label is not given (case-insensitive)."""
MAX_DISTINCT = 1000
"""Distinct values tracked per column for the constant / leaked-column checks."""
MAX_LABELS = 1000
"""More distinct labels than this: a regression target, label checks are skipped."""
MAX_VOCABULARY = 100_000
"""Tokens tracked for the trigger-token check."""
SAMPLE = 5000
"""Numeric values sampled per column for the outlier check."""
TOKEN_ROWS = 200_000
"""Rows whose text is tokenised for the trigger-token check (the signal needs a share, not every row)."""
_BLOCK = 8192
_TOKEN = re.compile(r"[a-z0-9_]{2,30}")
_SPACE = re.compile(r"\s+")


@dataclass
class ColumnStats:
    """What is known about one column."""

    name: str
    """Header name."""
    pii: Counter[str] = field(default_factory=Counter)
    """Personal-data matches by kind."""
    first_pii: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Per kind: line of the first match and its redacted form."""
    to_label: dict[str, str] | None = field(default_factory=dict)
    """Value -> the one label it came with; None once a value had two labels or the cap was hit."""
    distinct: set[str] | None = field(default_factory=set)
    """Distinct values (None past `MAX_DISTINCT`)."""
    numbers: list[float] = field(default_factory=list)
    """Reservoir sample of its numeric values."""
    numeric_seen: int = 0
    """Numeric values seen."""
    filled: int = 0
    """Non-empty values seen."""


@dataclass
class Profile:
    """The bounded summary of one file."""

    header: list[str]
    """Column names."""
    label: int | None
    """Index of the label column, if any."""
    columns: list[ColumnStats]
    """Per-column stats."""
    rows: int = 0
    """Rows read."""
    truncated: bool = False
    """Stopped at the row limit."""
    labels: Counter[str] = field(default_factory=Counter)
    """Label counts."""
    exact_first: dict[int, str] = field(default_factory=dict)
    """Exact feature hash -> first label."""
    exact_conflicts: set[int] = field(default_factory=set)
    """Feature hashes seen with two labels."""
    exact_conflict_rows: int = 0
    """Rows in such groups."""
    near_first: dict[int, str] = field(default_factory=dict)
    """Near-duplicate feature hash -> first label."""
    near_conflicts: set[int] = field(default_factory=set)
    """Near-duplicate hashes seen with two labels."""
    near_conflict_rows: int = 0
    """Rows in such groups."""
    row_hashes: set[int] = field(default_factory=set)
    """Normalised hash of every row (all columns), for the split-leakage check."""
    tokens: dict[str, Counter[str]] = field(default_factory=dict)
    """Token -> label counts of the rows holding it (text columns)."""
    pending: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    """Per column, values (with their line) waiting for the block-wise personal-data check."""
    pending_values: int = 0
    """How many values are pending."""
    rng: random.Random = field(default_factory=lambda: random.Random(0))  # noqa: S311 -- sampling, not secrecy
    """Reservoir sampling source (fixed seed: the same file gives the same result)."""


def label_index(header: list[str], wanted: str | None) -> int | None:
    """The label column: `wanted` by name, else the first column with a usual label name."""
    names = [h.strip().lower() for h in header]
    if wanted:
        return names.index(wanted.lower()) if wanted.lower() in names else None
    return next((i for i, n in enumerate(names) if n in LABEL_NAMES), None)


def new_profile(header: list[str], label: str | None) -> Profile:
    return Profile(header, label_index(header, label), [ColumnStats(h) for h in header])


def _hash(parts: list[str]) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode("utf-8", "replace"), digest_size=8).digest(),
                          "big")


def _number(value: str) -> float | None:
    if not value or len(value) > 40 or not (value[0].isdigit() or value[0] in "+-."):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _near(value: str, number: float | None) -> str:
    if number is not None:
        return f"{number:.3g}"
    return _SPACE.sub(" ", value.lower()).strip(" .,;:!?\"'")


def add_row(p: Profile, line: int, values: list[str]) -> None:
    """Fold one row into the profile (personal data is checked in blocks: call `finish` at the end)."""
    p.rows += 1
    width = len(p.header)
    if len(values) != width:
        values = (values + [""] * width)[:width]
    label = values[p.label].strip() if p.label is not None else None
    if label is not None and len(p.labels) > MAX_LABELS:
        label = None
    stripped: list[str] = []
    near: list[str] = []
    for index, raw in enumerate(values):
        value = raw.strip()
        stripped.append(value)
        if index == p.label:
            continue
        number = _number(value) if value else None
        near.append(_near(value, number))
        if value:
            _column(p, index, line, value, number, label)
    p.row_hashes.add(_hash([v.lower() for v in stripped]))
    if p.pending_values >= _BLOCK:
        _flush(p)
    if label is None:
        return
    p.labels[label] += 1
    features = [v for i, v in enumerate(stripped) if i != p.label]
    p.exact_conflict_rows += _conflict(p.exact_first, p.exact_conflicts, _hash(features), label)
    p.near_conflict_rows += _conflict(p.near_first, p.near_conflicts, _hash(near), label)


def finish(p: Profile) -> None:
    """Check the personal data still pending (after the last row)."""
    _flush(p)


def _flush(p: Profile) -> None:
    """Personal data of the pending values, one regex pass per column over the block joined by line breaks
    (no pattern crosses a line break), each match mapped back to its row."""
    for index, pending in p.pending.items():
        if not pending:
            continue
        col = p.columns[index]
        text = "\n".join(v for _, v in pending)
        starts = list(itertools.accumulate((len(v) + 1 for _, v in pending[:-1]), initial=0))
        for match in dataset_pii.find(text):
            line = pending[bisect.bisect_right(starts, match.start) - 1][0]
            col.pii[match.kind] += 1
            col.first_pii.setdefault(match.kind, (line, dataset_pii.redact(text[match.start:match.end])))
    p.pending.clear()
    p.pending_values = 0


def _conflict(first: dict[int, str], conflicts: set[int], key: int, label: str) -> int:
    """Rows newly known to be in a group with two labels."""
    seen = first.setdefault(key, label)
    if key in conflicts:
        return 1
    if seen != label:
        conflicts.add(key)
        return 2
    return 0


def _column(p: Profile, index: int, line: int, value: str, number: float | None, label: str | None) -> None:
    col = p.columns[index]
    col.filled += 1
    if col.distinct is not None:
        col.distinct.add(value)
        if len(col.distinct) > MAX_DISTINCT:
            col.distinct = None
    if col.to_label is not None and label is not None and (
            col.to_label.setdefault(value, label) != label or len(col.to_label) > MAX_DISTINCT):
        col.to_label = None
    if number is not None:
        col.numeric_seen += 1
        if len(col.numbers) < SAMPLE:
            col.numbers.append(number)
        else:
            slot = p.rng.randrange(col.numeric_seen)
            if slot < SAMPLE:
                col.numbers[slot] = number
        if len(value) < 13:
            return  # a short number is neither a card, an IBAN nor a phone number
    if len(value) >= 7:
        p.pending.setdefault(index, []).append((line, value))
        p.pending_values += 1
    if label is not None and number is None and len(value) > 12 and p.rows <= TOKEN_ROWS:
        _tokens(p, value, label)


def _tokens(p: Profile, value: str, label: str) -> None:
    for token in set(_TOKEN.findall(value.lower())):
        counts = p.tokens.get(token)
        if counts is None:
            if len(p.tokens) >= MAX_VOCABULARY:
                continue
            counts = p.tokens[token] = Counter()
        counts[label] += 1
