"""Hashing a model folder: `mlsec sign` (and our digests alone) against `model_signing sign key` and
`openssl dgst -sha256` on one process per core, with the SHA-256 bound of this machine beside each figure.

Fair because every contender is a whole process on the same warm folder (the page-cache state is printed),
each `mlsec sign` run starts with its digest cache deleted (so it hashes everything), pairs alternate
A B A B, failed runs count as failed, and the bound is `openssl speed -evp sha256` per core x cores, which
no file hasher can beat. MB per CPU-second against one core's bound is printed too: it holds on a machine
shared with other work, where wall time does not. One file's SHA-256 is serial, so a single large file is
bound by ONE core (`--one-file` shows it); a folder of several files by all of them.

Run: .venv/bin/python benchmarks/hash.py [--gb 4] [--files 4] [--runs 5] [--dir /tmp] [--one-file]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

BIN = Path(sys.executable).parent
MB = 1024 * 1024


def generate(root: Path, total_gb: float, files: int) -> list[Path]:
    """`files` equal shards of pseudo-random data (every MiB differs) plus a small config file."""
    block = bytearray(os.urandom(MB))
    size = int(total_gb * 1024 / files) * MB
    out = []
    for i in range(files):
        path = root / f"model-{i:05d}-of-{files:05d}.safetensors"
        with path.open("wb") as fh:
            for off in range(0, size, MB):
                block[:8] = (off + i * size).to_bytes(8, "little")
                fh.write(block)
        out.append(path)
    (root / "config.json").write_text('{"model_type": "bench"}\n', encoding="utf-8")
    return [*out, root / "config.json"]


def _keys(tmp: Path) -> tuple[Path, Path]:
    key, pub = tmp / "k.pem", tmp / "k.pub"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True)
    subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                   stderr=subprocess.DEVNULL)
    return key, pub


def contenders(model: Path, tmp: Path, key: Path, pub: Path) -> dict[str, h.Contender]:
    cache = tmp / "sign-cache.json"
    bundle = tmp / "ms.sig"
    return {
        "mlsec sign": h.Contender(
            "mlsec sign --backend key (cold digest cache)",
            [str(BIN / "mlsec"), "sign", "--backend", "key", "--key", str(key), "--digest-cache", str(cache),
             str(model)], setup=lambda: cache.unlink(missing_ok=True), cwd=tmp,
            env={"MLSEC_SIGNING_KEY": ""}),
        "mlsec verify": h.Contender("mlsec verify --public-key (re-hash, never cached)",
                                    [str(BIN / "mlsec"), "verify", "--public-key", str(pub), str(model)], cwd=tmp),
        "mlsec digests": h.Contender(
            "mlsec digests alone (python -c DigestCache().tree)",
            [sys.executable, "-I", "-c", "import sys; from pathlib import Path; "
             "from mlsec_actions.digests import DigestCache; print(len(DigestCache().tree(Path(sys.argv[1]))))",
             str(model)]),
        "model_signing": h.Contender(
            "model_signing sign key", [str(BIN / "model_signing"), "sign", "key", "--private_key", str(key),
                                       "--signature", str(bundle), str(model)],
            setup=lambda: bundle.unlink(missing_ok=True),
            check=lambda done: None if bundle.is_file() else "no signature written"),
        "openssl": h.Contender(
            f"openssl dgst -sha256, {os.cpu_count()} processes",
            ["sh", "-c", f'find "$1" -type f -print0 | xargs -0 -P{os.cpu_count()} -n1 openssl dgst -sha256 '
                         '>/dev/null', "sh", str(model)]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--gb", type=float, default=4.0, help="folder size in GB (default 4)")
    ap.add_argument("--files", type=int, default=4, help="large files it is split into (default 4)")
    ap.add_argument("--runs", type=int, default=5, help="counted runs (pairs) per comparison (default 5)")
    ap.add_argument("--dir", type=Path, default=None, help="where to create the temp folder")
    ap.add_argument("--one-file", action="store_true", help="also time a one-file folder (the one-core bound)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mlsec-hash-bench-", dir=args.dir))
    try:
        model = tmp / "model"
        model.mkdir()
        files = generate(model, args.gb, args.files)
        nbytes = sum(p.stat().st_size for p in files)
        key, pub = _keys(tmp)
        bound = h.sha256_bound_mb_s()
        print(h.machine())
        print(f"folder: {nbytes / 1e6:,.0f} MB in {len(files)} files; SHA-256 bound (openssl speed x cores): "
              f"{bound or 0:,.0f} MB/s")
        c = contenders(model, tmp, key, pub)
        subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
        print(h.page_cache(files), flush=True)
        for a, b in (("mlsec sign", "model_signing"), ("mlsec digests", "openssl"), ("mlsec verify", "openssl")):
            pair = h.compare(c[a], c[b], runs=args.runs)
            print(pair.describe())
            print("  " + h.throughput(nbytes, pair.a, bound))
            print("  " + h.throughput(nbytes, pair.b, bound), flush=True)
        small = tmp / "small"
        small.mkdir()
        (small / "config.json").write_text("{}\n", encoding="utf-8")
        fixed = contenders(small, tmp, key, pub)
        print("fixed cost, a one-file folder (target under 0.2 s):")
        print(h.compare(fixed["mlsec sign"], fixed["model_signing"], runs=args.runs).describe())
        if args.one_file:
            one = tmp / "one"
            one.mkdir()
            (model / files[0].name).rename(one / files[0].name)
            single = contenders(one, tmp, key, pub)
            size = (one / files[0].name).stat().st_size
            per_core = bound / (os.cpu_count() or 1) if bound else None
            print(f"one file of {size / 1e6:,.0f} MB (SHA-256 of one file is serial: the bound is ONE core):")
            pair = h.compare(single["mlsec digests"], single["openssl"], runs=args.runs)
            print(pair.describe())
            for s in (pair.a, pair.b):
                print("  " + h.throughput(size, s, per_core, cores=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
