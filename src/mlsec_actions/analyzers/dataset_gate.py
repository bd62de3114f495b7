"""A prefilter for the personal-data check of a column block: a few cheap patterns, each a necessary
condition of one or more `dataset_pii` patterns, say which kinds could match in which values; each value
then goes through the exact patterns of only those kinds (most values through none).

Every gate is its kinds' patterns with the look-arounds dropped and the quantifiers cut short (or a part
of them every match holds, such as the space after a house number), and no gate crosses a line break, so
a value no gate hits holds no match of those kinds. The gates are in the patterns'
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
import operator
import re
from collections.abc import Iterator

_EIGHT_DIGITS = r"\d(?<!\d\d)(?:[ -]?+\d){7}"
_DIGIT_KINDS = {"payment-card", "national-id", "street-address"}
_GATES: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = tuple((re.compile(p), frozenset(k)) for p, k in (
    (r"@[A-Za-z0-9-]+\.", {"email"}),
    (r"\+[1-9]|\(\d{3}\)", {"phone"}),
    (r"[A-Z][A-Z]\d\d", {"iban"}),
    (r"-\d\d-\d", {"national-id"}),  # SSN
    # 8 digits (a DNI, the start of a card number), or a house number before a street's words; the first
    # starts on a digit after no digit (possessive: the classes either side of each `?+` are disjoint), the
    # second on the space after the number (rarer than digits), and both stand for the three kinds
    (_EIGHT_DIGITS, _DIGIT_KINDS),
    (r" (?:(?<=\d )|(?<=\d[A-Za-z] ))[A-Z\d]", _DIGIT_KINDS),
    (r"\.\d{1,3}\.\d{1,3}\.\d", {"ip-address"}),
    (r"(?:straße|strasse|weg|gasse|allee|platz) \d", {"street-address"}),  # Lindenstraße 12
    (r"[A-Z][a-z]+,? [A-Z]", {"person-name"}),
))
"""(necessary condition, the kinds it stands for)."""
GATED = True
"""Prefilter with the gates (tests turn it off to compare)."""
_START = operator.methodcaller("start")
_ZEROS = bytes.maketrans(b"123456789", b"000000000")


def _hits(text: str, ends: list[int]) -> list[set[int]]:
    """Per gate, the values of the joined `text` it hits (by index; value i ends at `ends[i]`). One
    `finditer` per gate, its matches mapped to values in C (no gate match crosses a line break, so each
    lies in one value). The eight-digit gate tries every digit, so an ASCII block first goes through a
    cheaper test of the same condition: with the separators dropped and every digit a 0, eight digits
    with at most one separator between each are eight 0s in a row (line breaks stay)."""
    out: list[set[int]] = []
    for gate, _ in _GATES:
        if gate.pattern == _EIGHT_DIGITS and text.isascii() and \
                b"00000000" not in text.encode("ascii").translate(_ZEROS, b" -"):
            out.append(set())
            continue
        out.append(set(map(bisect.bisect_left, itertools.repeat(ends), map(_START, gate.finditer(text)))))
    return out


def groups(lines: list[int], values: list[str]) -> Iterator[tuple[list[int], list[str], frozenset[str] | None]]:
    """The values (and their lines, in order) to check, by the kinds to check them for (None: every kind);
    values no gate hits are left out."""
    if not values:
        return
    if not GATED:
        yield lines, values, None
        return
    ends = list(itertools.accumulate(map(len, values), lambda a, b: a + b + 1))
    hit = [(bit, indices) for bit, indices in enumerate(_hits("\n".join(values), ends)) if indices]
    if len(hit) == 1:  # the usual case: one kind of data in a column
        bit, only = hit[0]
        chosen = sorted(only)
        yield [lines[i] for i in chosen], [values[i] for i in chosen], _GATES[bit][1]
        return
    flags: dict[int, int] = {}
    for bit, indices in hit:
        for i in indices:
            flags[i] = flags.get(i, 0) | 1 << bit
    kinds_of: dict[int, frozenset[str]] = {}
    picked: dict[frozenset[str], list[int]] = {}
    for i in sorted(flags):
        flag = flags[i]
        kinds = kinds_of.get(flag)
        if kinds is None:
            kinds = kinds_of[flag] = frozenset().union(*(k for bit, (_, k) in enumerate(_GATES) if flag >> bit & 1))
        picked.setdefault(kinds, []).append(i)
    for kinds, chosen in picked.items():
        yield [lines[i] for i in chosen], [values[i] for i in chosen], kinds
