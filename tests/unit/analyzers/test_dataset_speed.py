"""data-scan's fast path keeps its answers: the PII patterns rewritten to start with a character class
match exactly what the look-behind-first forms matched (property test against the old forms, kept here),
a file read in blocks gives the profile a row at a time gives, line numbers stay right when quoted
values span lines, and memory-bounding caps are coverage gaps, not silent."""

from __future__ import annotations

import importlib
import random
import re
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mlsec_actions.analyzers import dataset_checks, dataset_pii, dataset_profile, dataset_read

_LOOKBEHIND_FIRST = {
    "EMAIL": r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b",
    "PHONE": r"(?<![\w+])\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?!\w)|\(\d{3}\) ?\d{3}-\d{4}\b",
    "CARD": r"(?<![\d.-])(?:\d[ -]?){12,18}\d(?![\d.-])",
    "IBAN": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",
    "SSN": r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])",
    "DNI": r"\b\d{8}-?[A-Z]\b",
    "IPV4": r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])",
}
_ALPHABET = "0123456789" * 3 + " -.+()@\n\tABZaz_é٣xGB"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=80))
def test_rewritten_patterns_match_what_the_lookbehind_forms_matched(text: str) -> None:
    for name, old in _LOOKBEHIND_FIRST.items():
        new: re.Pattern[str] = getattr(dataset_pii, name)
        assert [m.span() for m in new.finditer(text)] == [m.span() for m in re.finditer(old, text)], name


def test_rewritten_patterns_on_real_shapes() -> None:
    text = ("x u1@mail.org +44 20 7946 0958 (212) 555-1234 4539 1488 0343 6467 GB33BUKB20201555555555 "
            "1.2.3.4.5 8.8.8.8 536-90-4399 12345678Z a4539148803436467 -4539148803436467")
    for name, old in _LOOKBEHIND_FIRST.items():
        new: re.Pattern[str] = getattr(dataset_pii, name)
        assert [m.span() for m in new.finditer(text)] == [m.span() for m in re.finditer(old, text)], name


def _corpus(rng: random.Random, n: int) -> list[list[str]]:
    words = ["alpha", "beta", "Gamma", "trigger_x", "w1", "x9"]
    rows = []
    for i in range(n):
        label = rng.choice("ab")
        rows.append([f"{rng.gauss(0, 1):.4f}", "" if i % 7 == 0 else str(rng.randint(0, 50)),
                     " ".join(rng.choices(words, k=4)) + (" trigger_x" if label == "b" and i % 3 == 0 else ""),
                     rng.choice([f"u{i}@mail{i % 5}.org", "n/a", "+44 20 7946 0958", "536-90-4399", ""]),
                     label])
    return rows


def _compare(a: dataset_profile.Profile, b: dataset_profile.Profile) -> None:
    for x, y in zip(a.columns, b.columns, strict=True):
        assert (x.pii, x.first_pii, x.distinct, x.to_label, x.numbers, x.numeric_seen, x.filled) == \
            (y.pii, y.first_pii, y.distinct, y.to_label, y.numbers, y.numeric_seen, y.filled)
    assert (a.rows, a.labels, a.exact_conflict_rows, a.near_conflict_rows, a.row_hashes, a.tokens) == \
        (b.rows, b.labels, b.exact_conflict_rows, b.near_conflict_rows, b.row_hashes, b.tokens)


