"""report.html for 25,000 findings: the whole `mlsec report` process, against the fixed cost of the same
process on no findings, and the size of the page (issue 15's target: generation under 1 s, the page usable).

Fair because each figure is a whole process on the shared harness (median with min-max, a run that writes no
report counts as failed), the SARIF is shaped like our writer's (benchmarks/gate.py's generator), and the
gate's verdict for the same files is included (the report reads it), so nothing is left out of the page.

With `--browser`, the page is also opened in Debian's chromium (Playwright) and timed as a user meets it:
from navigation to the first table rows, and from choosing a severity filter to the updated count (the
medians of `--runs`, wall time measured from Python, so they include Playwright's round trips).

Run: .venv/bin/python benchmarks/report.py [--findings 25000] [--files 5] [--runs 5] [--browser]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere
from benchmarks.gate import BIN, generate


def _report(folder: Path, verdict: Path, out: Path) -> h.Contender:
    page = out / f"{folder.name}.html"

    def check(done: object) -> str | None:
        return None if page.is_file() and page.stat().st_size > 0 else "no report written"

    return h.Contender(f"mlsec report {folder.name}", [str(BIN / "mlsec"), "report", "--sarif-dir", str(folder),
                                                       "--verdict", str(verdict), "--out", str(page)],
                       check=check, setup=lambda: page.unlink(missing_ok=True))


def _verdict(folder: Path, out: Path) -> Path:
    verdict = out / f"{folder.name}.verdict.json"
    subprocess.run([str(BIN / "mlsec"), "gate", "--sarif-dir", str(folder), "--verdict", str(verdict), "--summary",
                    str(out / "s.md"), "--sarif", str(out / "gate.sarif")], check=False, capture_output=True)
    return verdict


def _browser(page_file: Path, runs: int) -> str:
    from playwright.sync_api import expect, sync_playwright

    loads, filters = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for _ in range(runs):
            page = browser.new_page()
            started = time.perf_counter()
            page.goto(page_file.as_uri())
            page.wait_for_selector("#findings-table tbody tr")
            loads.append(time.perf_counter() - started)
            before = page.inner_text("#shown")
            started = time.perf_counter()
            page.select_option("#f-severity", label="critical")
            expect(page.locator("#shown")).not_to_have_text(before)
            filters.append(time.perf_counter() - started)
            page.close()
        browser.close()
    return (f"  chromium: first rows {statistics.median(loads):.2f} s median ({min(loads):.2f}-{max(loads):.2f}); "
            f"a filter over every row {statistics.median(filters):.2f} s ({min(filters):.2f}-{max(filters):.2f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--findings", type=int, default=25_000)
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also time the page in chromium")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mlsec-bench-report-"))
    out = work / "out"
    out.mkdir()
    print(h.machine())
    try:
        empty, full = work / "empty", work / f"n{args.findings}"
        generate(empty, 0, 1)
        size = generate(full, args.findings, args.files)
        fixed = h.measure(_report(empty, _verdict(empty, out), out), args.runs)
        print("fixed cost (no findings): " + fixed.describe(), flush=True)
        print(f"{args.findings:,} findings in {args.files} files, {size / 1e6:,.1f} MB of SARIF", flush=True)
        stats = h.measure(_report(full, _verdict(full, out), out), args.runs)
        print("  " + stats.describe(), flush=True)
        page = out / f"{full.name}.html"
        if stats.ok and page.is_file():
            print(f"  page: {page.stat().st_size / 1e6:.1f} MB; generation beyond the fixed cost: "
                  f"{stats.median() - (fixed.median() if fixed.ok else 0.0):.2f} s wall, "
                  f"{stats.cpu_median() - (fixed.cpu_median() if fixed.ok else 0.0):.2f} s CPU")
            if args.browser:
                print(_browser(page, args.runs), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
