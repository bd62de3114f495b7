"""fetch + verify digest + ClamAV + model checks vs the serial baseline `curl` + `sha256sum` + `clamscan`.

Serves one artifact of random bytes (1 GiB by default) from a loopback HTTP server, makes a ClamAV database
with `sigtool` (freshclam's mirrors are not reachable here), then times, alternately (benchmarks/_harness.py):
  - `mlsec fetch` with an `mlsec.lock` pinning it: download hashed as it is written (each byte read once for
    hashing), clamscan, model-scan's in-house analyzers, the move into place;
  - `curl -o` + `sha256sum` + `clamscan -d DB` on the same URL, one after the other (the issue's baseline),
    clamscan with the same size limits as ours (its defaults skip files over 100 MiB unscanned).
Target: within 1.2x of the baseline. Not a test: numbers depend on the machine and what shares its cores.

    .venv/bin/python benchmarks/fetch.py [--mb 1024] [--runs 3] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

MB = 1024 * 1024


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=1024, help="artifact size in MiB (default 1024)")
    ap.add_argument("--runs", type=int, default=3, help="counted pairs (default 3)")
    ap.add_argument("--dir", type=Path, default=None, help="where to create the temp folder")
    args = ap.parse_args(argv)
    for tool in ("curl", "sha256sum", "clamscan", "sigtool"):
        if shutil.which(tool) is None:
            print(f"fetch benchmark: {tool} is not installed (scripts/bootstrap dev installs clamav)", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="mlsec-bench-fetch-", dir=args.dir) as tmp:
        return _run(Path(tmp), args.mb, args.runs)


def _run(tmp: Path, mb: int, runs: int) -> int:
    served, dest, db = tmp / "served", tmp / "dest", tmp / "db"
    for d in (served, dest, db):
        d.mkdir()
    digest = hashlib.sha256()
    block = bytearray(os.urandom(MB))
    with (served / "model.bin").open("wb") as fh:
        for i in range(mb):
            block[:8] = i.to_bytes(8, "little")
            fh.write(block)
            digest.update(block)
    sample = tmp / "sample.txt"
    sample.write_bytes(b"mlsec benchmark signature sample\n")
    got = subprocess.run(["sigtool", "--md5", str(sample)], capture_output=True, text=True, check=True)
    (db / "bench.hdb").write_text(got.stdout)
    port = _port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd=served,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        url = f"http://127.0.0.1:{port}/model.bin"
        lock = tmp / "mlsec.lock"
        lock.write_text(json.dumps({"version": 1, "artifacts": [
            {"name": "model.bin", "url": url, "sha256": digest.hexdigest(), "size": mb * MB}]}))
        mlsec = str(Path(sys.executable).parent / "mlsec")
        ours = h.Contender("mlsec fetch", [mlsec, "fetch", str(dest), "--lock", str(lock), "--clamav-db", str(db),
                                           "--sarif", str(tmp / "fetch.sarif"), "--max-mb", str(mb + 1)])
        out = tmp / "baseline.bin"
        limits = "--max-filesize=2047M --max-scansize=2047M"
        script = f'curl -sf -o "{out}" "{url}" && sha256sum "{out}" && clamscan --no-summary {limits} -d "{db}" "{out}"'
        baseline = h.Contender("curl+sha256sum+clamscan", ["bash", "-c", script])
        print(h.machine())
        print(f"artifact: {mb} MiB over loopback HTTP")
        print(h.compare(ours, baseline, runs=runs, warmup=1).describe())
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
