"""OpenPubkey's cost: GQ256 sign and verify (issue 12's target: under 50 ms each in Python on one core), and
`mlsec sign --backend openpubkey` of a large model folder against `--backend key` on the same folder (target:
within 1.1x; hashing dominates, the token is a fixed cost), and `--backend key` against bare `sha256sum` of the
same files (one process, and one process per core) as the hashing bound.

Fair because the folder comparison is whole processes on both sides, alternated A B A B on the same warm
folder (the page-cache state is printed), each run with its digest cache deleted, medians with min-max and
CPU time; a failed run counts as failed. The folder holds real random bytes (a sparse file would hash zero
pages the kernel never reads), written once into `--cache-dir` and reused by later runs (its size is checked).
The OpenPubkey runs get their ID token from tests/oidc_issuer.py, a
loopback STAND-IN for GitHub's token service (the real one exists only inside GitHub Actions), started in
this process. GQ256 is timed in-process because it is one function of ours with no peer process to compare
against; the figure is its own median over `--gq-runs` calls with a fresh RSA-2048 key.

    .venv/bin/python benchmarks/sign.py [--folder-gb 4] [--runs 5] [--gq-runs 21] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

MB = 1024 * 1024


def gq_timings(runs: int) -> tuple[list[float], list[float]]:
    """Seconds per GQ256 sign and per verify of a JWT-sized message, `runs` each."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from mlsec_actions.signing.opk import gq

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n, e = key.public_key().public_numbers().n, key.public_key().public_numbers().e
    identity = b"eyJhbGciOiJSUzI1NiJ9." + b"x" * 900  # header.payload of a GitHub ID token, about this long
    rsa_signature = key.sign(identity, padding.PKCS1v15(), hashes.SHA256())
    signs, verifies = [], []
    for _ in range(runs):
        t = time.perf_counter()
        signature = gq.sign(n, e, rsa_signature, identity, identity)
        signs.append(time.perf_counter() - t)
        t = time.perf_counter()
        ok = gq.verify(n, e, identity, identity, signature)
        verifies.append(time.perf_counter() - t)
        if not ok:
            raise SystemExit("GQ256 signature did not verify: the benchmark is measuring a broken build")
    return signs, verifies


def _ms(values: list[float]) -> str:
    low, mid, high = (v * 1000 for v in (min(values), statistics.median(values), max(values)))
    return f"median {mid:.1f} ms (min {low:.1f}, max {high:.1f})"


def _folder(root: Path, gb: float) -> list[Path]:
    """`root/shards/*.safetensors` (512 MiB shards, like a sharded checkpoint) of random bytes, written once:
    a folder already there with the right shard sizes is reused."""
    shards = max(1, round(gb * 1024 / 512))
    files = [root / "shards" / f"model-{i:05d}.safetensors" for i in range(shards)]
    stale = [p for p in (root / "shards").glob("*") if p not in files] if (root / "shards").is_dir() else []
    for p in stale:
        p.unlink()
    (root / "shards").mkdir(parents=True, exist_ok=True)
    for path in files:
        if path.is_file() and path.stat().st_size == 512 * MB:
            continue
        with path.open("wb") as f:
            for _ in range(8):
                f.write(os.urandom(64 * MB))  # real bytes: no shard repeats another's blocks
    (root / "config.json").write_text('{"architectures": ["Bench"]}')
    return files


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _bundle_check(bundle: Path) -> h.Check:
    def check(_: subprocess.CompletedProcess[bytes]) -> str | None:
        return None if bundle.is_file() and bundle.stat().st_size > 0 else f"{bundle} was not written"
    return check


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder-gb", type=float, default=4.0, help="model folder size in GiB (default 4)")
    ap.add_argument("--runs", type=int, default=5, help="counted pairs for the folder comparison (default 5)")
    ap.add_argument("--gq-runs", type=int, default=21, help="GQ256 sign/verify calls timed (default 21)")
    ap.add_argument("--cache-dir", type=Path, default=Path(__file__).resolve().parent.parent / ".cache" / "bench-sign",
                    help="where the model folder is written once and kept (default .cache/bench-sign)")
    args = ap.parse_args(argv)
    print(h.machine())
    signs, verifies = gq_timings(args.gq_runs)
    print(f"GQ256 sign   (RSA-2048, in-process, one core): {_ms(signs)}; target < 50 ms")
    print(f"GQ256 verify (RSA-2048, in-process, one core): {_ms(verifies)}; target < 50 ms", flush=True)

    from tests import oidc_issuer

    tmp = Path(tempfile.mkdtemp(prefix="mlsec-sign-bench-"))
    try:
        with oidc_issuer.running_issuer() as issuer:
            from mlsec_actions.signing import key

            key.generate(tmp / "k.pem", tmp / "k.pub")
            model = args.cache_dir.resolve() / f"model-{args.folder_gb:g}g"
            files = _folder(model, args.folder_gb)
            subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
            print(f"a {args.folder_gb:g} GiB model folder ({len(files)} shards, {model}); {h.page_cache(files)}; "
                  f"{args.runs} alternated pairs; load average {_load()}", flush=True)
            bundle = model.parent / f"{model.name}.sigstore.json"  # beside the folder, as mlsec sign writes it
            cache = tmp / "c.json"

            def fresh() -> None:
                cache.unlink(missing_ok=True)
                bundle.unlink(missing_ok=True)

            common = ["-m", "mlsec_actions", "sign", "--digest-cache", str(cache), str(model)]
            by_key = h.Contender("mlsec sign --backend key", [sys.executable, *common, "--backend", "key",
                                                                "--key", str(tmp / "k.pem")],
                                 cwd=tmp, env={"MLSEC_SIGNING_KEY": ""}, setup=fresh, check=_bundle_check(bundle))
            by_opk = h.Contender("mlsec sign --backend openpubkey", [sys.executable, *common, "--backend",
                                                                       "openpubkey"],
                                 cwd=tmp, env=issuer.env(), setup=fresh, check=_bundle_check(bundle))
            pair = h.compare(by_opk, by_key, runs=args.runs)
            print(pair.describe())
            print(f"target: openpubkey/key <= 1.1x; load average {_load()}", flush=True)
            names = [str(p) for p in files] + [str(model / "config.json")]
            one = h.Contender("sha256sum (one process)", ["sha256sum", *names], cwd=tmp)
            cores = os.cpu_count() or 1
            per_core = h.Contender(f"sha256sum ({cores} processes)",
                                   ["sh", "-c", f'printf "%s\\0" "$@" | xargs -0 -P {cores} -n 1 sha256sum',
                                    "sh", *names], cwd=tmp)
            for bound in (one, per_core):
                print(h.compare(by_key, bound, runs=args.runs).describe())
                print(f"load average {_load()}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
