"""mlsec code-scan (every tool, concurrently, merged) vs each of its external tools run bare on the same
tree, in one run; prints medians (min-max) and the ratio of the full stage to the slowest single tool.

Bare tools get the configuration the stage gives them (trivy's shipped files, gitleaks' shipped config,
bandit's shipped settings), so the ratio is what running them together through mlsec costs over the
slowest of them alone. Rounds alternate all contenders, so drift of a shared machine hits each alike, and
each round gives its own ratio (full / slowest tool of that round).

Target (issue 11): at most 1.15x the slowest tool; `mlsec code-scan --help` start-up under 0.3 s.
Run: .venv/bin/python benchmarks/code_scan.py [PATH [ROUNDS]]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlsec_actions.tools import bandit, gitleaks, trivy

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _once(cmd: list[str], ok: set[int]) -> float | None:
    start = time.perf_counter()
    code = subprocess.run(cmd, check=False, capture_output=True).returncode
    took = time.perf_counter() - start
    return took if code in ok else None


def _commands(target: Path, tmp: str) -> dict[str, tuple[list[str], set[int]]]:
    root = str(target.resolve())
    skips = [a for d in (".git", ".venv", "node_modules", "mlsec-results") for a in ("--skip-dirs", d)]
    files = [str(p) for p in bandit.python_files(target.resolve(), [])]
    return {
        "trivy fs": ([str(BIN / "trivy"), "fs", "--scanners", "secret,misconfig", "--format", "json", "--quiet",
                      "--skip-check-update", "--skip-db-update", *skips, "--output", f"{tmp}/t.json",
                      "--config", str(trivy.CONFIG), "--ignorefile", str(trivy.IGNOREFILE),
                      "--secret-config", str(trivy.SECRET_CONFIG), root], {0}),
        "gitleaks dir": ([gitleaks._spec().executable, "dir", root, "--config", str(gitleaks.CONFIG), "--redact",
                          "--no-banner", "--log-level", "error", "--report-format", "json",
                          "--report-path", f"{tmp}/g.json"], {0, 1}),
        "bandit": ([sys.executable, "-I", "-m", "bandit", "--ini", str(bandit.INI), "--configfile",
                    str(bandit.CONFIG), "--ignore-nosec", "--format", "json", "--output", f"{tmp}/b.json", "--quiet",
                    *files], {0, 1}),
        "mlsec code-scan": ([str(BIN / "mlsec"), "code-scan", root, "--vuln-db", "skip", "--sarif", f"{tmp}/m.sarif"],
                            {0}),
    }


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    target = Path(args[0]) if args else REPO
    rounds = int(args[1]) if len(args) > 1 else 5
    times: dict[str, list[float]] = {}
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        commands = _commands(target, tmp)
        for cmd, ok in commands.values():  # warm-up (page cache, trivy's checks bundle)
            _once(cmd, ok)
        for _ in range(rounds):
            got = {name: _once(cmd, ok) for name, (cmd, ok) in commands.items()}
            failed = [n for n, t in got.items() if t is None]
            if failed:
                print(f"FAILED run of {', '.join(failed)}: not timed", file=sys.stderr)
                return 1
            for name, t in got.items():
                times.setdefault(name, []).append(t or 0.0)
            singles = [t or 0.0 for n, t in got.items() if n != "mlsec code-scan"]
            ratios.append((got["mlsec code-scan"] or 0.0) / max(singles))
        help_times = [_once([str(BIN / "mlsec"), "code-scan", "--help"], {0}) or 0.0 for _ in range(5)]
    print(f"tree: {target}  ({rounds} rounds, all contenders alternating; median (min-max)); cores: {os.cpu_count()}")
    for name, ts in times.items():
        print(f"{name:16} {statistics.median(ts):7.3f}s ({min(ts):.3f}-{max(ts):.3f})")
    ratio = statistics.median(ratios)
    print(f"full stage / slowest single tool, median of rounds: {ratio:.2f}x (target <= 1.15x: "
          f"{'met' if ratio <= 1.15 else 'MISSED'})")
    start = statistics.median(help_times)
    print(f"start-up (mlsec code-scan --help): {start:.3f}s (target < 0.3 s: {'met' if start < 0.3 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
