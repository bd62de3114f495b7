"""One dataset file's rows folded into a bounded profile, in one streaming pass: personal data per column,
constant and leaked columns, duplicates with conflicting labels, label-flip suspects, class balance,
robust outliers, trigger-like tokens, and the normalised row hashes the split-leakage check compares.

Rows are folded a block at a time, column by column (`add_columns`): each step is one C-level pass
(`map`, set and dict updates, one regex pass per column) instead of Python work per value. Both readers
(the standard library's rows, pyarrow's record batches) end here, so they give the same profile.

Every structure is bounded: hashes are 8-byte integers, distinct values and vocabularies stop growing at
a cap, numeric columns keep a fixed-size reservoir sample. Values are never kept in findings: personal
data is counted and shown redacted. What is kept per column is `dataset_column`'s; this module holds the
checks across columns (labels, row hashes, tokens) and the block-wise personal-data check.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
from collections import Counter
from dataclasses import dataclass, field

from mlsec_actions.analyzers import dataset_column, dataset_gate, dataset_pii
from mlsec_actions.analyzers.dataset_column import ColumnStats, near_all, numbers

LABEL_NAMES = ("label", "labels", "target", "class", "y", "category", "sentiment", "is_spam", "outcome")
"""Column names taken as the label when --label is not given (case-insensitive)."""
MAX_LABELS = 1000
"""More distinct labels than this: a regression target, label checks are skipped."""
MAX_VOCABULARY = 100_000
"""Tokens tracked for the trigger-token check."""
TOKEN_ROWS = 200_000
"""Rows whose text is tokenised for the trigger-token check (the signal needs a share, not every row)."""
HASHED_ROWS = 500_000
"""Rows whose hashes are kept for the duplicate, label-flip and split-leakage checks (memory stays flat:
past it these checks cover only the first rows, a coverage gap)."""
_BLOCK = 8192
_SEVEN = 7
_THIRTEEN = 13
_TOKEN = re.compile(r"[a-z0-9_]{2,30}")


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
    hashed_rows: int = 0
    """Rows in the duplicate, label-flip and leakage checks (at most `HASHED_ROWS`)."""
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
    pending: dict[int, tuple[list[int], list[str]]] = field(default_factory=dict)
    """Per column, values and their lines waiting for the block-wise personal-data check."""
    pending_values: int = 0
    """How many values are pending (the sum over `pending`; past `_BLOCK` they are checked)."""
    label_names: dict[str, str] = field(default_factory=dict)
    """One string object per label (the conflict maps hold many references to few labels)."""


def label_index(header: list[str], wanted: str | None) -> int | None:
    """The label column: `wanted` by name, else the first column with a usual label name."""
    names = [h.strip().lower() for h in header]
    if wanted:
        return names.index(wanted.lower()) if wanted.lower() in names else None
    return next((i for i, n in enumerate(names) if n in LABEL_NAMES), None)


def new_profile(header: list[str], label: str | None) -> Profile:
    columns = [ColumnStats(h, rng=random.Random(i)) for i, h in enumerate(header)]  # noqa: S311 -- sampling
    return Profile(header, label_index(header, label), columns)



def add_row(p: Profile, line: int, values: list[str]) -> None:
    """Fold one row into the profile (call `finish` at the end)."""
    add_rows(p, [line], [values])


def add_rows(p: Profile, lines: list[int], rows: list[list[str]]) -> None:
    """Fold rows (each padded or cut to the header's width) into the profile."""
    width = len(p.header)
    fitted = [r if len(r) == width else (r + [""] * width)[:width] for r in rows]
    add_columns(p, lines, [list(c) for c in zip(*fitted, strict=True)] if width else [])


def add_columns(p: Profile, lines: list[int], columns: list[list[str]]) -> None:
    """Fold a block of rows, given as one list of raw values per header column, into the profile."""
    n = len(lines)
    if not columns:  # a JSON Lines file whose first object is {}: rows without columns
        p.rows += n
        if n and p.hashed_rows < HASHED_ROWS:
            p.row_hashes.add(hash(()))
            p.hashed_rows = min(HASHED_ROWS, p.hashed_rows + n)
        return
    before = p.rows
    p.rows += n
    stripped = [list(map(str.strip, c)) for c in columns]
    labels = _labels(p, stripped[p.label]) if p.label is not None else None
    near: list[list[str]] = []
    hashed = max(0, min(n, HASHED_ROWS - p.hashed_rows))
    for index, values in enumerate(stripped):
        if index == p.label:
            continue
        nums = numbers(values)
        if labels is not None and hashed:
            near.append(near_all(values[:hashed], nums[:hashed]))
        _column(p, index, lines, values, nums, labels, max(0, min(n, TOKEN_ROWS - before)))
    if hashed:
        p.hashed_rows += hashed
        lowered = [list(map(str.lower, c[:hashed])) for c in stripped]
        p.row_hashes.update(map(hash, zip(*lowered, strict=True)))
    if p.pending_values >= _BLOCK:
        _flush(p)
    if labels is None:
        return
    p.labels.update(x for x in labels if x is not None)
    if hashed:
        features = [c[:hashed] for i, c in enumerate(stripped) if i != p.label]
        head = labels[:hashed]
        p.exact_conflict_rows += _conflicts(p.exact_first, p.exact_conflicts, _keys(features, hashed), head)
        p.near_conflict_rows += _conflicts(p.near_first, p.near_conflicts, _keys(near, hashed), head)


def _labels(p: Profile, values: list[str]) -> list[str | None]:
    """The label of each row: one shared string per label; None once more than `MAX_LABELS` were seen (from
    the row after that on, as a row at a time would)."""
    names = p.label_names
    if len(p.labels) > MAX_LABELS:
        return [None] * len(values)
    fresh = set(values) - p.labels.keys()
    if len(p.labels) + len(fresh) <= MAX_LABELS:
        return [names.setdefault(v, v) for v in values]
    out: list[str | None] = []
    known = set(p.labels)
    for v in values:
        out.append(names.setdefault(v, v) if len(known) <= MAX_LABELS else None)
        known.add(v)
    return out


def _keys(columns: list[list[str]], n: int) -> list[int]:
    return list(map(hash, zip(*columns, strict=True))) if columns else [hash(())] * n


def _conflicts(first: dict[int, str], conflicts: set[int], keys: list[int], labels: list[str | None]) -> int:
    """Rows newly known to be in a group with two labels."""
    found = 0
    for key, label in zip(keys, labels, strict=True):
        if label is None:
            continue
        seen = first.setdefault(key, label)
        if key in conflicts:
            found += 1
        elif seen != label:
            conflicts.add(key)
            found += 2
    return found


def finish(p: Profile) -> None:
    """Check the personal data still pending (after the last row)."""
    _flush(p)


def _flush(p: Profile) -> None:
    """Personal data of the pending values: the values a gate picks (`dataset_gate`), for the kinds it
    picks them for, one regex pass per pattern over them joined by line breaks (no pattern crosses a line
    break), counted by kind, the first match of each kind (the lines are in order) mapped back to its row."""
    for index, pending in p.pending.items():
        col = p.columns[index]
        for lines, values, kinds in dataset_gate.groups(*pending):
            text = "\n".join(values)
            starts: list[int] | None = None
            for kind, (count, match) in dataset_pii.tally(text, kinds).items():
                col.pii[kind] += count
                first = col.first_pii.get(kind)
                if first is not None and first[0] <= lines[0]:
                    continue
                if starts is None:
                    starts = list(itertools.accumulate(map(len, values[:-1]), lambda a, b: a + b + 1, initial=0))
                line = lines[bisect.bisect_right(starts, match.start) - 1]
                if first is None or line < first[0]:
                    col.first_pii[kind] = (line, dataset_pii.redact(text[match.start:match.end]))
    p.pending.clear()
    p.pending_values = 0


def _column(p: Profile, index: int, lines: list[int], values: list[str], nums: list[float | None],
            labels: list[str | None] | None, token_rows: int) -> None:
    has_numbers = dataset_column.fold(p.columns[index], values, nums, labels)
    # personal data is at least 7 characters long; a short number is neither a card, an IBAN nor a phone number
    lengths = list(map(len, values))
    if not has_numbers:
        wanted = list(map(_SEVEN.__le__, lengths))
    elif None not in nums:
        wanted = list(map(_THIRTEEN.__le__, lengths))
    else:
        wanted = [size >= 13 or (size >= 7 and x is None) for size, x in zip(lengths, nums, strict=True)]
    if any(wanted):
        pending = p.pending.setdefault(index, ([], []))
        pending[0].extend(itertools.compress(lines, wanted))
        chosen = list(itertools.compress(values, wanted))
        pending[1].extend(chosen)
        p.pending_values += len(chosen)
    if labels is not None and token_rows:
        _tokens(p, values[:token_rows], nums, labels)


def _tokens(p: Profile, values: list[str], nums: list[float | None], labels: list[str | None]) -> None:
    """Count, per label, the rows of this block holding each token (of text values over 12 characters)."""
    by_label: dict[str, list[str]] = {}
    for v, x, label in zip(values, nums, labels, strict=False):
        if label is not None and x is None and len(v) > 12:
            by_label.setdefault(label, []).append(v)
    for label, texts in by_label.items():
        found = Counter(itertools.chain.from_iterable(map(set, map(_TOKEN.findall, map(str.lower, texts)))))
        for token, n in found.items():
            counts = p.tokens.get(token)
            if counts is None:
                if len(p.tokens) >= MAX_VOCABULARY:
                    continue
                counts = p.tokens[token] = Counter()
            counts[label] += n
