"""The one timing harness every benchmark uses, so no figure can flatter us.

- Whole processes on both sides (never our code in-process against a peer's process).
- Warm-up runs first, then N counted runs; with two contenders the runs alternate A B A B, so drift of a
  shared machine hits both, and each pair gives its own ratio.
- Medians with min-max, never best-of.
- A run whose exit code is not an expected one, or whose check rejects its output, is a FAILED run: the
  contender has no time at all, rather than a fast one.
- The machine (cores, CPU model, SHA extensions, Python) is printed with every table.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Check = Callable[[subprocess.CompletedProcess[bytes]], str | None]
"""Looks at a finished run; returns why it is wrong, or None."""


@dataclass(frozen=True)
class Contender:
    """One command to time."""

    name: str
    """Shown in the table."""
    argv: Sequence[str]
    """The whole process: program and arguments (no shell)."""
    ok_codes: frozenset[int] = frozenset({0})
    """Exit codes meaning it did its job (a scanner may exit 1 on findings)."""
    check: Check | None = None
    """Extra validation of the output (e.g. the report file exists and lists N results)."""
    env: Mapping[str, str] | None = None
    """Environment additions."""
    cwd: Path | None = None
    """Working folder."""
    setup: Callable[[], object] | None = None
    """Run before every run, untimed (e.g. delete a cache so each run starts cold)."""


@dataclass(frozen=True)
class Sample:
    """One finished run."""

    wall: float
    """Seconds, start to reap."""
    cpu: float
    """User + system seconds of the process and its children."""
    peak_rss_mb: float
    """Largest resident set of the process tree's largest process, MiB."""
    error: str | None
    """Why the run failed, None when it succeeded."""


