"""`mlsec run` (the catalog's stage graph, independent stages at once) against the same stage commands run
one after another, on the example project (or any folder).

Fair because both sides are whole processes doing the same work: the serial side is one `sh` running the
exact stage commands `mlsec run` starts (scans, gate with the same expectations, sbom), in graph order, each
checked; pairs alternate A B A B with a ratio each; a run whose exit code is not the pipeline's expected one
counts as failed. Issue 13's target: at most 0.7x the serial sum on two cores, where the stages are
comparable in cost. Run: .venv/bin/python benchmarks/run_pipeline.py [PATH] [--runs 5] [--ok-codes 0,3]
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

from mlsec_actions import pipeline

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def serial_script(plan: pipeline.PipelinePlan) -> str:
    """The stage commands `mlsec run` would start, one after another; exits with the worst code."""
    q = shlex.quote
    mlsec, out, sarif, root = q(str(BIN / "mlsec")), q(str(plan.out)), q(str(plan.sarif_dir)), q(str(plan.root))
    lines = [f"rm -rf {sarif}", f"mkdir -p {sarif}", "worst=0",
             'note() { [ "$1" -gt "$worst" ] && worst=$1; return 0; }']
    for stage in plan.scans:
        lines.append(f"{mlsec} {stage} {root} --sarif {sarif}/{stage}.sarif; note $?")
    if plan.gate:
        expect = " ".join(f"--expect-stage {s}" for s in plan.scans)
        lines.append(f"{mlsec} gate --sarif-dir {sarif} --verdict {out}/verdict.json --summary {out}/summary.md "
                     f"--sarif {out}/gate.sarif {expect}; note $?")
    if plan.sbom:
        lines.append(f"{mlsec} sbom {root} --out {out}/sbom.cdx.json --digest-cache {out}/digests.json "
                     f"--verdict {out}/verdict.json; note $?")
    return "\n".join([*lines, 'exit "$worst"'])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("path", nargs="?", type=Path, default=REPO / "examples" / "ml-project")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ok-codes", default="0,3", help="exit codes of a finished pipeline (3: the gate failed)")
    args = ap.parse_args(argv)
    ok = frozenset(int(c) for c in args.ok_codes.split(","))
    print(h.machine())
    with tempfile.TemporaryDirectory(prefix="mlsec-bench-run-") as tmp:
        root = Path(tmp) / "project"
        shutil.copytree(args.path, root)
        plan = pipeline.plan(root, Path(tmp) / "serial", "mlsecops")
        parallel = h.Contender("mlsec run", [str(BIN / "mlsec"), "run", str(root), "--out", f"{tmp}/parallel"],
                               ok_codes=ok)
        serial = h.Contender("the same stages one after another", ["sh", "-c", serial_script(plan)], ok_codes=ok)
        print(f"project: {args.path}; stages: {', '.join(plan.scans)} -> {plan.gate} -> {plan.sbom}")
        print(h.compare(parallel, serial, runs=args.runs).describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
