"""mlsec code-scan vs bare `trivy fs` on the same tree, in one run; prints times and the ratio.

Bare trivy gets the same scanners and the same shipped configuration (secret config with the built-in
allow rules off, our empty trivy.yaml and ignore file), so the ratio is mlsec's own overhead.

Target (issue 2): mlsec at most 1.1x trivy plus 0.3 s of start-up.
Run: .venv/bin/python benchmarks/code_scan.py [PATH [RUNS]]  (runs are interleaved: load hits both alike)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlsec_actions.tools import trivy as adapter

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=False, capture_output=True)
    return time.perf_counter() - start


def _interleaved(first: list[str], second: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Alternate the two commands so that load from other processes hits both alike."""
    a, b = [], []
    for _ in range(runs):
        a.append(_once(first))
        b.append(_once(second))
    return a, b


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    target = Path(args[0]) if args else REPO
    runs = int(args[1]) if len(args) > 1 else 7
    with tempfile.TemporaryDirectory() as tmp:
        trivy = [str(BIN / "trivy"), "fs", "--scanners", "secret,misconfig", "--format", "json", "--quiet",
                 "--skip-check-update", "--skip-db-update", "--skip-dirs", ".git", "--skip-dirs", ".venv",
                 "--skip-dirs", "node_modules", "--skip-dirs", "mlsec-results", "--output", f"{tmp}/t.json",
                 "--config", str(adapter.CONFIG), "--ignorefile", str(adapter.IGNOREFILE),
                 "--secret-config", str(adapter.SECRET_CONFIG), str(target.resolve())]
        mlsec = [str(BIN / "mlsec"), "code-scan", str(target), "--vuln-db", "skip", "--sarif", f"{tmp}/m.sarif"]
        _once(trivy)  # warm the page cache for both
        _once(mlsec)
        t, m = _interleaved(trivy, mlsec, runs)
    t_min, t_med, m_min, m_med = min(t), statistics.median(t), min(m), statistics.median(m)
    pair = statistics.median(b / a for a, b in zip(t, m, strict=True))
    print(f"tree: {target}  ({runs} interleaved runs each, best / median)")
    print(f"trivy fs         {t_min:7.3f}s / {t_med:7.3f}s")
    print(f"mlsec code-scan  {m_min:7.3f}s / {m_med:7.3f}s")
    print(f"ratio (best)     {m_min / t_min:7.2f}x   overhead {m_min - t_min:+.3f}s")
    print(f"ratio (median of pairs) {pair:5.2f}x")
    budget = 1.1 * t_min + 0.3
    print(f"target           <= 1.1x + 0.3s = {budget:.3f}s -> {'met' if m_min <= budget else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
