"""The benchmark harness: failed runs are failures, not fast runs; pairs alternate; ratios per pair."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks import _harness as h


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_failing_contender_has_no_time(tmp_path: Path) -> None:
    stats = h.measure(h.Contender("fails", _py("import sys; sys.exit(3)")), runs=2, warmup=0)
    assert not stats.ok
    assert "exit 3" in stats.describe()


def test_check_rejects_wrong_output() -> None:
    def needs_ok(done):  # type: ignore[no-untyped-def]
        return None if b"ok" in done.stdout else "no ok in output"

    good = h.measure(h.Contender("good", _py("print('ok')"), check=needs_ok), runs=1, warmup=0)
    bad = h.measure(h.Contender("bad", _py("print('no')"), check=needs_ok), runs=1, warmup=0)
    assert good.ok and not bad.ok


def test_pairs_alternate_and_give_a_ratio_each(tmp_path: Path) -> None:
    log = tmp_path / "order"
    a = h.Contender("a", _py(f"open({str(log)!r}, 'a').write('a')"))
    b = h.Contender("b", _py(f"import time; time.sleep(0.05); open({str(log)!r}, 'a').write('b')"))
    pair = h.compare(a, b, runs=3, warmup=1)
    assert log.read_text() == "ab" * 4
    # Each ratio is its own pair's a/b (not a ratio of medians); no timing is asserted (the machine may be loaded).
    walls = [(x.wall, y.wall) for x, y in zip(pair.a.samples, pair.b.samples, strict=True)]
    assert len(pair.ratios) == 3 and list(pair.ratios) == [x / y for x, y in walls]
    assert "ratio a/b" in pair.describe()


def test_a_failed_run_voids_its_pair() -> None:
    a = h.Contender("a", _py("pass"))
    b = h.Contender("b", _py("import sys; sys.exit(1)"))
    pair = h.compare(a, b, runs=2, warmup=0)
    assert pair.ratios == () and "n/a" in pair.describe()


def test_peak_memory_is_the_child_s() -> None:
    stats = h.measure(h.Contender("alloc", _py("x = bytearray(200 * 1024 * 1024); x[::4096] = b'1' * len(x[::4096])")),
                      runs=1, warmup=0)
    assert stats.ok and stats.peak_mb() > 150


def test_peak_memory_is_not_the_harness_s() -> None:
    h.start()  # while this process is small, as a benchmark does
    ballast = bytearray(300 * 1024 * 1024)
    ballast[::4096] = b"1" * len(ballast[::4096])  # resident: a child forked from here would inherit the mark
    stats = h.measure(h.Contender("small", _py("pass")), runs=1, warmup=0)
    assert stats.ok and stats.peak_mb() < 100
    del ballast


def test_machine_line() -> None:
    assert "cores" in h.machine()