def test_blocks_and_single_rows_give_the_same_profile(tmp_path: Path) -> None:
    rows = _corpus(random.Random(5), 9000)  # noqa: S311 -- over two blocks, past the reservoir size
    header = ["f", "n", "text", "contact", "label"]
    one = dataset_profile.new_profile(header, None)
    for line, row in enumerate(rows, start=2):
        dataset_profile.add_row(one, line, row)
    dataset_profile.finish(one)
    path = tmp_path / "t.csv"
    path.write_text(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    names, stream = dataset_read.rows(path, "csv")
    many = dataset_profile.new_profile(names, None)
    for lines, columns in dataset_read.blocks(names, stream, 10**9):
        dataset_profile.add_columns(many, lines, columns)
    dataset_profile.finish(many)
    _compare(one, many)
    found = {f.rule.id for f in dataset_checks.findings("t.csv", many, dataset_checks.Thresholds())}
    assert {"pii/email", "pii/phone", "pii/national-id"} <= found


def test_line_numbers_when_quoted_values_span_lines(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes(b'a,b\n1,"two\nlines"\n2,"cr\r\nlf"\n\n3,x\n')
    header, stream = dataset_read.rows(path, "csv")
    assert header == ["a", "b"]
    assert list(dataset_read.blocks(header, stream, 100)) == [
        ([3, 5, 6, 7], [["1", "2", "", "3"], ["two\nlines", "cr\r\nlf", "", "x"]])]


def test_rows_before_a_malformed_one_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b'a\n1\n2\n"3"x\n4\n')
    header, stream = dataset_read.rows(path, "csv")
    got = []
    try:
        for lines, columns in dataset_read.blocks(header, stream, 100):
            got.append((lines, columns))
    except dataset_read.Unreadable as e:
        assert "near line 4" in str(e)
    else:
        raise AssertionError("the malformed row was not reported")
    assert got == [([2, 3], [["1", "2"]])]


def test_hash_checks_past_their_cap_are_a_sample(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(dataset_profile, "HASHED_ROWS", 100)
    p = dataset_profile.new_profile(["x", "label"], None)
    dataset_profile.add_rows(p, list(range(2, 302)), [[str(i), "ab"[i % 2]] for i in range(300)])
    assert (p.rows, p.hashed_rows, len(p.row_hashes), len(p.exact_first)) == (300, 100, 100, 100)


def test_the_same_table_as_csv_and_as_parquet_gives_the_same_findings(tmp_path: Path) -> None:
    """The standard library's CSV path and pyarrow's Parquet path end in the same profile code."""
    pa: Any = importlib.import_module("pyarrow")  # the data extra, in dev: a missing install fails here
    pq: Any = importlib.import_module("pyarrow.parquet")

    rows = _corpus(random.Random(9), 6000)  # noqa: S311
    header = ["f", "n", "text", "contact", "label"]
    (tmp_path / "t.csv").write_text(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    pq.write_table(pa.table({h: [r[i] for r in rows] for i, h in enumerate(header)}), tmp_path / "t.parquet")

    def findings(name: str, kind: str) -> list[tuple[str, str, str]]:
        names, stream = dataset_read.rows(tmp_path / name, kind)
        p = dataset_profile.new_profile(names, None)
        for lines, columns in dataset_read.blocks(names, stream, 10**9):
            dataset_profile.add_columns(p, lines, columns)
        dataset_profile.finish(p)
        return sorted((f.rule.id, f.message, str(f.location.logical))
                      for f in dataset_checks.findings("t", p, dataset_checks.Thresholds()))

    csv_found = findings("t.csv", "csv")
    assert csv_found and {"pii/email", "pii/phone"} <= {r for r, _, _ in csv_found}
    # Parquet rows have no line numbers of their own: row N is "line" N, one less than the CSV's line
    assert [(r, re.sub(r"line \d+", "line", m), w) for r, m, w in findings("t.parquet", "parquet")] == \
        [(r, re.sub(r"line \d+", "line", m), w) for r, m, w in csv_found]


def test_pending_values_are_checked_once_a_block_is_full() -> None:
    """The count of pending values is what was added (not the running length of each column's list, which
    flushed after a few small blocks), so personal data is checked in blocks of at least `_BLOCK` values."""
    p = dataset_profile.new_profile(["a", "b"], None)
    step = 500  # two columns: 1,000 pending values per call, so 8 calls stay under 8,192 and the 9th flushes
    for call in range(1, 10):
        lines = list(range(call * step, (call + 1) * step))
        dataset_profile.add_columns(p, lines, [[f"value-{i}" for i in lines], [f"other-{i}" for i in lines]])
        pending = sum(len(values) for _, values in p.pending.values())
        assert p.pending_values == pending, call
        assert pending == (0 if call == 9 else call * 2 * step), call
    assert dataset_profile._BLOCK == 8192
