"""The personal-data prefilter (`dataset_gate`) loses nothing: with it and without it, the same matches of
the same kinds at the same places, by property over texts built from the patterns' own pieces, on a
block holding every kind, and on the benchmark's rows through the whole profile."""

from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsec_actions.analyzers import dataset_gate, dataset_pii, dataset_profile, dataset_read

_PIECES = ["u1@mail.org", "a.b@x-y.co.uk", "Ann@Mail.ORG", "@x.", "+44 20 7946 0958", "+1", "(212) 555-1234", "(212)",
           "4539 1488 0343 6467", "4539-1488-0343-6467", "4539148803436467", "GB33BUKB20201555555555",
           "DE44500105175407324931", "536-90-4399", "12345678Z", "8.8.8.8", "1.2.3.4.5", "12 Baker Street",
           "5th Avenue", "1600 Pennsylvania Avenue", "Hauptstraße 5", "Lindenweg 12a", "John Smith",
           "Smith, John", "Maria K. Garcia", "McDonald, Anne", "w235 w1521", "0.134364", "-1.390283", "٣٣٣"]
_ALPHABET = "0123456789" * 3 + " -.+(),@\n\tABGZaz_éß٣xhn"
_VALUE = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(alphabet=_ALPHABET, max_size=12)),
                  max_size=6).map(lambda parts: "".join(parts))


def _located(values: list[str], gated: bool) -> list[tuple[int, str, int, int]]:
    """(value index, kind, start, end within the value) of every match, as `dataset_profile._flush` finds them."""
    dataset_gate.GATED = gated
    try:
        out = []
        for lines, chosen, kinds in dataset_gate.groups(list(range(len(values))), values):
            text = "\n".join(chosen)
            starts = list(itertools.accumulate(map(len, chosen[:-1]), lambda a, b: a + b + 1, initial=0))
            for m in dataset_pii.find(text, kinds):
                at = max(i for i, s in enumerate(starts) if s <= m.start)
                out.append((lines[at], m.kind, m.start - starts[at], m.end - starts[at]))
        return sorted(out)
    finally:
        dataset_gate.GATED = True


@settings(max_examples=600, deadline=None)
@given(st.lists(_VALUE, min_size=1, max_size=8))
def test_gated_and_ungated_find_the_same_matches(values: list[str]) -> None:
    assert _located(values, True) == _located(values, False)


def test_every_kind_passes_its_gate() -> None:
    values = ["x", "u1@mail.org", "+44 20 7946 0958", "4539 1488 0343 6467", "GB33BUKB20201555555555",
              "536-90-4399", "12345678Z", "8.8.8.8", "12 Baker Street", "Hauptstraße 5", "John Smith",
              "w235 w1521 w944", "John Smith at u1@mail.org, 12 Baker Street"]
    got = _located(values, True)
    assert got == _located(values, False)
    assert {kind for _, kind, _, _ in got} == set(dataset_pii.KINDS)
    # the decoys go through no pattern at all
    assert [i for i, _, kinds in dataset_gate.groups([0, 11], ["x", "w235 w1521 w944"])] == []


def _benchmark_rows(n: int) -> list[list[str]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
    try:
        import data_scan as bench  # the benchmark's own generator, the rows it measures
    finally:
        sys.path.pop(0)
    return list(itertools.islice(bench.rows(random.Random(1)), n))  # noqa: S311 -- test data


@pytest.mark.parametrize("planted", [False, True])
def test_the_profile_is_the_same_with_and_without_the_gate(planted: bool) -> None:
    rows = _benchmark_rows(9000)
    if planted:  # every kind somewhere, in the free-text column
        for i, piece in enumerate(_PIECES):
            rows[i * 300][3] += " " + piece

    def profile(gated: bool) -> dataset_profile.Profile:
        dataset_gate.GATED = gated
        try:
            p = dataset_profile.new_profile(["x1", "x2", "x3", "text", "email", "label"], None)
            for lines, columns in dataset_read.blocks(p.header, iter(enumerate(rows, start=2)), 10**9):
                dataset_profile.add_columns(p, lines, columns)
            dataset_profile.finish(p)
            return p
        finally:
            dataset_gate.GATED = True

    fast, slow = profile(True), profile(False)
    assert [(c.pii, c.first_pii) for c in fast.columns] == [(c.pii, c.first_pii) for c in slow.columns]
    assert fast.columns[4].pii["email"] == 9000
    assert bool(fast.columns[3].pii) is planted


@settings(max_examples=400, deadline=None)
@given(st.lists(_VALUE, max_size=8), st.one_of(st.none(), st.sets(st.sampled_from(sorted(dataset_pii.KINDS)))))
def test_tally_counts_what_find_finds(values: list[str], kinds: set[str] | None) -> None:
    """`tally` (what data-scan keeps: a count and the first match per kind) agrees with `find`."""
    text = "\n".join(values)
    wanted = None if kinds is None else frozenset(kinds)
    matches = dataset_pii.find(text, wanted)
    expected = {m.kind: (sum(x.kind == m.kind for x in matches), m) for m in reversed(matches)}
    assert dataset_pii.tally(text, wanted) == expected


@settings(max_examples=600, deadline=None)
@given(st.lists(_VALUE, min_size=1, max_size=8))
def test_the_eight_digit_shortcut_hits_what_its_gate_hits(values: list[str]) -> None:
    """The ASCII test (separators dropped, digits as 0s) skips the eight-digit gate only when it finds
    nothing; every gate's hits are the values its own pattern finds something in."""
    ends = list(itertools.accumulate(map(len, values), lambda a, b: a + b + 1))
    got = dataset_gate._hits("\n".join(values), ends)
    assert got == [{i for i, v in enumerate(values) if gate.search(v)} for gate, _ in dataset_gate._GATES]


def test_eight_digits_with_separators_pass_the_shortcut() -> None:
    values = ["w12 w34", "4539-1488-0343-6467", "x 1 2 3 4 5 6 7 8", "1234 567", "12345678Z", "٣٣٣٣٣٣٣٣"]
    eight = [g for g, _ in dataset_gate._GATES].index(next(g for g, _ in dataset_gate._GATES
                                                            if g.pattern == dataset_gate._EIGHT_DIGITS))
    ends = list(itertools.accumulate(map(len, values), lambda a, b: a + b + 1))
    assert dataset_gate._hits("\n".join(values), ends)[eight] == {1, 2, 4, 5}
    assert dataset_gate._hits("\n".join(values[:4]), ends[:4])[eight] == {1, 2}  # ASCII only: the shortcut
