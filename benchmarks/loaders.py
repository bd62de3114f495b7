"""Peak memory and time of every bounded loader on the bomb inputs of issue 9 (billion laughs, deep
nesting, oversized files, a FIFO, /dev/zero), each a whole `python -I` process that imports the loaders
and loads one input, run N times.

Fair because the figures are the whole process's (median with min-max; peak RSS from the kernel's
accounting, the child started by the harness's small spawner), a run that crashed or printed no result
counts as failed, and the load's own time is shown beside it. Target (issue 9): under 100 MB peak RSS and
1 s for each. Run: .venv/bin/python benchmarks/loaders.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

TARGET_MB, TARGET_S = 100.0, 1.0

# Runs in the child: imports first (their memory is the baseline), then one load, timed.
# Peak RSS is /proc's VmHWM: getrusage's ru_maxrss keeps the parent's high-water mark across fork+exec.
_CHILD = """
import json, resource, sys, time
from pathlib import Path
import yaml
from mlsec_actions import inputs
from mlsec_actions.errors import InputError
def hwm_kb():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
base = hwm_kb()
start = time.perf_counter()
try:
    getattr(inputs, sys.argv[1])(Path(sys.argv[2]), "input")
    outcome = "loaded"
except InputError as e:
    outcome = "refused: " + e.problem
seconds = time.perf_counter() - start
peak = hwm_kb()
print(json.dumps({"outcome": outcome, "seconds": seconds, "peak_kb": peak, "base_kb": base}))
"""


def _laughs(levels: int, width: int) -> str:
    rows = ['l0: &l0 "lol"']
    rows += [f"l{i}: &l{i} [{', '.join(f'*l{i - 1}' for _ in range(width))}]" for i in range(1, levels + 1)]
    return "\n".join(rows) + "\n"


def _write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


def bombs(tmp: Path) -> list[tuple[str, str, Callable[[], Path]]]:
    """(name, loader, make the input)."""
    # The most an anchor may be re-used: 16 aliases of a 1,150-value list (just under 20,000 values).
    big_anchor = "a: &a [" + ", ".join(["1"] * 1150) + "]\nb: [" + ", ".join(["*a"] * 16) + "]\n"
    fifo = tmp / "fifo"
    return [
        ("yaml billion laughs 9x9 (387 B -> 10^9)", "load_yaml", lambda: _write(tmp / "l.yml", _laughs(9, 9))),
        ("yaml 16 aliases x 1,150-item anchor", "load_yaml", lambda: _write(tmp / "q.yml", big_anchor)),
        ("yaml flow nesting depth 100k", "load_yaml",
         lambda: _write(tmp / "d.yml", "[" * 100_000 + "]" * 100_000)),
        ("yaml block nesting depth 1400 (1 MB)", "load_yaml",
         lambda: _write(tmp / "b.yml", "".join(" " * i + "a:\n" for i in range(1400)))),
        ("yaml 1 MiB of small items", "load_yaml",
         lambda: _write(tmp / "w.yml", "- 1\n" * (1024 * 1024 // 4))),
        ("yaml 60 MB policy", "load_yaml", lambda: _sparse(tmp / "big.yml", 60_000_000)),
        ("yaml FIFO", "load_yaml", lambda: (os.mkfifo(fifo), fifo)[1]),
        ("yaml /dev/zero", "load_yaml", lambda: Path("/dev/zero")),
        ("json nesting depth 100k", "load_json",
         lambda: _write(tmp / "d.json", '{"a": ' * 100_000 + "1" + "}" * 100_000)),
        ("json 8 MiB of '[' (depth 4M)", "load_json",
         lambda: _write(tmp / "e.json", b"[" * (4 * 1024 * 1024) + b"]" * (4 * 1024 * 1024))),
        ("json 8 MiB, depth 127 under strings", "load_json",
         lambda: _write(tmp / "s.json", "[" * 127 + json.dumps(["\\\"[{" * 20] * 60_000) + "]" * 127)),
        ("json 60 MB verdict", "load_json", lambda: _sparse(tmp / "big.json", 60_000_000)),
        ("json /dev/zero", "load_json", lambda: Path("/dev/zero")),
    ]


def _contender(name: str, loader: str, path: Path, outcomes: list[str]) -> h.Contender:
    def check(done: subprocess.CompletedProcess[bytes]) -> str | None:
        try:
            result = json.loads(done.stdout)
        except ValueError:
            return "no result printed"
        outcomes.append(f"{result['outcome']} (load {result['seconds']:.3f} s)")
        return None

    return h.Contender(name, [sys.executable, "-I", "-c", _CHILD, loader, str(path)], check=check)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    h.start()
    print(h.machine())
    print(f"{'input':42} whole process: median (min-max), peak RSS  target  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for name, loader, make in bombs(Path(tmp)):
            outcomes: list[str] = []
            stats = h.measure(_contender(name, loader, make(), outcomes), runs=args.runs)
            ok = stats.ok and stats.peak_mb() < TARGET_MB and stats.median() < TARGET_S
            shown = stats.describe().split(": ", 1)[1]
            print(f"{name:42} {shown}  {'met' if ok else 'MISSED'}  {(outcomes or ['-'])[-1][:70]}", flush=True)
    print(f"target: peak RSS (the whole process) < {TARGET_MB:.0f} MB and the whole process < {TARGET_S:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
