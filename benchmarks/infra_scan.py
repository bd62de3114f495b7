"""infra-scan against bare nmap on the same loopback target: what the stage adds to nmap's own time.

Fair because both sides are whole processes timed alternately (harness), scan the same host and ports with
the same nmap flags (the stage's connect scan: `-sT --unprivileged -Pn -n -T4 --max-retries 1`), and each run
is checked: nmap's XML must show the open ports, the stage's SARIF must hold the one finding for the port its
policy does not allow. The target (issue 18): the stage within 1.1x nmap's median plus 0.3 s.

The listeners (two open ports on 127.0.0.31, the rest of the range closed) run in threads of this process.

Run: .venv/bin/python benchmarks/infra_scan.py [--runs 10] [--closed 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

BIN = Path(sys.executable).parent
HOST = "127.0.0.31"
NMAP_FLAGS = ("-sT", "--unprivileged", "-Pn", "-n", "-T4", "--max-retries", "1")


def _listeners(count: int, stop: threading.Event) -> list[int]:
    ports = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((HOST, 0))
        sock.listen(64)
        sock.settimeout(0.2)
        ports.append(sock.getsockname()[1])

        def serve(s: socket.socket = sock) -> None:
            while not stop.is_set():
                try:
                    conn, _ = s.accept()
                    conn.close()
                except OSError:
                    continue
            s.close()

        threading.Thread(target=serve, daemon=True).start()
    return ports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--closed", type=int, default=200, help="closed ports scanned beside the open ones")
    args = parser.parse_args(argv)
    nmap = shutil.which("nmap")
    if nmap is None:
        print("nmap is not installed (scripts/bootstrap dev installs it)", file=sys.stderr)
        return 2
    stop = threading.Event()
    allowed, extra = _listeners(2, stop)
    ports = f"{allowed},{extra},1-{args.closed}"
    work = Path(tempfile.mkdtemp(prefix="mlsec-bench-infra-"))
    policy = work / "policy.yml"
    policy.write_text(f"version: 1\nthresholds: []\ninfra-scan:\n  hosts:\n    - host: {HOST}\n      allow:\n"
                      f"        - ports: {allowed}\n")
    sarif = work / "infra-scan.sarif"

    def ours_ok(done: object) -> str | None:
        try:
            results = json.loads(sarif.read_text())["runs"][0]["results"]
        except (OSError, ValueError, KeyError, IndexError):
            return "no SARIF"
        return None if [r["ruleId"] for r in results] == ["nmap/port-not-allowed"] else f"results {results!r:.200}"

    def nmap_ok(done: object) -> str | None:
        out = getattr(done, "stdout", b"") or b""
        return None if out.count(b'state="open"') == 2 else "nmap did not report both open ports"

    ours = h.Contender("mlsec infra-scan", [str(BIN / "mlsec"), "infra-scan", str(work), "--target", f"{HOST}:{ports}",
                                            "--policy", str(policy), "--sarif", str(sarif)],
                       check=ours_ok, setup=lambda: sarif.unlink(missing_ok=True))
    bare = h.Contender("nmap", [nmap, *NMAP_FLAGS, "-oX", "-", "-p", ports, HOST], check=nmap_ok)
    print(h.machine())
    print(f"target {HOST}: 2 open ports, {args.closed} closed; {args.runs} alternated pairs")
    try:
        pair = h.compare(ours, bare, runs=args.runs, warmup=1)
        print(pair.describe())
        if pair.a.ok and pair.b.ok:
            budget = 1.1 * pair.b.median() + 0.3
            verdict = "within" if pair.a.median() <= budget else "OVER"
            print(f"target: mlsec median {pair.a.median():.3f}s {verdict} 1.1 x nmap + 0.3 s = {budget:.3f}s")
    finally:
        stop.set()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
