"""Benchmark: `mlsec model-scan` vs picklescan, modelscan and fickling, whole process, on four corpora.

Corpora (written to a temporary folder; nothing is ever loaded):
- model-corpus: tests/model_corpus.py (COPIES copies), the project's original mixed corpus;
- pickle-adversarial: tests/pickle_corpus.py `adversarial_cases()` (bypass classes 1-4 of issue 10, real benign
  model pickles as twins);
- format-adversarial: tests/format_corpus.py (classes 4-9 and 11: zip differentials, containers, detection, numpy,
  Keras, protobuf, templates, Hugging Face; benign twins);
- peers: tests/corpus/peers (picklescan's, fickling's and modelscan's own test samples, upstream labels);
- mixed: about 200 files / 40 MB of torch checkpoints, scikit-learn/joblib pickles, .npy, safetensors and
  malicious files, for speed;
plus the time and memory to scan a sparse 10 GB safetensors file (header only).
For each tool and corpus it prints recall (malicious files flagged), false positives (benign files flagged),
wall seconds (median of --repeat runs) and the scanner's peak RSS. mlsec counts a file as flagged at high
or above (the default gate); `mlsec (medium+)` shows the medium count too. Peak RSS is measured by a small
Python parent with `getrusage(RUSAGE_CHILDREN)`, so a few MiB of it is that parent's floor.
Run: `.venv/bin/python benchmarks/model_scan.py [--copies N] [--repeat N] [--no-fickling] [--only CORPUS]`;
`--speed PAIRS` times only mlsec against picklescan on the mixed folder, alternating (the issue's speed target).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent

from tests import format_corpus, model_corpus, pickle_corpus  # noqa: E402 - needs the repo on sys.path first

_MEASURE = ("import resource, subprocess, sys, time\n"
            "t = time.perf_counter(); p = subprocess.run(sys.argv[2:], capture_output=True, text=True)\n"
            "open(sys.argv[1], 'w').write(p.stdout)\n"
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)")


@dataclass(frozen=True)
class Corpus:
    """One labelled folder."""

    name: str
    """Corpus name in the table."""
    root: Path
    """Where its files are."""
    bad: frozenset[str]
    """Malicious files (POSIX paths relative to root)."""
    good: frozenset[str]
    """Benign files."""


@dataclass(frozen=True)
class Run:
    """One tool on one corpus."""

    flagged: frozenset[str]
    """Files the tool flagged."""
    seconds: float
    """Whole-process wall time (summed over processes for per-file tools)."""
    peak_mib: float
    """Largest peak RSS of a scanner process."""


def _measure(args: list[str], out: Path) -> tuple[float, float, int]:
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(out), *args], capture_output=True, text=True,
                          timeout=1800, check=True)
    seconds, rss_kb, code = proc.stdout.split()
    return float(seconds), int(rss_kb) / 1024, int(code)


def mlsec(corpus: Corpus, work: Path, floor: str = "high") -> Run:
    sarif = work / "mlsec.sarif"
    seconds, peak, _ = _measure([str(BIN / "mlsec"), "model-scan", str(corpus.root), "--no-modelscan", "--sarif",
                                 str(sarif), "--source-root", str(corpus.root)], work / "out.txt")
    levels = ("high", "critical") if floor == "high" else ("medium", "high", "critical")
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    flagged = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results
               if r.get("properties", {}).get("mlsec-severity") in levels}
    return Run(frozenset(flagged), seconds, peak)


def picklescan(corpus: Corpus, work: Path) -> Run:
    out = work / "picklescan.txt"
    seconds, peak, _ = _measure([str(BIN / "picklescan"), "-p", str(corpus.root)], out)
    hits = re.findall(r"^(\S+?)(?::\S+)?: (?:dangerous|suspicious) import", out.read_text(), re.MULTILINE)
    # A hit inside a file picklescan unpacked to a temporary folder (7z) names that folder: it is not counted.
    return Run(frozenset(Path(h).relative_to(corpus.root).as_posix() for h in hits
                         if Path(h).is_relative_to(corpus.root)), seconds, peak)


def modelscan(corpus: Corpus, work: Path) -> Run:
    report = work / "modelscan.json"
    report.unlink(missing_ok=True)
    seconds, peak, _ = _measure([str(BIN / "modelscan"), "scan", "-p", str(corpus.root), "-r", "json", "-o",
                                 str(report)], work / "out.txt")
    issues = json.loads(report.read_text()).get("issues") or [] if report.exists() else []
    flagged = set()
    for issue in issues:
        source = str(issue["source"]).split(":")[0]
        path = Path(source)
        flagged.add((path.relative_to(corpus.root) if path.is_absolute() else path).as_posix())
    return Run(frozenset(flagged), seconds, peak)


def fickling(corpus: Corpus, work: Path) -> Run:
    flagged, seconds, peak = set(), 0.0, 0.0
    for path in sorted(p for p in corpus.root.rglob("*") if p.is_file()):
        took, rss, code = _measure([str(BIN / "fickling"), "--check-safety", str(path), "--json-output",
                                    str(work / "f.json")], work / "out.txt")
        seconds, peak = seconds + took, max(peak, rss)
        if code == 1:  # 1 = unsafe; other codes are errors (not a pickle, cannot parse)
            flagged.add(path.relative_to(corpus.root).as_posix())
    return Run(frozenset(flagged), seconds, peak)


def _write(root: Path, cases: list[tuple[str, bytes, bool]]) -> Corpus:
    for name, data, _ in cases:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return Corpus(root.name, root, frozenset(n for n, _, bad in cases if bad), frozenset(n for n, _, bad in cases
                                                                                          if not bad))


def corpora(work: Path, copies: int) -> list[Corpus]:
    canary = work / "CANARY"
    base = [(f"copy{i}/{c.name}", c.data, c.malicious) for i in range(copies) for c in model_corpus.cases(canary)]
    peers_dir = REPO / "tests/corpus/peers"
    rows = json.loads((peers_dir / "manifest.json").read_text())
    peers = [(r["file"], (peers_dir / r["file"]).read_bytes(), r["label"] == "malicious") for r in rows
             if r["label"] == "benign" or r.get("executes", True)]
    formats = [(f.name, f.data, bool(f.expect)) for f in format_corpus.samples()]
    return [_write(work / "model-corpus", base), _write(work / "pickle-adversarial", pickle_corpus.adversarial_cases()),
            _write(work / "format-adversarial", formats), _write(work / "peers", peers),
            _write(work / "mixed", mixed_cases(canary))]


def mixed_cases(canary: Path) -> list[tuple[str, bytes, bool]]:
    """About 200 files and 40 MB: what a model folder holds, with a fifth of the files malicious."""
    benign = sorted((REPO / "tests/corpus/pickle/benign").iterdir())
    out: list[tuple[str, bytes, bool]] = []
    for i in range(40):
        out.append((f"torch/model{i}.pt", pickle_corpus.torch_checkpoint(50 + 10 * i, 2400, 2 if i % 2 else 4), False))
    for i in range(60):
        out.append((f"sklearn/{i}_{benign[i % len(benign)].name}", benign[i % len(benign)].read_bytes(), False))
    for i in range(40):
        out.append((f"npy/a{i}.npy", model_corpus.npy_bytes(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (50000,), }", bytes(200_000)), False))
    header = json.dumps({"w": {"dtype": "F32", "shape": [125000], "data_offsets": [0, 500_000]}}).encode()
    for i in range(20):
        out.append((f"st/m{i}.safetensors", struct.pack("<Q", len(header)) + header + bytes(500_000), False))
    bad = [c for c in model_corpus.cases(canary) if c.malicious]
    for i in range(40):
        case = bad[i % len(bad)]
        out.append((f"bad/{i}_{Path(case.name).name}", case.data, True))
    return out


def sparse_safetensors(work: Path) -> None:
    """A sparse 10 GB safetensors file: only its header is read, so it takes milliseconds and no memory."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [2684354560], "data_offsets": [0, 10737418240]}}).encode()
    folder = work / "big"
    folder.mkdir()
    with (folder / "model.safetensors").open("wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + 10737418240)
    run = mlsec(Corpus("big", folder, frozenset(), frozenset({"model.safetensors"})), work)
    assert not run.flagged, run.flagged
    print(f"sparse 10 GB safetensors: whole mlsec process {run.seconds:.2f} s, peak {run.peak_mib:.1f} MiB")


def speed(pairs: int) -> int:
    """Whole-process wall time of mlsec and picklescan on the mixed folder, A B A B (benchmarks/_harness.py).

    The timing runs in a fresh small process: a child forked from this one (which built the corpus in memory)
    would carry this process's pages in its peak RSS.
    """
    with tempfile.TemporaryDirectory(prefix="mlsec-speed-") as tmp:
        work = Path(tmp)
        root = _write(work / "mixed", mixed_cases(work / "CANARY")).root
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
        print(f"mixed folder: {sum(1 for p in root.rglob('*') if p.is_file())} files, {size:.1f} MB")
        return subprocess.run([sys.executable, "-c", _SPEED, str(REPO), str(BIN), str(root), str(pairs)],
                              check=False).returncode


_SPEED = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from benchmarks import _harness as h
bin_, root, pairs = Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ours = h.Contender("mlsec model-scan", [str(bin_ / "mlsec"), "model-scan", root, "--no-modelscan", "--sarif",
                   str(Path(root).parent / "out.sarif"), "--source-root", root])
# picklescan exits 1 when it finds something and 2 when a file fails to parse: both are finished scans.
theirs = h.Contender("picklescan", [str(bin_ / "picklescan"), "-p", root], ok_codes=frozenset({0, 1, 2}))
print(h.machine())
print(h.compare(ours, theirs, runs=pairs).describe())
"""


TOOLS: tuple[tuple[str, Callable[[Corpus, Path], Run]], ...] = (
    ("mlsec (high+)", mlsec),
    ("mlsec (medium+)", lambda c, w: mlsec(c, w, "medium")),
    ("picklescan", picklescan),
    ("modelscan", modelscan),
    ("fickling", fickling),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2, help="copies of the model corpus (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool, median reported (fickling: 1)")
    parser.add_argument("--no-fickling", action="store_true", help="skip fickling (one process per file: slow)")
    parser.add_argument("--only", action="append", help="corpus to run (repeatable; default: all)")
    parser.add_argument("--speed", type=int, default=0, metavar="PAIRS",
                        help="only time mlsec against picklescan on the mixed folder, alternating, PAIRS pairs")
    args = parser.parse_args(argv)
    if args.speed:
        return speed(args.speed)
    with tempfile.TemporaryDirectory(prefix="mlsec-bench-") as tmp:
        work = Path(tmp)
        scratch = work / "scratch"
        scratch.mkdir()
        print(f"{'corpus':19} {'tool':16} {'recall':>9} {'false pos':>9} {'seconds':>8} {'peak MiB':>8}  missed")
        for corpus in corpora(work, args.copies):
            if args.only and corpus.name not in args.only:
                continue
            size = sum(p.stat().st_size for p in corpus.root.rglob("*") if p.is_file()) / 1e6
            print(f"# {corpus.name}: {len(corpus.bad)} malicious, {len(corpus.good)} benign, {size:.1f} MB")
            for name, tool in TOOLS:
                if name == "fickling" and args.no_fickling:
                    continue
                runs = [tool(corpus, scratch) for _ in range(1 if name == "fickling" else args.repeat)]
                run = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]  # the median run: machines are noisy
                missed = sorted(corpus.bad - run.flagged)
                fps = sorted(corpus.good & run.flagged)
                print(f"{corpus.name:19} {name:16} {len(corpus.bad & run.flagged):>4}/{len(corpus.bad):<4} "
                      f"{len(fps):>4}/{len(corpus.good):<4} {run.seconds:>8.2f} {run.peak_mib:>8.1f}  "
                      f"{', '.join(Path(m).name for m in missed[:6]) or '-'}{' ...' if len(missed) > 6 else ''}")
        sparse_safetensors(work)
        assert not (work / "CANARY").exists(), "a payload ran"
        shutil.rmtree(scratch)
    print("canary: not created (nothing was loaded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
