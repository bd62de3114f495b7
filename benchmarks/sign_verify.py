"""`mlsec sign` + `mlsec verify` (key backend) on many small files and on one model folder.

Every file is now signed as a typed in-toto statement (DSSE) instead of a bare digest; this measures
what that costs per file (wall and CPU time: CPU time is what a machine shared with other work still
measures fairly), and what a folder verification (walk that sees every entry, re-hash with no
cache) costs. `--src DIR` runs another checkout's `src` (e.g. the commit before the change, unpacked
with `git archive <commit> src | tar -x -C DIR/..`) for a before/after on the same machine. Not a test.

    .venv/bin/python benchmarks/sign_verify.py [--files 1000] [--folder-mb 512] [--src /tmp/before/src]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1024 * 1024


def _mlsec(src: Path | None, *args: str, cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys) of one run; CPU time is what survives a busy machine."""
    env = dict(os.environ)
    env.pop("MLSEC_SIGNING_KEY", None)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlsec_actions", *args], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000, help="small files signed one bundle each (default 1000)")
    ap.add_argument("--folder-mb", type=int, default=512, help="model folder size in MB (default 512)")
    ap.add_argument("--src", type=Path, default=None, help="run this src folder instead of the installed package")
    ap.add_argument("--repeat", type=int, default=3)
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
        where = "installed package" if args.src is None else str(args.src)
        print(f"{where}: {args.files} files of 16 KB; a {args.folder_mb} MB model folder; best of {args.repeat}")
        rows = {
            "sign files": ["sign", "--backend", "key", "--key", "k.pem", "--digest-cache", "c.json", *names],
            "verify files": ["verify", "--public-key", "k.pub", *names],
            "sign folder": ["sign", "--backend", "key", "--key", "k.pem", "--digest-cache", "c.json", "model"],
            "verify folder": ["verify", "--public-key", "k.pub", "model"],
        }
        for label, cmd in rows.items():
            runs = [_mlsec(args.src, *cmd, cwd=tmp) for _ in range(args.repeat)]
            print(f"{label:<16} wall {min(r[0] for r in runs):7.2f} s   CPU {min(r[1] for r in runs):7.2f} s",
                  flush=True)
            (tmp / "c.json").unlink(missing_ok=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        print(f"(python start-up alone {time.perf_counter() - start:.2f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
