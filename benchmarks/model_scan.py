"""Benchmark: `mlsec model-scan` vs modelscan, picklescan and fickling on the same in-code corpus.

Writes the corpus (tests/model_corpus.py) to a temporary folder, runs every tool once on it, and prints
recall (malicious files flagged), false positives (benign files flagged) and wall time per tool, plus
the time to scan a sparse 10 GB safetensors file (header only).
Run: `.venv/bin/python benchmarks/model_scan.py [COPIES]` (corpus copies, default 5).
Nothing is ever loaded: the canary file each payload would create is checked at the end.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent

from tests import model_corpus  # noqa: E402 - needs the repo on sys.path first

import mlsec_actions.stages.model_scan  # noqa: E402, F401 - imported up front: the engine row times scanning only


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)


def mlsec(root: Path, work: Path, extra: tuple[str, ...] = ()) -> set[str]:
    sarif = work / "mlsec.sarif"
    _run([str(BIN / "mlsec"), "model-scan", str(root), "--sarif", str(sarif), "--source-root", str(root), *extra],
         work)
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    return {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}


def modelscan(root: Path, work: Path) -> set[str]:
    out = work / "modelscan.json"
    _run([str(BIN / "modelscan"), "scan", "-p", str(root), "-r", "json", "-o", str(out)], work)
    report = json.loads(out.read_text())
    return {str(i["source"]).split(":")[0] for i in report.get("issues") or []}


def picklescan(root: Path, work: Path) -> set[str]:
    proc = _run([str(BIN / "picklescan"), "-p", str(root)], work)
    hits = re.findall(r"^(\S+?)(?::\S+)?: (?:dangerous|suspicious) import", proc.stdout, re.MULTILINE)
    return {str(Path(h).relative_to(root)) for h in hits}


def fickling(root: Path, work: Path) -> set[str]:
    flagged = set()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        proc = _run([str(BIN / "fickling"), "--check-safety", str(path), "--json-output", str(work / "f.json")], work)
        if proc.returncode == 1:  # 1 = unsafe; other codes are errors (not a pickle, cannot parse)
            flagged.add(path.relative_to(root).as_posix())
    return flagged


def engine(root: Path, work: Path) -> set[str]:
    """The in-house scan in this process: the scanning work without the CLI's interpreter start-up."""
    import argparse

    from mlsec_actions.stages import model_scan
    from mlsec_actions.stages.base import ScanContext

    args = argparse.Namespace(no_modelscan=True, timeout=600, paths=[str(root)], max_member_mb=512,
                              max_entries=10_000, max_depth=4, canary=[], garak_report=[])
    result = model_scan.scan(ScanContext(root=root, target=root, args=args))
    return {f.location.path for f in result.findings}


TOOLS: tuple[tuple[str, Callable[[Path, Path], set[str]]], ...] = (
    ("mlsec model-scan", lambda r, w: mlsec(r, w)),
    ("mlsec (in-house only)", lambda r, w: mlsec(r, w, ("--no-modelscan",))),
    ("mlsec engine in-process", engine),
    ("modelscan 0.8.8", modelscan),
    ("picklescan", picklescan),
    ("fickling", fickling),
)


def sparse_safetensors(work: Path) -> float:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2684354560], "data_offsets": [0, 10737418240]}}).encode()
    path = work / "big" / "model.safetensors"
    path.parent.mkdir()
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + 10737418240)
    from mlsec_actions.analyzers.base import Blob
    from mlsec_actions.analyzers.dispatch import Dispatcher

    started = time.perf_counter()
    findings = Dispatcher().scan_file(Blob("model.safetensors", None, path.stat().st_size, lambda: path.open("rb")))
    seconds = time.perf_counter() - started
    assert findings == [], findings
    cli_started = time.perf_counter()
    _run([str(BIN / "mlsec"), "model-scan", str(path), "--no-modelscan", "--sarif", str(work / "big.sarif")], work)
    print(f"sparse 10 GB safetensors: analyzer {seconds * 1000:.1f} ms; whole CLI incl. start-up "
          f"{time.perf_counter() - cli_started:.2f} s")
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    copies = int(args[0]) if args else 5
    with tempfile.TemporaryDirectory(prefix="mlsec-bench-") as tmp:
        work = Path(tmp)
        root = work / "corpus"
        canary = work / "CANARY"
        cases = [model_corpus.Case(f"copy{i}/{c.name}", c.data, c.malicious, c.expect)
                 for i in range(copies) for c in model_corpus.cases(canary)]
        model_corpus.write(root, cases)
        bad = {c.name for c in cases if c.malicious}
        good = {c.name for c in cases if not c.malicious}
        print(f"corpus: {len(bad)} malicious, {len(good)} benign files ({copies} copies of the test corpus)\n")
        print(f"{'tool':24} {'recall':>10} {'false pos':>10} {'seconds':>9}  missed")
        times = {}
        for name, tool in TOOLS:
            started = time.perf_counter()
            flagged = tool(root, work)
            times[name] = time.perf_counter() - started
            missed = sorted({Path(m).name for m in bad - flagged})
            print(f"{name:24} {len(bad & flagged):>4}/{len(bad):<5} {len(good & flagged):>4}/{len(good):<5} "
                  f"{times[name]:>9.2f}  {', '.join(missed) or '-'}")
            fps = sorted(good & flagged)
            if fps:
                print(f"{'':24} false positives: {', '.join(sorted({Path(f).name for f in fps}))}")
        print(f"\ntime vs picklescan: mlsec CLI (in-house only) "
              f"{times['mlsec (in-house only)'] / times['picklescan']:.2f}x, in-process engine "
              f"{times['mlsec engine in-process'] / times['picklescan']:.3f}x (the CLI's cost is interpreter "
              "start-up and imports)")
        sparse_safetensors(work)
        assert not canary.exists(), "a payload ran"
        print("canary: not created (nothing was loaded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
