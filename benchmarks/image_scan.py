"""mlsec image-scan against the bare `trivy image` it wraps, on the same image (an OCI layout).

Fair because each pair is two whole processes alternated A B A B with a ratio per pair (benchmarks/_harness.py),
a run with an unexpected exit code counts as failed, and the bare trivy gets the configuration the stage gives
it (trivy's shipped config, ignore file and secret config, the same scanners, `--skip-db-update`). The image is
built once, untimed, by `mlsec build` from tests/oci_layout.py's service context (busybox-static, a RUN step, a
baked-in key), unless `--layout DIR` names one.

Target (issue 18): at most 1.1x + 0.3 s of the bare trivy. Run: .venv/bin/python benchmarks/image_scan.py [--runs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

from mlsec_actions.tools import trivy

BIN = Path(sys.executable).parent


def _build(tmp: Path) -> tuple[Path, Path]:
    from tests.oci_layout import service_context

    context = service_context(tmp / "ctx")
    layout = tmp / "layout"
    proc = subprocess.run([str(BIN / "mlsec"), "build", str(context), "--layout", str(layout), "--sarif",
                           str(tmp / "build.sarif"), "--image-json", str(tmp / "image.json"),
                           "--sbom", str(tmp / "sbom.json")],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"image_scan: the build failed: {proc.stderr.strip()[-400:]}")
    return layout, context / "Containerfile"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--layout", type=Path, default=None, help="an OCI layout to scan (default: build one)")
    ap.add_argument("--runs", type=int, default=5, help="counted pairs (default 5)")
    args = ap.parse_args(argv)
    print(h.machine())
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        layout, dockerfile = (args.layout, None) if args.layout else _build(tmp)
        cache = tmp / "trivy-cache"
        bare = h.Contender("trivy image", [
            str(BIN / "trivy"), "image", "--input", str(layout), "--scanners", "secret,misconfig", "--format", "json",
            "--quiet", "--skip-check-update", "--skip-db-update", "--config", str(trivy.CONFIG), "--ignorefile",
            str(trivy.IGNOREFILE), "--secret-config", str(trivy.SECRET_CONFIG), "--cache-dir", str(cache),
            "--output", str(tmp / "t.json")])
        ours = h.Contender("mlsec image-scan", [
            str(BIN / "mlsec"), "image-scan", str(layout), "--vuln-db", "skip", "--trivy-cache-dir", str(cache),
            "--sarif", str(tmp / "m.sarif"), *(["--dockerfile", str(dockerfile)] if dockerfile else [])])
        pair = h.compare(ours, bare, runs=args.runs)
        print(pair.describe())
        if pair.a.ok and pair.b.ok:
            limit = 1.1 * pair.b.median() + 0.3
            print(f"target: mlsec median {pair.a.median():.2f}s vs 1.1 x {pair.b.median():.2f}s + 0.3 s = "
                  f"{limit:.2f}s: {'met' if pair.a.median() <= limit else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