@dataclass(frozen=True)
class Stats:
    """The counted runs of one contender."""

    name: str
    samples: tuple[Sample, ...]
    failures: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return bool(self.samples) and not self.failures

    def median(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    def span(self) -> tuple[float, float]:
        walls = [s.wall for s in self.samples]
        return min(walls), max(walls)

    def cpu_median(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    def peak_mb(self) -> float:
        return statistics.median(s.peak_rss_mb for s in self.samples)

    def describe(self) -> str:
        if not self.ok:
            return f"{self.name}: FAILED ({'; '.join(sorted(set(self.failures)))[:300]})"
        lo, hi = self.span()
        return (f"{self.name}: {self.median():.3f}s median ({lo:.3f}-{hi:.3f}), CPU {self.cpu_median():.3f}s, "
                f"peak {self.peak_mb():.0f} MiB")


# Runs each contender for us. A process forked from a big parent inherits the parent's memory high-water
# mark in its ru_maxrss (Linux carries it across exec), so contenders are started by this small process,
# started once while the harness is still small, never by the harness itself.
_SPAWNER = """
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["out"], "wb") as out, open(job["err"], "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(job["argv"], cwd=job["cwd"], env=job["env"], stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    print(json.dumps({"code": os.waitstatus_to_exitcode(status), "wall": wall,
                      "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}), flush=True)
"""
_spawner: subprocess.Popen[str] | None = None


def _spawn(argv: Sequence[str], cwd: Path | None, env: Mapping[str, str], out: Path, err: Path) -> dict[str, float]:
    global _spawner
    if _spawner is None or _spawner.poll() is not None:
        _spawner = subprocess.Popen([sys.executable, "-I", "-c", _SPAWNER], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
    assert _spawner.stdin is not None and _spawner.stdout is not None
    job = {"argv": list(argv), "cwd": str(cwd) if cwd else None, "env": dict(env), "out": str(out), "err": str(err)}
    _spawner.stdin.write(json.dumps(job) + "\n")
    _spawner.stdin.flush()
    answer: dict[str, float] = json.loads(_spawner.stdout.readline())
    return answer


def start() -> None:
    """Start the spawner now: call it before the benchmark allocates much (it is started on first use anyway)."""
    global _spawner
    if _spawner is None:
        _spawner = subprocess.Popen([sys.executable, "-I", "-c", _SPAWNER], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)


def run_once(c: Contender) -> Sample:
    """Run the contender once as a whole process, accounted with wait4 (that child and what it reaped)."""
    env = {**os.environ, **(c.env or {})}
    if c.setup is not None:
        c.setup()
    with tempfile.TemporaryDirectory(prefix="harness-") as tmp:
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        got = _spawn(c.argv, c.cwd, env, out, err)
        code = int(got["code"])
        done = subprocess.CompletedProcess(list(c.argv), code, out.read_bytes(), err.read_bytes())
    error = None
    if code not in c.ok_codes:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        error = f"exit {code}: {tail[0][:200]}"
    elif c.check is not None:
        error = c.check(done)
    return Sample(wall=got["wall"], cpu=got["cpu"], peak_rss_mb=got["maxrss_kb"] / 1024, error=error)


def _collect(name: str, samples: list[Sample]) -> Stats:
    good = tuple(s for s in samples if s.error is None)
    bad = tuple(s.error for s in samples if s.error is not None)
    return Stats(name, good, bad)


def measure(c: Contender, runs: int = 10, warmup: int = 1) -> Stats:
    """One contender: warm-up, then `runs` counted runs."""
    for _ in range(warmup):
        run_once(c)
    return _collect(c.name, [run_once(c) for _ in range(runs)])


@dataclass(frozen=True)
class Pair:
    """Two contenders timed alternately."""

    a: Stats
    b: Stats
    ratios: tuple[float, ...]
    """a/b wall time, pair by pair."""

    def ratio(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    def describe(self) -> str:
        lines = [self.a.describe(), self.b.describe()]
        r = self.ratio()
        if r is None or not (self.a.ok and self.b.ok):
            lines.append(f"ratio {self.a.name}/{self.b.name}: n/a (a contender failed)")
        else:
            lines.append(f"ratio {self.a.name}/{self.b.name}: {r:.2f}x median of {len(self.ratios)} pairs "
                         f"({min(self.ratios):.2f}-{max(self.ratios):.2f})")
        return "\n".join(lines)


def compare(a: Contender, b: Contender, runs: int = 10, warmup: int = 1) -> Pair:
    """A B A B ...: each counted pair gives a ratio; a failed run on either side voids that pair."""
    for _ in range(warmup):
        run_once(a)
        run_once(b)
    sa: list[Sample] = []
    sb: list[Sample] = []
    ratios: list[float] = []
    for _ in range(runs):
        x, y = run_once(a), run_once(b)
        sa.append(x)
        sb.append(y)
        if x.error is None and y.error is None and y.wall > 0:
            ratios.append(x.wall / y.wall)
    return Pair(_collect(a.name, sa), _collect(b.name, sb), tuple(ratios))


def machine() -> str:
    """Cores, CPU model and SHA extensions, Python: printed above every table."""
    model, flags = "unknown CPU", set()
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        if m := re.search(r"^model name\s*:\s*(.+)$", info, re.M):
            model = m.group(1).strip()
        if m := re.search(r"^flags\s*:\s*(.+)$", info, re.M):
            flags = set(m.group(1).split())
    except OSError:
        pass
    sha = "sha_ni" if "sha_ni" in flags else "no sha_ni"
    return (f"machine: {os.cpu_count()} cores, {model}, {sha}; Python {platform.python_version()}; "
            f"{platform.system()} {platform.release()}")


def sha256_bound_mb_s() -> float | None:
    """The SHA-256 bound of this machine: `openssl speed -evp sha256` (16 KiB blocks) per core x cores."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    proc = subprocess.run([openssl, "speed", "-seconds", "1", "-bytes", "16384", "-evp", "sha256"],
                          capture_output=True, text=True, check=False)
    m = re.search(r"^sha256\s+([\d.]+)k", proc.stdout, re.M)
    if not m:
        return None
    per_core = float(m.group(1)) * 1000 / 1e6  # openssl prints 1000s of bytes per second
    return per_core * (os.cpu_count() or 1)


def throughput(nbytes: int, stats: Stats, bound_mb_s: float | None, cores: int | None = None) -> str:
    """MB/s of the median run, its share of the bound, and MB per CPU-second against one core's bound (what
    a machine shared with other work still measures fairly)."""
    if not stats.ok:
        return f"{stats.name}: FAILED"
    rate = nbytes / 1e6 / stats.median()
    cpu = statistics.median(s.cpu for s in stats.samples)
    per_cpu = nbytes / 1e6 / cpu if cpu > 0 else float("inf")
    line = f"{stats.name}: {rate:,.0f} MB/s"
    if bound_mb_s:
        cores = cores or os.cpu_count() or 1
        line += (f" = {rate / bound_mb_s:.0%} of the {cores}-core bound ({bound_mb_s:,.0f} MB/s); "
                 f"{per_cpu:,.0f} MB per CPU-second = {per_cpu / (bound_mb_s / cores):.0%} of one core's bound")
    return line


def page_cache(files: Sequence[Path]) -> str:
    """How much of these files is in the page cache now (util-linux `fincore`), for the table's header."""
    fincore = shutil.which("fincore")
    total = sum(p.stat().st_size for p in files)
    if fincore is None or not files:
        return f"page cache: unknown ({total / 1e6:,.0f} MB of input)"
    resident = 0
    for i in range(0, len(files), 200):
        proc = subprocess.run([fincore, "--bytes", "--noheadings", "--output", "RES", *map(str, files[i:i + 200])],
                              capture_output=True, text=True, check=False)
        resident += sum(int(x) for x in proc.stdout.split() if x.isdigit())
    resident = min(resident, total)  # whole pages: a small file's last page counts in full
    return f"page cache: {resident / total:.0%} of {total / 1e6:,.0f} MB of input resident" if total else \
        "page cache: no input bytes"
