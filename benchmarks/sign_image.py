"""`mlsec sign-image` and `mlsec verify-image` (key backend) against the real loopback registry, beside
`skopeo inspect --raw` of the same `.sig` tag (one manifest read by another client: a floor for a process that
talks to the registry) and `python -c pass`.

Whole processes, medians with min-max and CPU time (benchmarks/_harness.py). Every sign run appends one more
signature (ECDSA signatures differ), so verify reads the image with `--runs + 2` signatures.

    .venv/bin/python benchmarks/sign_image.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere


def main(argv: list[str] | None = None) -> int:
    from tests.oci_images import push_image
    from tests.oci_registry import start_registry

    from mlsec_actions.oci.client import Client
    from mlsec_actions.signing import key

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mlsec-sign-image-bench-"))
    registry, proc = start_registry(tmp / "registry")
    try:
        key.generate(tmp / "k.pem", tmp / "k.pub")
        (tmp / "verdict.json").write_text(json.dumps({"verdict": "pass"}))
        (tmp / "sbom.json").write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}))
        digest = push_image(Client(registry.host), "bench/app", "v1", "bench")
        ref = f"{registry.host}/bench/app@{digest}"
        env = {"MLSEC_SIGNING_KEY": ""}
        mlsec = [sys.executable, "-m", "mlsec_actions"]
        print(h.machine())
        rows = [
            h.Contender("sign-image", [*mlsec, "sign-image", ref, "--backend", "key", "--key", "k.pem", "--verdict",
                                       "verdict.json", "--sbom", "sbom.json"], cwd=tmp, env=env),
            h.Contender("verify-image", [*mlsec, "verify-image", ref, "--public-key", "k.pub",
                                         "--require-attestation", "gate", "--require-attestation", "sbom"],
                        cwd=tmp, env=env),
        ]
        skopeo = shutil.which("skopeo")
        if skopeo:
            rows.append(h.Contender("skopeo inspect --raw .sig", [
                skopeo, "inspect", "--raw", "--tls-verify=false",
                f"docker://{registry.host}/bench/app:{digest.replace(':', '-')}.sig"], cwd=tmp))
        rows.append(h.Contender("python -c pass", [sys.executable, "-c", "pass"]))
        for c in rows:
            print(h.measure(c, runs=args.runs).describe(), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
