"""Whether `mlsec gate` grows linearly: the whole process over 10k, 100k and 1M findings in 20 SARIF files.

Fair because each figure is a whole `mlsec gate` process (median with min-max of N runs, a run without a
verdict or with an exit other than 0/3 counts as failed), and the growth is judged against what linear
growth plus the process's fixed cost (start-up, measured the same way) predicts, not against zero. The
SARIF is shaped like our writer's (rules with security-severity, results with mlsec-severity,
fingerprints, locations, invocations). Issue 13's target: 1M/100k at most 6x.

Run: .venv/bin/python benchmarks/gate.py [--sizes 10000,100000,1000000] [--files 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

BIN = Path(sys.executable).parent

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


def _gate(folder: Path, out: Path, policy_file: Path | None = None, baseline: bool = False) -> h.Contender:
    verdict = out / "v.json"
    argv = [str(BIN / "mlsec"), "gate", "--sarif-dir", str(folder), "--verdict", str(verdict),
            "--summary", str(out / "s.md"), "--sarif", str(out / "gate.sarif")]
    argv += ["--policy", str(policy_file)] if policy_file else []
    argv += ["--baseline", str(folder)] if baseline else []

    def check(done: object) -> str | None:
        return None if verdict.is_file() else "no verdict written"

    return h.Contender(f"mlsec gate {folder.name}{' +waivers+baseline' if baseline else ''}", argv,
                       ok_codes=frozenset({0, 3}), check=check, setup=lambda: verdict.unlink(missing_ok=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5, help="counted runs per size (3 for sets over 100k)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="mlsec-bench-gate-"))
    waivers = _waiver_policy(work)
    out = work / "out"
    out.mkdir()
    print(h.machine())
    try:
        empty = work / "empty"
        generate(empty, 0, 1)
        start = h.measure(_gate(empty, out), args.runs)  # the fixed cost: start-up, policy, one empty SARIF
        print("fixed cost (no findings): " + start.describe(), flush=True)
        medians: dict[int, float] = {}
        cpus: dict[int, float] = {}
        for n in sizes:
            folder = work / f"n{n}"
            size = generate(folder, n, args.files)
            runs = args.runs if n <= 100_000 else max(1, min(args.runs, 3))
            print(f"{n:,} findings in {args.files} files, {size / 1e6:,.1f} MB; "
                  f"{h.page_cache(sorted(folder.iterdir()))}", flush=True)
            plain = h.measure(_gate(folder, out), runs)
            print("  " + plain.describe(), flush=True)
            print("  " + h.measure(_gate(folder, out, waivers, baseline=True), runs).describe(), flush=True)
            if plain.ok:
                medians[n], cpus[n] = plain.median(), plain.cpu_median()
            shutil.rmtree(folder)
        print("\nwhole-process growth against linear growth plus the fixed cost (the no-findings run):")
        for label, times, fixed in (("wall", medians, start.median() if start.ok else 0.0),
                                    ("CPU", cpus, start.cpu_median() if start.ok else 0.0)):
            ordered = sorted(times)
            for small, big in itertools.pairwise(ordered):
                floor = min(fixed, times[small])  # a noisy fixed cost above the small set's time predicts nothing
                linear = (times[small] - floor) * big / small + floor
                print(f"  {label} {big:,}/{small:,}: {times[big] / times[small]:.1f}x measured; linear predicts "
                      f"{linear / times[small]:.1f}x ({times[big]:.2f} s vs {linear:.2f} s)")
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
