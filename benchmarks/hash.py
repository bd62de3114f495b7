"""Hashing throughput: our digest cache vs `sha256sum` on 2 processes vs OpenSSF model_signing.

Generates a model-like folder (a few large shards plus many small files; 4 GB by default) in a temp
dir, warms the page cache, then times, on the same folder:
  - sha256sum, one process, and run in parallel with `xargs -P2` (what two cores of SHA-256 allow),
  - mlsec_actions.digests (thread pool, 4 MB readinto) cold, and again with the cache warm,
  - `mlsec sign --backend key` on the folder (hash + model_signing manifest + sign),
  - `mlsec verify` on it (walks with `scan_tree`, re-hashes with `hash_files`: no cache),
  - model_signing's API (`hashing.Config().hash`) and its CLI (`model_signing sign key`).
Prints MB/s and our ratio to parallel sha256sum (target >= 0.80). Not a test: numbers depend on
the machine and on whatever else shares its cores.

    .venv/bin/python benchmarks/hash.py [--gb 4] [--dir /tmp] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlsec_actions.digests import DigestCache, workers

MB = 1024 * 1024


def generate(root: Path, total_gb: float) -> int:
    """75% in 512 MB shards, 25% in 64 KB-4 MB files; content is cheap pseudo-random blocks."""
    block = bytearray(os.urandom(MB))
    total = int(total_gb * 1024) * MB
    large, written, i = 512 * MB, 0, 0
    while written < total * 3 // 4:
        size = min(large, total * 3 // 4 - written)
        with (root / f"model-{i:05d}-of-shards.safetensors").open("wb") as fh:
            for off in range(0, size, MB):
                block[:8] = (off + i).to_bytes(8, "little")  # every MB differs
                fh.write(block[: min(MB, size - off)])
        written += size
        i += 1
    j = 0
    (root / "tokenizer").mkdir()
    while written < total:
        size = min((64 * 1024) << (j % 7), total - written)  # 64 KB .. 4 MB
        block[:8] = j.to_bytes(8, "little")
        (root / "tokenizer" / f"part-{j:06d}.bin").write_bytes(bytes(block[:size]) if size <= MB else
                                                               bytes(block) * (size // MB))
        written += size if size <= MB else (size // MB) * MB
        j += 1
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def timed(label: str, nbytes: int, fn: Callable[[], object], repeat: int = 2) -> float:
    best = min(_once(fn) for _ in range(repeat))
    rate = nbytes / MB / best
    print(f"{label:<46} {best:7.2f} s  {rate:8.0f} MB/s", flush=True)
    return rate


def _once(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def sh(cmd: str) -> Callable[[], object]:
    return lambda: subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)  # noqa: S602 - fixed benchmark commands


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=4.0, help="folder size in GB (default 4)")
    ap.add_argument("--dir", type=Path, default=None, help="where to create the temp folder")
    ap.add_argument("--keep", action="store_true", help="keep the generated folder")
    args = ap.parse_args(argv)
    bindir = Path(sys.executable).parent
    tmp = Path(tempfile.mkdtemp(prefix="mlsec-hash-bench-", dir=args.dir))
    try:
        model = tmp / "model"
        model.mkdir()
        nbytes = generate(model, args.gb)
        nfiles = sum(1 for p in model.rglob("*") if p.is_file())
        print(f"folder: {model}  {nbytes / MB:.0f} MB in {nfiles} files; {workers()} usable cores", flush=True)
        subprocess.run(f"cat {model}/*.safetensors {model}/tokenizer/* > /dev/null", shell=True, check=True)  # noqa: S602 - warm cache
        files = f"find {model} -type f -print0"
        timed("sha256sum, 1 process", nbytes, sh(f"{files} | xargs -0 sha256sum"))
        ref = max(timed("sha256sum, xargs -P2 -n1", nbytes, sh(f"{files} | xargs -0 -P2 -n1 sha256sum")),
                  timed("sha256sum, xargs -P2 -n32", nbytes, sh(f"{files} | xargs -0 -P2 -n32 sha256sum")))
        # coreutils may lack the SHA extensions OpenSSL (and so hashlib) uses: the stricter reference.
        ossl = timed("openssl dgst -sha256, xargs -P2 -n32", nbytes,
                     sh(f"{files} | xargs -0 -P2 -n32 openssl dgst -sha256"))
        ours = timed("mlsec digests (cold cache, threads)", nbytes, lambda: DigestCache().tree(model))
        cpu = time.process_time()
        DigestCache().tree(model)
        cpu = time.process_time() - cpu  # all threads: what the hashing costs whatever else shares the cores
        print(f"{'mlsec digests, CPU time (all threads)':<46} {cpu:7.2f} s  {nbytes / MB / cpu:8.0f} MB/CPU-s",
              flush=True)
        cache_file = tmp / "digests.json"
        warm = DigestCache(cache_file)
        warm.tree(model)
        warm.save()
        timed("mlsec digests (warm cache: stat only)", nbytes, lambda: DigestCache(cache_file).tree(model))
        key = tmp / "k.pem"
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)],
                       check=True)
        subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-out", str(tmp / "k.pub")], check=True,
                       stderr=subprocess.DEVNULL)
        sign = [str(bindir / "mlsec"), "sign", "--backend", "key", "--key", str(key),
                "--digest-cache", str(tmp / "sign-cache.json"), str(model)]
        timed("mlsec sign --backend key (cold, incl. ~2 s start-up)", nbytes,
              lambda: (Path(tmp / "sign-cache.json").unlink(missing_ok=True),
                       subprocess.run(sign, check=True, stderr=subprocess.DEVNULL)))
        verify = [str(bindir / "mlsec"), "verify", "--public-key", str(tmp / "k.pub"), str(model)]
        timed("mlsec verify --public-key (re-hash, never cached)", nbytes,
              lambda: subprocess.run(verify, check=True, stderr=subprocess.DEVNULL))
        from model_signing import hashing

        ms = timed("model_signing API hash (sha256)", nbytes,
                   lambda: hashing.Config().use_file_serialization(hashing_algorithm="sha256").hash(model))
        timed("model_signing CLI sign key", nbytes, sh(
            f"{bindir / 'python'} -m model_signing sign key --private_key {key} "
            f"--signature {tmp / 'ms.sig'} {model}"), repeat=1)
        best = max(ref, ossl)
        print(f"\nours / sha256sum -P2 = {ours / ref:.2f};  ours / openssl -P2 = {ours / ossl:.2f};  "
              f"ours / model_signing = {ours / ms:.2f}")
        print(f"target: >= 0.80 of the faster 2-process reference: {ours / best:.2f} "
              f"({'met' if ours / best >= 0.8 else 'NOT met'})")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
