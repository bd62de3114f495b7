"""`mlsec sign` + `mlsec verify` (key backend) on many small files and on one model folder, and with
`--src DIR` the same commands of another checkout's `src`, paired, for a before/after.

Fair because every figure is a whole process (median with min-max and CPU time, which a machine shared
with other work still measures fairly), each sign run starts with its digest cache deleted, a failed run
counts as failed, and a before/after alternates the two versions A B A B on the same files. `--src`:
e.g. the commit before a change, unpacked with `git archive <commit> src | tar -x -C DIR/..`.

    .venv/bin/python benchmarks/sign_verify.py [--files 1000] [--folder-mb 512] [--runs 5] [--src /tmp/before/src]
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

MB = 1024 * 1024


def _mlsec(name: str, src: Path | None, args: list[str], cwd: Path, cache: Path) -> h.Contender:
    env = {"MLSEC_SIGNING_KEY": ""}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return h.Contender(name, [sys.executable, "-m", "mlsec_actions", *args], cwd=cwd, env=env,
                       setup=lambda: cache.unlink(missing_ok=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000, help="small files signed one bundle each (default 1000)")
    ap.add_argument("--folder-mb", type=int, default=512, help="model folder size in MB (default 512)")
    ap.add_argument("--src", type=Path, default=None, help="run this src folder instead of the installed package")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mlsec-sign-bench-"))
    try:
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "k1.pem"],
                       cwd=tmp, check=True)
        subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", "k1.pem", "-out", "k.pem"], cwd=tmp,
                       check=True)
        subprocess.run(["openssl", "ec", "-in", "k.pem", "-pubout", "-out", "k.pub"], cwd=tmp, check=True,
                       stderr=subprocess.DEVNULL)
        (tmp / "files").mkdir()
        names = []
        for i in range(args.files):
            (tmp / "files" / f"f{i:05d}.json").write_bytes(os.urandom(16 * 1024))
            names.append(f"files/f{i:05d}.json")
        model = tmp / "model"
        (model / "shards").mkdir(parents=True)
        block = os.urandom(MB)
        for i in range(args.folder_mb // 64):
            (model / "shards" / f"s{i:03d}.safetensors").write_bytes(block * 64)
        print(h.machine())
        print(f"{args.files} files of 16 KB; a {args.folder_mb} MB model folder; {args.runs} runs"
              + (f"; pairs: installed package vs {args.src}" if args.src else ""))
        rows = {
            "sign files": ["sign", "--backend", "key", "--key", "k.pem", "--digest-cache", "c.json", *names],
            "verify files": ["verify", "--public-key", "k.pub", *names],
            "sign folder": ["sign", "--backend", "key", "--key", "k.pem", "--digest-cache", "c.json", "model"],
            "verify folder": ["verify", "--public-key", "k.pub", "model"],
        }
        for label, cmd in rows.items():
            ours = _mlsec(label, None, cmd, tmp, tmp / "c.json")
            if args.src is None:
                print(h.measure(ours, runs=args.runs).describe(), flush=True)
            else:
                print(h.compare(ours, _mlsec(f"{label} ({args.src})", args.src, cmd, tmp, tmp / "c.json"),
                                runs=args.runs).describe(), flush=True)
        print(h.measure(h.Contender("python -c pass", [sys.executable, "-c", "pass"]), runs=args.runs).describe())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
