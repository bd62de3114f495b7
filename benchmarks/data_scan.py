"""mlsec data-scan on a generated CSV: rows/s, MB/s and peak RSS of the whole process, and, in the same
run, a pandas `read_csv` + regex PII baseline on the same file when pandas is installed (the ratio is
only printed when both ran; without pandas the baseline is said to be missing, never invented).

The file (default 2048 MiB) has numeric features, a text column, an e-mail column and a label. Peak RSS is
the child's `ru_maxrss` (Linux: KiB). Target (issue 14): flat memory (under 300 MB at 2 GB) and faster
than the baseline.
Run: .venv/bin/python benchmarks/data_scan.py [MIB [MAX_ROWS]]
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
_BASELINE = r"""
import re, sys
import pandas as pd
email = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
found = 0
for chunk in pd.read_csv(sys.argv[1], chunksize=200_000, dtype=str):
    for column in chunk.columns:
        found += int(chunk[column].fillna("").str.contains(email).sum())
print(found)
"""


def generate(path: Path, mib: int) -> int:
    """Write about `mib` MiB of CSV; returns the row count."""
    rng = random.Random(1)
    words = [f"w{i}" for i in range(2000)]
    target, rows = mib * 1024 * 1024, 0
    with path.open("w", encoding="utf-8") as fh:
        fh.write("x1,x2,x3,text,email,label\n")
        while fh.tell() < target:
            block = []
            for _ in range(10_000):
                rows += 1
                block.append(f"{rng.random():.6f},{rng.gauss(0, 1):.6f},{rng.randint(0, 10**6)},"
                             f"{' '.join(rng.choices(words, k=8))},u{rows}@mail{rows % 97}.org,{rng.choice('ab')}\n")
            fh.write("".join(block))
    return rows


def _child(argv: list[str]) -> tuple[float, int, int]:
    """Seconds, peak RSS in KiB and exit code of one process."""
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, dict(os.environ))
    _, status, usage = os.wait4(pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    mib = int(args[0]) if args else 2048
    max_rows = args[1] if len(args) > 1 else "1000000000"
    with tempfile.TemporaryDirectory(prefix="mlsec-bench-data-") as tmp:
        data = Path(tmp) / "d" / "train.csv"
        data.parent.mkdir()
        rows = generate(data, mib)
        size = data.stat().st_size / 1024 / 1024
        print(f"file: {size:.0f} MiB, {rows} rows; machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        ours = _child([str(BIN / "mlsec"), "data-scan", str(data.parent), "--sarif", f"{tmp}/o.sarif",
                       "--max-rows", max_rows, "--timeout", "86400"])
        seconds, rss, code = ours
        print(f"mlsec data-scan: {seconds:.1f} s, {rows / seconds:,.0f} rows/s, {size / seconds:.1f} MB/s, "
              f"peak RSS {rss / 1024:.0f} MiB, exit {code}")
        try:
            import pandas  # noqa: F401 -- only to know whether the baseline can run
        except ImportError:
            print("pandas baseline: not run (pandas is not installed in this environment)")
            return 0 if code == 0 else 1
        script = Path(tmp) / "baseline.py"
        script.write_text(_BASELINE)
        b_seconds, b_rss, b_code = _child([sys.executable, str(script), str(data)])
        print(f"pandas read_csv + regex: {b_seconds:.1f} s, {size / b_seconds:.1f} MB/s, "
              f"peak RSS {b_rss / 1024:.0f} MiB, exit {b_code}; ratio mlsec/pandas {seconds / b_seconds:.2f}")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
