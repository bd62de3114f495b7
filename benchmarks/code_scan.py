"""mlsec code-scan (every tool, concurrently, merged) vs each of its external tools run bare on the same tree, in
one run; prints medians (min-max) and the ratio of the full stage to the slowest single tool.

Bare tools get the configuration the stage gives them (trivy's shipped files, gitleaks' shipped config,
bandit's shipped settings, checkov's frameworks, `--skip-download` and no update check), so the ratio is
what running them together through mlsec costs over the slowest of them alone. Rounds alternate all
contenders (`_harness.run_once`), so drift of a shared machine hits each alike, and each round gives its own
ratio (full / slowest tool of that round). A failed run of any contender voids its round. Bare checkov is
given what the stage gives it: a folder of links to the tree's IaC files (on the whole tree it is slower).

Target (issue 11): at most 1.15x the slowest tool; `mlsec code-scan --help` start-up under 0.3 s.
Run: .venv/bin/python benchmarks/code_scan.py [PATH [ROUNDS]]   (PATH: default this repository)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._harness import Contender, Sample, _collect, machine, run_once  # noqa: E402 - needs the repo first

from mlsec_actions.tools import bandit, checkov, checkov_files, gitleaks, trivy  # noqa: E402

BIN = Path(sys.executable).parent
FULL = "mlsec code-scan"


def contenders(target: Path, tmp: str) -> list[Contender]:
    root = str(target.resolve())
    skips = [a for d in (".git", ".venv", "node_modules", "mlsec-results") for a in ("--skip-dirs", d)]
    files = [str(p) for p in bandit.python_files(target.resolve(), [])]
    found = [
        Contender("trivy fs", [str(BIN / "trivy"), "fs", "--scanners", "secret,misconfig", "--format", "json",
                               "--quiet", "--skip-check-update", "--skip-db-update", *skips, "--output",
                               f"{tmp}/t.json", "--config", str(trivy.CONFIG), "--ignorefile", str(trivy.IGNOREFILE),
                               "--secret-config", str(trivy.SECRET_CONFIG), "--cache-dir", f"{tmp}/trivy-cache",
                               root]),
        Contender("gitleaks dir", [gitleaks._spec().executable, "dir", root, "--config", str(gitleaks.CONFIG),
                                   "--redact", "--no-banner", "--log-level", "error", "--report-format", "json",
                                   "--report-path", f"{tmp}/g.json"], frozenset({0, 1})),
    ]
    if files:  # the stage skips bandit on a tree without Python
        found.append(Contender("bandit", [sys.executable, "-I", "-m", "bandit", "--ini", str(bandit.INI),
                                          "--configfile", str(bandit.CONFIG), "--ignore-nosec", "--format", "json",
                                          "--output", f"{tmp}/b.json", "--quiet", *files], frozenset({0, 1})))
    iac = checkov_files.iac_files(target.resolve(), [])
    if iac:  # the stage starts checkov only then, on links to these files only: so does the bare run
        checkov_files.link_farm(iac, Path(tmp) / "farm")
        found.append(Contender("checkov", [str(BIN / "checkov"), "-d", f"{tmp}/farm", "--config-file",
                                           str(checkov.CONFIG),
                                           "--output", "json", "--compact", "--skip-download", "--framework",
                                           *checkov.FRAMEWORKS], frozenset({0, 1}),
                               env=checkov.FIXED_ENV))
    found.append(Contender(FULL, [str(BIN / "mlsec"), "code-scan", root, "--vuln-db", "skip", "--sarif",
                                  f"{tmp}/m.sarif"]))
    return found


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    target = Path(args[0]) if args else REPO
    rounds = int(args[1]) if len(args) > 1 else 5
    samples: dict[str, list[Sample]] = {}
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        cs = contenders(target, tmp)
        for c in cs:  # warm-up (page cache, trivy's checks bundle, checkov's byte code)
            run_once(c)
        for _ in range(rounds):
            got = {c.name: run_once(c) for c in cs}
            for name, s in got.items():
                samples.setdefault(name, []).append(s)
            if all(s.error is None for s in got.values()):
                ratios.append(got[FULL].wall / max(s.wall for n, s in got.items() if n != FULL))
        help_runs = [run_once(Contender("help", [str(BIN / "mlsec"), "code-scan", "--help"])) for _ in range(5)]
    print(machine())
    print(f"tree: {target}  ({rounds} rounds, all contenders alternating; median (min-max))")
    for name, ss in samples.items():
        print(_collect(name, ss).describe())
    if not ratios:
        print("full stage / slowest single tool: n/a (every round had a failed run)")
        return 1
    ratio = statistics.median(ratios)
    print(f"full stage / slowest single tool, median of {len(ratios)} rounds: {ratio:.2f}x "
          f"({min(ratios):.2f}-{max(ratios):.2f}; target <= 1.15x: {'met' if ratio <= 1.15 else 'MISSED'})")
    # On few cores the tools compete for CPU: their summed CPU time over the cores bounds the full stage from below.
    cpu = {n: statistics.median(x.cpu for x in ss) for n, ss in samples.items()}
    singles = [n for n in cpu if n != FULL]
    floor = sum(cpu[n] for n in singles) / (os.cpu_count() or 1)
    slowest = max(statistics.median(x.wall for x in samples[n]) for n in singles)
    print(f"CPU seconds (median): {', '.join(f'{n} {c:.1f}' for n, c in cpu.items())}; the tools' CPU over "
          f"{os.cpu_count()} cores = {floor:.1f}s, so no schedule beats {max(1.0, floor / slowest):.2f}x here")
    start = statistics.median(s.wall for s in help_runs)
    print(f"start-up (mlsec code-scan --help): {start:.3f}s (target < 0.3 s: {'met' if start < 0.3 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
