"""A prefilter for the personal-data check of a column block: a few cheap patterns, each a necessary
condition of one or more `dataset_pii` patterns, say which kinds could match in which values; each value
then goes through the exact patterns of only those kinds (most values through none).

Every gate is its kinds' patterns with the look-arounds dropped and the quantifiers cut short, and no gate
crosses a line break, so a value no gate hits holds no match of those kinds. The gates are in the patterns'
own dialect (Python's `re`: `\\d` and the letter classes mean the same), and cheap: a literal first
character, or one digit-run start per number. (pyarrow's RE2 kernels would run them about three times
faster, but importing pyarrow costs about 100 MB of resident memory against the 300 MB budget.) Leaving kinds out of
`dataset_pii.find` changes nothing else: a kind whose pattern cannot match claims no span. Where several
gates hit a value its kinds are checked together, so the "first check wins" overlap rule sees them all.
`tests/unit/analyzers/test_dataset_speed.py` compares gated and ungated results, by property and on the
benchmark's rows.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterator

_GATES: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = tuple((re.compile(p), frozenset(k)) for p, k in (
    (r"@[A-Za-z0-9-]+\.", {"email"}),
    (r"\+[1-9]|\(\d{3}\)", {"phone"}),
    (r"[A-Z][A-Z]\d\d", {"iban"}),
    (r"-\d\d-\d", {"national-id"}),  # SSN
    # 8 digits (a DNI, the start of a card number) or a house number before a street's words: the three
    # patterns start on a digit after no digit (possessive: the classes either side of each `?+` are disjoint)
    (r"\d(?<!\d\d)(?:(?:[ -]?+\d){7}|\d{0,4}+[A-Za-z]?+ [A-Z\d])",
     {"payment-card", "national-id", "street-address"}),
    (r"\.\d{1,3}\.\d{1,3}\.\d", {"ip-address"}),
    (r"(?:straße|strasse|weg|gasse|allee|platz) \d", {"street-address"}),  # Lindenstraße 12
    (r"[A-Z][a-z]+,? [A-Z]", {"person-name"}),
))
"""(necessary condition, the kinds it stands for)."""
GATED = True
"""Prefilter with the gates (tests turn it off to compare)."""


def _kinds(text: str, starts: list[int]) -> list[int]:
    """A bit per gate for every value of the joined `text` (values begin at `starts`)."""
    flags = [0] * len(starts)
    end = len(text)
    for bit, (gate, _) in enumerate(_GATES):
        search, pos = gate.search, 0
        while (m := search(text, pos)) is not None:
            i = bisect.bisect_right(starts, m.start()) - 1
            flags[i] |= 1 << bit
            pos = starts[i + 1] if i + 1 < len(starts) else end
    return flags


def groups(lines: list[int], values: list[str]) -> Iterator[tuple[list[int], list[str], frozenset[str] | None]]:
    """The values (and their lines, in order) to check, by the kinds to check them for (None: every kind);
    values no gate hits are left out."""
    if not values:
        return
    if not GATED:
        yield lines, values, None
        return
    starts = list(itertools.accumulate(map(len, values[:-1]), lambda a, b: a + b + 1, initial=0))
    flags = _kinds("\n".join(values), starts)
    picked: dict[int, list[int]] = {}
    for i, flag in enumerate(flags):
        if flag:
            picked.setdefault(flag, []).append(i)
    for flag, indices in picked.items():
        kinds = frozenset().union(*(k for bit, (_, k) in enumerate(_GATES) if flag >> bit & 1))
        yield [lines[i] for i in indices], [values[i] for i in indices], kinds
