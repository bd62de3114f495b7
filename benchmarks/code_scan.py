"""mlsec code-scan (every tool, concurrently, merged) against each of its external tools run bare on the
same tree, all in one round; and its default invocation against the bare `trivy fs` it wraps.

Fair because every contender is a whole process, the rounds alternate all contenders (so drift of a shared
machine hits each alike) and each round gives its own ratio (full stage / slowest tool of that round), a
run with an unexpected exit code fails and voids its round, and the bare tools get the configuration the
stage gives them (trivy's shipped files, gitleaks' shipped config, bandit's shipped settings, semgrep's shipped
rules and flags, checkov's frameworks with `--skip-download` and no update check). Bare checkov is given
what the stage gives it: a folder of links to the tree's IaC files, and only when the tree has any (the
stage skips it otherwise).
`--vuln-db skip` matches trivy's `--skip-db-update`; the default-options pair is what a user runs.

Targets: issue 11, at most 1.15x the slowest tool and `mlsec code-scan --help` under 0.3 s; issue 13, the
default invocation within 1.05x + 0.1 s of the bare `trivy fs`. The trivy processes the default invocation
starts are counted once, untimed, through a logging stand-in (`MLSEC_TRIVY_BIN`).
`--default-only` times only the default invocation against bare trivy; `--src DIR` adds the default invocation
of another checkout's `src` (e.g. `git archive <commit> src | tar -x -C DIR/..`), alternated with this one, and
that checkout's full stage to the rounds.
Run: .venv/bin/python benchmarks/code_scan.py [PATH] [--runs 5] [--semgrep] [--default-only] [--src DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

from mlsec_actions.tools import bandit, checkov, checkov_files, gitleaks, semgrep, trivy

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FULL = "mlsec code-scan"


def contenders(target: Path, tmp: str, with_semgrep: bool = False) -> list[h.Contender]:
    root = str(target.resolve())
    skips = [a for d in (".git", ".venv", "node_modules", "mlsec-results") for a in ("--skip-dirs", d)]
    files = [str(p) for p in bandit.python_files(target.resolve(), [])]
    found = [
        h.Contender("trivy fs", [str(BIN / "trivy"), "fs", "--scanners", "secret,misconfig,license", "--list-all-pkgs",
                                 "--format", "json",
                                 "--quiet", "--skip-check-update", "--skip-db-update", *skips, "--output",
                                 f"{tmp}/t.json", "--config", str(trivy.CONFIG), "--ignorefile",
                                 str(trivy.IGNOREFILE), "--secret-config", str(trivy.SECRET_CONFIG), root]),
        h.Contender("gitleaks dir", [gitleaks._spec().executable, "dir", root, "--config", str(gitleaks.CONFIG),
                                     "--redact", "--no-banner", "--log-level", "error", "--report-format", "json",
                                     "--report-path", f"{tmp}/g.json"], frozenset({0, 1})),
    ]
    if files:  # the stage skips bandit on a tree without Python
        found.append(h.Contender("bandit", [sys.executable, "-I", "-m", "bandit", "--ini", str(bandit.INI),
                                            "--configfile", str(bandit.CONFIG), "--ignore-nosec", "--format",
                                            "json", "--output", f"{tmp}/b.json", "--quiet", *files],
                                 frozenset({0, 1})))
    small = [f for f in files if Path(f).stat().st_size <= semgrep.MAX_FILE_BYTES]
    # semgrep only when the stage runs it too (`--semgrep`: it is opt-in), with the stage's flags, rules and
    # environment (HOME an empty folder of ours); a tool the stage does not run is no bound for it.
    if small and with_semgrep:
        (Path(tmp) / "home").mkdir()
        found.append(h.Contender("semgrep", [str(BIN / "semgrep"), "scan", "--config", str(semgrep.RULES),
                                             *semgrep.ALWAYS, "--disable-nosem", "--max-target-bytes",
                                             str(semgrep.MAX_FILE_BYTES), "--json", "--quiet", "--output",
                                             f"{tmp}/s.json", *small],
                                 env={**semgrep.SETTINGS, "HOME": f"{tmp}/home"}))
    iac = checkov_files.iac_files(target.resolve(), [])
    if iac:  # the stage starts checkov only then, on links to these files only: so does the bare run
        checkov_files.link_farm(iac, Path(tmp) / "farm")
        found.append(h.Contender("checkov", [str(BIN / "checkov"), "-d", f"{tmp}/farm", "--config-file",
                                             str(checkov.CONFIG), "--output", "json", "--compact",
                                             "--skip-download", "--framework", *checkov.FRAMEWORKS],
                                 frozenset({0, 1}), env=checkov.FIXED_ENV))
    found.append(h.Contender(FULL, [str(BIN / "mlsec"), "code-scan", root, "--vuln-db", "skip", "--sarif",
                                    f"{tmp}/m.sarif", *(["--semgrep"] if with_semgrep else [])]))
    return found


def _rounds(cs: list[h.Contender], runs: int) -> None:
    for c in cs:  # warm-up (page cache, trivy's checks bundle, checkov's byte code)
        h.run_once(c)
    samples: dict[str, list[h.Sample]] = {c.name: [] for c in cs}
    ratios: list[float] = []
    for _ in range(runs):
        got = {c.name: h.run_once(c) for c in cs}
        for name, s in got.items():
            samples[name].append(s)
        if all(s.error is None for s in got.values()):
            ratios.append(got[FULL].wall / max(s.wall for n, s in got.items() if not n.startswith(FULL)))
    for name, ss in samples.items():
        print(h._collect(name, ss).describe())
    if not ratios:
        print("full stage / slowest single tool: n/a (every round had a failed run)")
        return
    ratio = statistics.median(ratios)
    print(f"full stage / slowest single tool, median of {len(ratios)} rounds: {ratio:.2f}x "
          f"({min(ratios):.2f}-{max(ratios):.2f}; target <= 1.15x: {'met' if ratio <= 1.15 else 'MISSED'})")
    # On few cores the tools compete for CPU: their summed CPU time over the cores bounds the stage from below.
    cpu = {n: statistics.median(x.cpu for x in ss) for n, ss in samples.items() if ss}
    singles = [n for n in cpu if not n.startswith(FULL)]
    floor = sum(cpu[n] for n in singles) / (os.cpu_count() or 1)
    slowest = max(statistics.median(x.wall for x in samples[n]) for n in singles)
    print(f"CPU seconds (median): {', '.join(f'{n} {c:.1f}' for n, c in cpu.items())}; the tools' CPU over "
          f"{os.cpu_count()} cores = {floor:.1f}s, so no schedule beats {max(1.0, floor / slowest):.2f}x here")


def _default(name: str, target: Path, sarif: str, src: Path | None) -> h.Contender:
    """`mlsec code-scan PATH` with nothing but `--sarif`: what a user runs (with `src`, another checkout's code)."""
    env = {"PYTHONPATH": str(src)} if src is not None else None
    return h.Contender(name, [str(BIN / "mlsec"), "code-scan", str(target.resolve()), "--sarif",
                              sarif], env=env)


def trivy_processes(c: h.Contender, tmp: str) -> int:
    """How many trivy processes one run of `c` starts (untimed: a stand-in logs each, then runs trivy)."""
    log = Path(tmp) / "trivy-calls.log"
    log.unlink(missing_ok=True)
    wrapper = Path(tmp) / "trivy-logged"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{BIN / "trivy"}" "$@"\n')
    wrapper.chmod(0o755)
    sample = h.run_once(h.Contender(c.name, c.argv, c.ok_codes, env={**(c.env or {}), "MLSEC_TRIVY_BIN": str(wrapper)}))
    if sample.error is not None:
        raise SystemExit(f"{c.name} failed while counting trivy processes: {sample.error}")
    return len(log.read_text().splitlines()) if log.exists() else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("path", nargs="?", type=Path, default=REPO, help="tree to scan (default: this repository)")
    ap.add_argument("--runs", type=int, default=5, help="counted rounds / pairs (default 5)")
    ap.add_argument("--default-only", action="store_true",
                    help="only the default invocation against bare trivy fs (and --src), not every tool")
    ap.add_argument("--semgrep", action="store_true",
                    help="the stage with --semgrep (opt-in), and bare semgrep among the tools")
    ap.add_argument("--src", type=Path, default=None, help="also pair the default invocation with this src folder's")
    args = ap.parse_args(argv)
    h.start()
    print(h.machine())
    print(f"tree: {args.path}  ({args.runs} rounds, all contenders alternating; median (min-max)); "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        cs = contenders(args.path, tmp, args.semgrep)
        if not args.default_only:
            # With --src the other checkout's full stage runs in the same rounds (not a tool: no bound).
            full = cs[-1]
            other = [] if args.src is None else [
                h.Contender(f"{FULL} ({args.src})", [f"{tmp}/o.sarif" if a == f"{tmp}/m.sarif" else a
                                                     for a in full.argv], env={"PYTHONPATH": str(args.src)})]
            _rounds([*cs, *other], args.runs)
        default = _default("mlsec code-scan (default options)", args.path, f"{tmp}/d.sarif", None)
        print(f"trivy processes per default invocation: {trivy_processes(default, tmp)}")
        if args.src is not None:
            before = _default(f"mlsec code-scan (default options, {args.src})", args.path, f"{tmp}/b.sarif", args.src)
            print(f"trivy processes per default invocation of {args.src}: {trivy_processes(before, tmp)}")
        print(h.compare(default, cs[0], runs=args.runs).describe(), flush=True)
        if args.src is not None:
            print(h.compare(default, before, runs=args.runs).describe(), flush=True)
            print(h.compare(before, cs[0], runs=args.runs).describe(), flush=True)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        if args.default_only:
            return 0
        start = h.measure(h.Contender("mlsec code-scan --help", [str(BIN / "mlsec"), "code-scan", "--help"]),
                          runs=args.runs)
        print(start.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
