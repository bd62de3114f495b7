"""benchmarks/data_scan.py: a baseline that was killed or failed gives no ratio (the 2 GiB run of
2026-12-04 printed one for a baseline stopped after 113 s of CPU)."""

from __future__ import annotations

from benchmarks import data_scan


def test_ratio_only_when_both_finished() -> None:
    assert data_scan.ratio(0, 10.0, 20.0, 0, 40.0, 80.0) == "ratio mlsec/pandas CPU 0.25, wall 0.25"
    for codes in ((0, -15), (0, 1), (2, 0)):
        text = data_scan.ratio(codes[0], 10.0, 20.0, codes[1], 40.0, 80.0)
        assert text.startswith("no ratio") and "CPU 0." not in text
    assert data_scan.ratio(0, 10.0, 20.0, 0, 0.0, 80.0).startswith("no ratio")


def test_generated_rows_have_the_header_columns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "t.csv"
    count = data_scan.generate(path, 1)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "x1,x2,x3,text,email,label" and len(lines) == count + 1
    assert all(len(line.split(",")) == 6 for line in lines[1:])
