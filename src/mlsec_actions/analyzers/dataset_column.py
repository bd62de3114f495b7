"""What data-scan keeps about one column of a dataset, folded a block of values at a time: how many are
filled, its distinct values (for the constant and leaked-column checks), the one label each value came
with, and a reservoir sample of its numbers (for the outlier check). Also the value parsers the profile
shares across columns: `numbers` and the near-duplicate form of a value (`near_all`).

Every structure is bounded: distinct values and the value-to-label map stop at `MAX_DISTINCT`, the
sample at `SAMPLE` numbers. `dataset_profile` holds the columns and the checks across them.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import cast

MAX_DISTINCT = 1000
"""Distinct values tracked per column for the constant / leaked-column checks."""
SAMPLE = 5000
"""Numeric values sampled per column for the outlier check."""
_NUMBER_START = re.compile(r"[\d+\-.]").match
_THREE_DIGITS = "{:.3g}".format
_ENDS = " .,;:!?\"'"


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
    rng: random.Random = field(default_factory=random.Random)
    """Reservoir sampling source (seeded with the column's index: the same file gives the same sample)."""
    next_replace: int = 0
    """Index of the numeric value that next enters the full reservoir (Algorithm L)."""
    weight: float = 1.0
    """Algorithm L's running weight."""
    filled: int = 0
    """Non-empty values seen."""


def _number(value: str) -> float | None:
    if not value or len(value) > 40 or not (value[0].isdigit() or value[0] in "+-."):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def numbers(values: list[str]) -> list[float | None]:
    """`_number` of every (stripped) value; a column that is all numbers goes through `float` in one pass.
    Whatever `float` accepts starts with a digit, a sign or a point, or is a spelling of inf or nan (not
    finite): the same answer as `_number`."""
    try:
        parsed = list(map(float, values))
    except ValueError:
        return [None if m is None else _number(v) for m, v in zip(map(_NUMBER_START, values), values, strict=True)]
    if all(map(math.isfinite, parsed)) and max(map(len, values), default=0) <= 40:
        return cast("list[float | None]", parsed)
    return [n if math.isfinite(n) and len(v) <= 40 else None for v, n in zip(values, parsed, strict=True)]


def _near(value: str, number: float | None) -> str:
    if number is not None:
        return f"{number:.3g}"
    return " ".join(value.lower().split()).strip(_ENDS)


def near_all(values: list[str], nums: list[float | None]) -> list[str]:
    """The near-duplicate form of each value: a number to three significant digits, text lower-cased with
    its white space and end punctuation folded."""
    if None not in nums:
        return list(map(_THREE_DIGITS, nums))
    if nums.count(None) == len(nums):  # text: `_near` of each, one C-level pass per step
        return list(map(str.strip, map(" ".join, map(str.split, map(str.lower, values))), itertools.repeat(_ENDS)))
    return list(map(_near, values, nums))


def fold(col: ColumnStats, values: list[str], nums: list[float | None], labels: list[str | None] | None) -> bool:
    """Fold a block of the column's (stripped) values, their `numbers` and the rows' labels into `col`;
    whether any value was a number."""
    filled = list(filter(None, values))
    col.filled += len(filled)
    if col.distinct is not None:
        col.distinct.update(filled)
        if len(col.distinct) > MAX_DISTINCT:
            col.distinct = None
    if col.to_label is not None and labels is not None:
        _to_label(col, values, labels)
    found = cast("list[float]", nums) if None not in nums else [x for x in nums if x is not None]
    if found:
        _sample(col, found)
    return bool(found)


def _to_label(col: ColumnStats, values: list[str], labels: list[str | None]) -> None:
    """Value -> its one label; None once a value came with two labels or there were too many values."""
    mapping = col.to_label
    assert mapping is not None
    for value, label in set(zip(values, labels, strict=True)):
        if value and label is not None and mapping.setdefault(value, label) != label:
            col.to_label = None
            return
    if len(mapping) > MAX_DISTINCT:
        col.to_label = None


def _sample(col: ColumnStats, found: list[float]) -> None:
    """Reservoir sample of the column's numbers (Algorithm L: a random draw per replacement, not per value)."""
    room = SAMPLE - len(col.numbers)
    if room > 0:
        col.numbers.extend(found[:room])
        col.numeric_seen += min(room, len(found))
        found = found[room:]
        if len(col.numbers) == SAMPLE:
            col.weight = math.exp(math.log(1.0 - col.rng.random()) / SAMPLE)
            col.next_replace = SAMPLE + _skip(col)
    start, end = col.numeric_seen, col.numeric_seen + len(found)
    while col.next_replace < end and len(col.numbers) == SAMPLE:
        col.numbers[col.rng.randrange(SAMPLE)] = found[col.next_replace - start]
        col.weight *= math.exp(math.log(1.0 - col.rng.random()) / SAMPLE)
        col.next_replace += 1 + _skip(col)
    col.numeric_seen = end


def _skip(col: ColumnStats) -> int:
    if col.weight >= 1.0:
        return 0
    return int(math.log(1.0 - col.rng.random()) / math.log1p(-col.weight))
