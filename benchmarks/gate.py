"""How long `mlsec gate` takes over 10k, 100k and 1M findings in 20 SARIF files, in-process and via the CLI.

Run: .venv/bin/python benchmarks/gate.py [--sizes 10000,100000,1000000] [--files 20] [--repeat 3]

The SARIF is shaped like our writer's (rules with security-severity, results with mlsec-severity,
fingerprints, locations, invocations). Prints seconds, microseconds per finding (flat = linear growth),
and, for reference on the 100k set, the stdlib json.loads and `sarif_read.read_sarif` on the same files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlsec_actions.gate import policy
from mlsec_actions.gate.engine import run_gate
from mlsec_actions.sarif_read import read_sarif

STAGES = ("code-scan", "model-scan", "notebook-scan", "data-scan", "image-scan")
SEVERITIES = (("info", "0.0", "note"), ("low", "2.0", "note"), ("medium", "5.5", "warning"),
              ("high", "8.0", "error"), ("critical", "9.5", "error"))
RULES = 200


def _log(stage: str, start: int, count: int, rng: random.Random) -> dict[str, Any]:
    rules = [{"id": f"trivy/rule-{r}", "name": f"Rule{r}", "shortDescription": {"text": f"rule {r}"},
              "fullDescription": {"text": f"rule {r}"}, "help": {"text": "fix it", "markdown": "fix it"},
              "defaultConfiguration": {"level": SEVERITIES[r % 5][2]},
              "properties": {"security-severity": SEVERITIES[r % 5][1], "tags": ["security"], "precision": "high"}}
             for r in range(RULES)]
    results = []
    for i in range(start, start + count):
        r = rng.randrange(RULES)
        name, score, level = SEVERITIES[r % 5]
        path = f"src/pkg{i % 97}/module_{i % 13}.py"
        results.append({
            "ruleId": f"trivy/rule-{r}", "ruleIndex": r, "level": level,
            "message": {"text": f"rule {r} matched at {path}:{i % 500 + 1} (finding {i})"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": path},
                                                "region": {"startLine": i % 500 + 1}}}],
            "partialFingerprints": {"primaryLocationLineHash": f"{i:016x}:1"},
            "properties": {"security-severity": score, "mlsec-severity": name},
        })
    run = {"tool": {"driver": {"name": "mlsec-actions", "version": "0.1.0", "rules": rules},
                    "extensions": [{"name": "trivy", "version": "0.76.0"}]},
           "automationDetails": {"id": f"mlsec/{stage}/"},
           "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": [],
                            "properties": {"tool": "trivy", "status": "ok", "version": "0.76.0"}}],
           "results": results, "columnKind": "utf16CodeUnits", "properties": {"mlsec-stage": stage}}
    return {"version": "2.1.0", "runs": [run]}


def generate(folder: Path, total: int, files: int) -> int:
    """Write `total` findings over `files` SARIF files; returns the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(total)
    per, written = total // files, 0
    for k in range(files):
        count = per + (1 if k < total % files else 0)
        data = json.dumps(_log(STAGES[k % len(STAGES)], k * per, count, rng)).encode()
        (folder / f"{STAGES[k % len(STAGES)]}-{k:02d}.sarif").write_bytes(data)
        written += len(data)
    return written


def _best(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _cli(folder: Path, out: Path) -> float:
    mlsec = str(Path(sys.executable).parent / "mlsec")
    t = time.perf_counter()
    proc = subprocess.run([mlsec, "gate", "--sarif-dir", str(folder), "--verdict", str(out / "v.json"),
                           "--summary", str(out / "s.md"), "--sarif", str(out / "gate.sarif")],
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t
    if proc.returncode not in (0, 3):
        raise SystemExit(f"mlsec gate failed ({proc.returncode}): {proc.stderr}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5, help="best of N (half as many for sets over 100k)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    pol = policy.load("default")
    waived = policy.load(_waiver_policy(Path(tempfile.mkdtemp(prefix="mlsec-bench-pol-"))))
    work = Path(tempfile.mkdtemp(prefix="mlsec-bench-gate-"))
    rows = []
    mlsec = str(Path(sys.executable).parent / "mlsec")
    startup = _best(lambda: subprocess.run([mlsec, "--version"], capture_output=True, check=True), args.repeat)
    print(f"CLI start-up alone (mlsec --version): {startup:.3f} s; the CLI column includes it", flush=True)
    try:
        for n in sizes:
            folder = work / f"n{n}"
            size = generate(folder, n, args.files)
            repeat = args.repeat if n <= 100_000 else max(1, args.repeat // 2)
            t_in = _best(lambda f=folder: run_gate(pol, f), repeat)
            t_waiver = _best(lambda f=folder: run_gate(waived, f, baseline_dir=f), repeat)
            t_cli = min(_cli(folder, work / "out") for _ in range(repeat))
            rows.append((n, size, t_in, t_waiver, t_cli))
            print(f"{n:>9,} findings {size / 1e6:7.1f} MB  in-process {t_in:6.3f} s ({t_in / n * 1e6:5.2f} µs/finding)"
                  f"  +10 waivers+baseline (same set, read twice) {t_waiver:6.3f} s  CLI {t_cli:6.3f} s", flush=True)
            if n == 100_000:
                files = sorted(folder.glob("*.sarif"))
                t_json = _best(lambda fs=files: [json.loads(p.read_bytes()) for p in fs], 1)
                t_full = _best(lambda fs=files: [read_sarif(p) for p in fs], 1)
                print(f"{'':>9}   reference on the same files: stdlib json.loads {t_json:.3f} s, "
                      f"sarif_read.read_sarif {t_full:.3f} s ({t_full / t_in:.1f}x the whole gate)", flush=True)
            shutil.rmtree(folder)
        base = rows[0]
        print("\nper-finding cost relative to the smallest set (1.0 = perfectly linear):")
        for n, _, t_in, _, _ in rows:
            print(f"{n:>9,}: {t_in / n / (base[2] / base[0]):.2f}")
        hundred_k = next((r for r in rows if r[0] == 100_000), None)
        if hundred_k is not None:
            print(f"\n100,000 findings in {args.files} files: {hundred_k[2]:.3f} s in-process "
                  f"({'under' if hundred_k[2] < 1 else 'OVER'} the 1 s target), {hundred_k[4]:.3f} s via the CLI")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _waiver_policy(folder: Path) -> Path:
    """The default policy plus ten waivers (globs on rules and paths): the matching cost, measured."""
    expires = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()
    text = "version: 1\nrequired-stages: [code-scan]\nthresholds:\n  - severity: high\nwaivers:\n" + "".join(
        f"  - rule: 'trivy/rule-{i}*'\n    path: 'src/pkg{i}/**'\n    reason: benchmark waiver\n    owner: bench\n"
        f"    expires: {expires}\n" for i in range(10))
    path = folder / "policy.yml"
    path.write_text(text, encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.exit(main())
