"""mlsec code-scan (every tool, concurrently, merged) against each of its external tools run bare on the
same tree, and its default invocation against the bare `trivy fs` it wraps.

Fair because each pair is two whole processes alternated A B A B with a ratio per pair, a run with an
unexpected exit code counts as failed, and the bare tools get the configuration the stage gives them
(trivy's shipped files, gitleaks' shipped config, bandit's shipped settings), so a ratio is what running
them through mlsec costs over that tool alone. `--vuln-db skip` in the first pairs matches trivy's
`--skip-db-update`; the default-options pair is what a user runs.

Targets: issue 11, at most 1.15x the slowest tool; issue 13, the default invocation within 1.05x + 0.1 s of
the bare `trivy fs`. Run: .venv/bin/python benchmarks/code_scan.py [PATH] [--runs 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

from mlsec_actions.tools import bandit, gitleaks, trivy

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("path", nargs="?", type=Path, default=REPO, help="tree to scan (default: this repository)")
    ap.add_argument("--runs", type=int, default=5, help="counted pairs per comparison (default 5)")
    args = ap.parse_args(argv)
    print(h.machine())
    with tempfile.TemporaryDirectory() as tmp:
        c = {name: h.Contender(name, cmd, ok_codes=frozenset(ok))
             for name, (cmd, ok) in _commands(args.path, tmp).items()}
        ours = c["mlsec code-scan"]
        default = h.Contender("mlsec code-scan (default options)",
                              [str(BIN / "mlsec"), "code-scan", str(args.path.resolve()), "--sarif", f"{tmp}/d.sarif"])
        print(f"tree: {args.path}")
        for peer in ("trivy fs", "gitleaks dir", "bandit"):
            print(h.compare(ours, c[peer], runs=args.runs).describe(), flush=True)
        print(h.compare(default, c["trivy fs"], runs=args.runs).describe(), flush=True)
        start = h.measure(h.Contender("mlsec code-scan --help", [str(BIN / "mlsec"), "code-scan", "--help"]),
                          runs=args.runs)
        print(start.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
