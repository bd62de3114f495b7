"""mlsec data-scan on a generated CSV: rows/s, MB/s and peak RSS of the whole process, and, in the same
run, two pandas `read_csv` + regex baselines on the same file when pandas is installed (the ratios are
only printed when both ran; without pandas the baselines are said to be missing, never invented):

- "same checks": every column through the same eight kinds' patterns and checks data-scan uses
  (`dataset_pii`'s regexes and their Luhn, mod-97, range and domain checks), with pandas' `.str.findall`;
  the honest comparison for the personal-data part (data-scan also profiles every column, hashes rows
  for duplicates, label flips and split leakage, and counts trigger tokens, which no baseline does);
- "e-mail only": one e-mail regex with `.str.contains`, the first baseline (one kind of eight, no checks).

The file (default 2048 MiB) has numeric features, a text column, an e-mail column and a label. Peak RSS is
the child's `ru_maxrss` (Linux: KiB); CPU is its user + system time (the figure to compare on a loaded
machine; wall time is printed beside it). Target (issue 14): flat memory (under 300 MB at 2 GB) and
faster than the baseline.
Run: .venv/bin/python benchmarks/data_scan.py [MIB [MAX_ROWS]]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent
_SAME_CHECKS = r"""
import sys
import pandas as pd
from mlsec_actions.analyzers import dataset_pii as P
checks = [(P.EMAIL, P.email_ok), (P.CARD, P.card_ok), (P.IBAN, P.iban_ok), (P.SSN, P.ssn_ok), (P.DNI, P.dni_ok),
          (P.PHONE, P.phone_ok), (P.IPV4, P.ip_ok), (P.STREET, P.street_ok), (P.NAME, P.name_ok)]
found = 0
for chunk in pd.read_csv(sys.argv[1], chunksize=200_000, dtype=str, keep_default_na=False):
    for column in chunk.columns:
        values = chunk[column].str.strip()
        for pattern, ok in checks:
            for matches in values.str.findall(pattern):
                found += sum(map(ok, matches))
print(found)
"""
_EMAIL_ONLY = r"""
import re, sys
import pandas as pd
email = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
found = 0
for chunk in pd.read_csv(sys.argv[1], chunksize=200_000, dtype=str):
    for column in chunk.columns:
        found += int(chunk[column].fillna("").str.contains(email).sum())
print(found)
"""


def rows(rng: random.Random) -> Iterator[list[str]]:
    """The benchmark's rows, endless: three numbers, eight words of text, an e-mail address, a label."""
    words = [f"w{i}" for i in range(2000)]
    n = 0
    while True:
        n += 1
        yield [f"{rng.random():.6f}", f"{rng.gauss(0, 1):.6f}", str(rng.randint(0, 10**6)),
               " ".join(rng.choices(words, k=8)), f"u{n}@mail{n % 97}.org", rng.choice("ab")]


def generate(path: Path, mib: int) -> int:
    """Write about `mib` MiB of CSV; returns the row count."""
    source = rows(random.Random(1))
    target, count = mib * 1024 * 1024, 0
    with path.open("w", encoding="utf-8") as fh:
        fh.write("x1,x2,x3,text,email,label\n")
        while fh.tell() < target:
            fh.write("".join(",".join(next(source)) + "\n" for _ in range(10_000)))
            count += 10_000
    return count


def _child(argv: list[str], out: Path) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds (user + system), peak RSS in KiB and exit code of one process (its
    standard output to `out`)."""
    start = time.perf_counter()
    with out.open("wb") as fh:
        actions = [(os.POSIX_SPAWN_DUP2, fh.fileno(), 1)]
        pid = os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
    return (time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss,
            os.waitstatus_to_exitcode(status))


def ratio(code: int, cpu: float, wall: float, b_code: int, b_cpu: float, b_wall: float) -> str:
    """The mlsec/pandas ratios, only when both processes finished (a killed or failed run has no time)."""
    if code != 0 or b_code != 0 or b_cpu <= 0 or b_wall <= 0:
        return f"no ratio (exit {code} and {b_code}: a run that did not finish has no time)"
    return f"ratio mlsec/pandas CPU {cpu / b_cpu:.2f}, wall {wall / b_wall:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("mib", nargs="?", type=int, default=2048, help="size of the generated CSV in MiB")
    ap.add_argument("max_rows", nargs="?", type=int, default=1_000_000_000, help="data-scan's --max-rows")
    args = ap.parse_args(argv)
    mib, max_rows = args.mib, str(args.max_rows)
    with tempfile.TemporaryDirectory(prefix="mlsec-bench-data-") as tmp:
        data = Path(tmp) / "d" / "train.csv"
        data.parent.mkdir()
        count = generate(data, mib)
        size = data.stat().st_size / 1024 / 1024
        print(f"file: {size:.0f} MiB, {count} rows; machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
              f"load average {os.getloadavg()[0]:.1f}")
        wall, cpu, rss, code = _child([str(BIN / "mlsec"), "data-scan", str(data.parent), "--sarif",
                                       f"{tmp}/o.sarif", "--max-rows", max_rows, "--timeout", "86400"],
                                      Path(tmp) / "ours.out")
        print(f"mlsec data-scan: CPU {cpu:.1f} s ({count / cpu:,.0f} rows/s, {size / cpu:.1f} MB/s), wall {wall:.1f} s "
              f"({count / wall:,.0f} rows/s, {size / wall:.1f} MB/s), peak RSS {rss / 1024:.0f} MiB, exit {code}")
        try:
            import pandas  # noqa: F401 -- only to know whether the baselines can run
        except ImportError:
            print("pandas baselines: not run (pandas is not installed in this environment)")
            return 0 if code == 0 else 1
        for name, source in (("same checks", _SAME_CHECKS), ("e-mail only", _EMAIL_ONLY)):
            script = Path(tmp) / "baseline.py"
            script.write_text(source)
            b_wall, b_cpu, b_rss, b_code = _child([sys.executable, str(script), str(data)], Path(tmp) / "b.out")
            found = (Path(tmp) / "b.out").read_text().strip()
            print(f"pandas read_csv + regex ({name}): CPU {b_cpu:.1f} s, wall {b_wall:.1f} s "
                  f"({size / b_cpu:.1f} MB/s CPU), peak RSS {b_rss / 1024:.0f} MiB, exit {b_code}, {found} matches; "
                  + ratio(code, cpu, wall, b_code, b_cpu, b_wall))
    return 0 if code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
