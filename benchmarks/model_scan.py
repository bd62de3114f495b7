"""`mlsec model-scan` vs picklescan, modelscan and fickling, whole process, on five corpora.

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
For each tool and corpus it prints recall (malicious files flagged), false positives (benign files flagged)
and the whole process's median wall (min-max), CPU and peak RSS; mlsec and picklescan run alternated A B A B
with a ratio per pair. Fair because every tool is a whole process on the same files, a run with an exit code
the tool does not use for a finished scan, or with an unreadable report, counts as failed, and recall comes
from the same runs that are timed. mlsec counts a file as flagged at high or above (the default gate);
`mlsec (medium+)` shows the medium count too. fickling checks one file per process: its time is the sum.
Run: `.venv/bin/python benchmarks/model_scan.py [--copies N] [--runs N] [--no-fickling] [--only CORPUS]`.
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

from benchmarks import _harness as h  # noqa: E402 - needs the repo on sys.path first
from tests import format_corpus, model_corpus, pickle_corpus  # noqa: E402


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
class Tool:
    """One scanner on one corpus: its whole-process command and how to read what it flagged."""

    contender: h.Contender
    """The command, its accepted exit codes and a check that records what it flagged."""
    flagged: list[frozenset[str]]
    """What each checked run flagged (files, relative POSIX paths), appended by the check."""


def _tool(name: str, argv: list[str], ok: set[int], read: Callable[[subprocess.CompletedProcess[bytes]], set[str]],
          setup: Callable[[], object] | None = None) -> Tool:
    flagged: list[frozenset[str]] = []

    def check(done: subprocess.CompletedProcess[bytes]) -> str | None:
        try:
            flagged.append(frozenset(read(done)))
        except (OSError, ValueError, KeyError) as e:
            return f"unreadable output: {e}"
        return None

    return Tool(h.Contender(name, argv, ok_codes=frozenset(ok), check=check, setup=setup), flagged)


def mlsec(corpus: Corpus, work: Path, floor: str = "high") -> Tool:
    sarif = work / f"mlsec-{floor}.sarif"
    levels = ("high", "critical") if floor == "high" else ("medium", "high", "critical")

    def read(done: subprocess.CompletedProcess[bytes]) -> set[str]:
        results = json.loads(sarif.read_text())["runs"][0]["results"]
        return {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results
                if r.get("properties", {}).get("mlsec-severity") in levels}

    return _tool(f"mlsec ({floor}+)", [str(BIN / "mlsec"), "model-scan", str(corpus.root), "--no-modelscan",
                                       "--sarif", str(sarif), "--source-root", str(corpus.root)], {0}, read,
                 setup=lambda: sarif.unlink(missing_ok=True))


def picklescan(corpus: Corpus, work: Path) -> Tool:
    def read(done: subprocess.CompletedProcess[bytes]) -> set[str]:
        text = done.stdout.decode("utf-8", "replace")
        hits = re.findall(r"^(\S+?)(?::\S+)?: (?:dangerous|suspicious) import", text, re.MULTILINE)
        # Hits inside archives it unpacked elsewhere name those temporary paths: only corpus files count.
        return {Path(x).relative_to(corpus.root).as_posix() for x in hits if Path(x).is_relative_to(corpus.root)}

    # picklescan exits 1 when it found something and 2 when some file could not be scanned (it still reports
    # the rest): all three are finished scans; a crash or a kill is not.
    return _tool("picklescan", [str(BIN / "picklescan"), "-p", str(corpus.root)], {0, 1, 2}, read)


def modelscan(corpus: Corpus, work: Path) -> Tool:
    report = work / "modelscan.json"

    def read(done: subprocess.CompletedProcess[bytes]) -> set[str]:
        issues = json.loads(report.read_text()).get("issues") or []
        out = set()
        for issue in issues:
            path = Path(str(issue["source"]).split(":")[0])
            out.add((path.relative_to(corpus.root) if path.is_absolute() else path).as_posix())
        return out

    # modelscan exits 1 on issues found and 2-3 on files it could not scan; its JSON report says which.
    return _tool("modelscan", [str(BIN / "modelscan"), "scan", "-p", str(corpus.root), "-r", "json", "-o",
                               str(report)], {0, 1, 2, 3}, read, setup=lambda: report.unlink(missing_ok=True))


def fickling(corpus: Corpus) -> tuple[frozenset[str], float, float]:
    """One whole process per file (fickling checks one file): flagged, summed wall seconds, largest peak."""
    flagged, seconds, peak = set(), 0.0, 0.0
    for path in sorted(p for p in corpus.root.rglob("*") if p.is_file()):
        # 1 = unsafe; 0 safe, other codes errors (not a pickle, cannot parse): those flag nothing.
        sample = h.run_once(h.Contender("fickling", [str(BIN / "fickling"), "--check-safety", str(path)],
                                        ok_codes=frozenset({1})))
        seconds, peak = seconds + sample.wall, max(peak, sample.peak_rss_mb)
        if sample.error is None:
            flagged.add(path.relative_to(corpus.root).as_posix())
    return frozenset(flagged), seconds, peak


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


def sparse_safetensors(work: Path, runs: int) -> None:
    """A sparse 10 GB safetensors file: only its header is read, so it takes milliseconds and no memory."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [2684354560], "data_offsets": [0, 10737418240]}}).encode()
    folder = work / "big"
    folder.mkdir()
    with (folder / "model.safetensors").open("wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + 10737418240)
    tool = mlsec(Corpus("big", folder, frozenset(), frozenset({"model.safetensors"})), work)
    stats = h.measure(tool.contender, runs=runs)
    assert not any(tool.flagged), tool.flagged
    print(f"sparse 10 GB safetensors: {stats.describe()}")


def _row(corpus: Corpus, name: str, flagged: frozenset[str], timing: str) -> str:
    missed = sorted(corpus.bad - flagged)
    fps = sorted(corpus.good & flagged)
    return (f"{corpus.name:19} {name:16} {len(corpus.bad & flagged):>4}/{len(corpus.bad):<4} "
            f"{len(fps):>4}/{len(corpus.good):<4}  {timing}  missed: "
            f"{', '.join(Path(m).name for m in missed[:6]) or '-'}{' ...' if len(missed) > 6 else ''}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--copies", type=int, default=2, help="copies of the model corpus (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="counted runs per tool (fickling: 1 per file)")
    parser.add_argument("--no-fickling", action="store_true", help="skip fickling (one process per file: slow)")
    parser.add_argument("--only", action="append", help="corpus to run (repeatable; default: all)")
    args = parser.parse_args(argv)
    h.start()
    print(h.machine())
    with tempfile.TemporaryDirectory(prefix="mlsec-bench-") as tmp:
        work = Path(tmp)
        scratch = work / "scratch"
        scratch.mkdir()
        print(f"{'corpus':19} {'tool':16} {'recall':>9} {'false pos':>9}  whole process")
        for corpus in corpora(work, args.copies):
            if args.only and corpus.name not in args.only:
                continue
            size = sum(p.stat().st_size for p in corpus.root.rglob("*") if p.is_file()) / 1e6
            print(f"# {corpus.name}: {len(corpus.bad)} malicious, {len(corpus.good)} benign, {size:.1f} MB")
            ours, medium = mlsec(corpus, scratch), mlsec(corpus, scratch, "medium")
            peer, other = picklescan(corpus, scratch), modelscan(corpus, scratch)
            pair = h.compare(ours.contender, peer.contender, runs=args.runs)
            for tool, stats in ((ours, pair.a), (peer, pair.b), (other, h.measure(other.contender, runs=args.runs))):
                print(_row(corpus, tool.contender.name, tool.flagged[-1] if tool.flagged else frozenset(),
                           stats.describe().split(": ", 1)[1]), flush=True)
            h.measure(medium.contender, runs=1, warmup=0)
            print(_row(corpus, "mlsec (medium+)", medium.flagged[-1] if medium.flagged else frozenset(), "-"))
            print(f"{'':19} ratio mlsec/picklescan: "
                  + (f"{pair.ratio():.2f}x median of {len(pair.ratios)} alternated pairs "
                     f"({min(pair.ratios):.2f}-{max(pair.ratios):.2f})" if pair.ratios else "n/a (a run failed)"))
            if not args.no_fickling:
                flagged, seconds, peak = fickling(corpus)
                print(_row(corpus, "fickling", flagged,
                           f"{seconds:.2f}s summed over one process per file, peak {peak:.0f} MiB"))
        sparse_safetensors(work, args.runs)
        assert not (work / "CANARY").exists(), "a payload ran"
        shutil.rmtree(scratch)
    print("canary: not created (nothing was loaded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
