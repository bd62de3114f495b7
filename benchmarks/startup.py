"""Start-up: `mlsec --version`, `mlsec --help`, `mlsec stages` and each stage's `--help` against
`python -c 'import json'`, and a one-file `mlsec model-scan` against `picklescan -p` on the same file.

Fair because both sides are whole processes started the same way (the venv's entry-point scripts, no
shell), pairs alternate A B A B, and a run that exits with an unexpected code counts as failed, not fast.
`python -c 'import json'` is the floor any Python CLI pays; issue 13's target is under 2x it for
`--version` and `stages`. picklescan is the closest peer that scans one pickle file per process.

Run: .venv/bin/python benchmarks/startup.py [--runs 10] [--no-stages]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

BIN = Path(sys.executable).parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--no-stages", action="store_true", help="skip the per-stage --help rows")
    args = ap.parse_args(argv)
    print(h.machine())
    floor = h.Contender("python -c 'import json'", [sys.executable, "-c", "import json"])
    mlsec = str(BIN / "mlsec")
    rows = [("mlsec --version", [mlsec, "--version"]), ("mlsec stages", [mlsec, "stages"]),
            ("mlsec --help", [mlsec, "--help"])]
    if not args.no_stages:
        from mlsec_actions import catalog

        rows += [(f"mlsec {s.id} --help", [mlsec, s.id, "--help"]) for s in catalog.implemented()]
    for name, cmd in rows:
        print(h.compare(h.Contender(name, cmd), floor, runs=args.runs).describe(), flush=True)
    with tempfile.TemporaryDirectory(prefix="mlsec-bench-startup-") as tmp:
        one = Path(tmp) / "model.pkl"
        one.write_bytes(pickle.dumps({"weights": list(range(1000))}, protocol=4))
        ours = h.Contender("mlsec model-scan ONEFILE --no-modelscan",
                           [mlsec, "model-scan", str(one), "--no-modelscan", "--sarif", f"{tmp}/m.sarif",
                            "--source-root", tmp])
        peer = h.Contender("picklescan -p ONEFILE", [str(BIN / "picklescan"), "-p", str(one)])
        print(h.compare(ours, peer, runs=args.runs).describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
