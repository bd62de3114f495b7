"""Tool-venv install, cold against warm: a stage job's install without the cache and with a verified restore.

cold: `actions/_setup/install.sh` with no venv in place (uv's package cache warm, as in the e2e jobs and on a
runner whose setup cache is kept); with --empty-uv-cache, uv's cache (and uv itself) is removed before every cold
run, as on a fresh hosted runner: uv is installed with pip and every wheel is downloaded from PyPI.
warm: what a stage job does with the cache (docs/workflows.md#tool-venv-cache): the key step (`install.sh` with
MLSEC_SETUP_MODE=key), the restore as actions/cache does it locally (`tar -x` of a zstd archive of the venv,
made once from a trusted fresh install; the download from GitHub's cache service is not in this figure, the
archive's size is printed instead), then `install.sh` with the expected digest, which checks every file.
A warm run that did not use the restored venv (it installed fresh) is a failed run, not a fast one.

Both run at the same runner temp path (an entry is only ever restored where it was built), pairs alternate,
and each run starts with no venv in place.

Run: .venv/bin/python benchmarks/venv_cache.py [--runs 5] [--extras ""] [--extras trivy,secrets,sast,iac]
     [--empty-uv-cache]
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

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "actions" / "_setup" / "install.sh"
# The e2e harness's uv cache (tests/e2e/act_harness.py SETUP_CACHE): warm on a machine that ran the e2e tests.
SETUP_CACHE = Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "mlsec-setup-e2e"
WARM = """set -euo pipefail
out="$RUNNER_TEMP/key.out"; : > "$out"
GITHUB_OUTPUT="$out" MLSEC_SETUP_MODE=key MLSEC_SETUP_VENV_DIGEST="$DIGEST" bash "$INSTALL"
[[ "$(grep '^cache-key=' "$out")" == "cache-key=$KEY" ]] || { echo "key changed" >&2; exit 3; }
mkdir -p "$RUNNER_TEMP/mlsec-venv"
tar -x --use-compress-program 'zstd -d -T0' -f "$ARCHIVE" -C "$RUNNER_TEMP/mlsec-venv"
MLSEC_SETUP_VENV_DIGEST="$DIGEST" bash "$INSTALL"
"""


def _base_env(temp: Path, extras: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("MLSEC_", "GITHUB_", "PIP_", "UV_", "PYTHON", "VIRTUAL_ENV"))}
    return {**keep, "RUNNER_TEMP": str(temp), "MLSEC_SETUP_EXTRAS": extras, "MLSEC_SETUP_CACHE_DIR": str(SETUP_CACHE)}


def _new_job(temp: Path) -> None:
    for name in ("mlsec-venv", "mlsec-setup"):
        shutil.rmtree(temp / name, ignore_errors=True)


def _fresh(c: subprocess.CompletedProcess[bytes]) -> str | None:
    text = c.stdout.decode("utf-8", "replace")
    return None if "mlsec-actions " in text and "restored from" not in text else "did not install fresh"


def _restored(c: subprocess.CompletedProcess[bytes]) -> str | None:
    text = c.stdout.decode("utf-8", "replace")
    return None if "restored from the tool-venv cache" in text else "did not use the restored venv"


def bench(extras: str, runs: int, tmp: Path, empty_uv_cache: bool) -> None:
    temp = tmp / "runner-temp"
    temp.mkdir()
    env = _base_env(temp, extras)
    cold_env = env
    cold_setup = lambda: _new_job(temp)  # noqa: E731
    if empty_uv_cache:
        fresh = tmp / "fresh-setup-cache"
        cold_env = {**env, "MLSEC_SETUP_CACHE_DIR": str(fresh)}

        def cold_setup() -> None:
            _new_job(temp)
            shutil.rmtree(fresh, ignore_errors=True)
    out = tmp / "save.out"
    out.write_text("", encoding="utf-8")
    # The trusted job: a fresh install that gives the digest and key, archived as the cache would keep it.
    subprocess.run(["bash", str(INSTALL)], env={**env, "GITHUB_OUTPUT": str(out), "MLSEC_SETUP_VENV_SAVE": "true"},
                   check=True, capture_output=True)
    got = dict(line.split("=", 1) for line in out.read_text(encoding="utf-8").splitlines() if "=" in line)
    archive = tmp / "venv.tar.zst"
    subprocess.run(["tar", "-c", "--use-compress-program", "zstd -T0", "-f", str(archive), "-C",
                    str(temp / "mlsec-venv"), "."], check=True)
    files = sum(1 for _ in (temp / "mlsec-venv").rglob("*"))
    size = sum(p.lstat().st_size for p in (temp / "mlsec-venv").rglob("*") if p.is_file() and not p.is_symlink())
    print(f"extras {extras!r}: venv {size / 2**20:.0f} MiB in {files} entries, archive "
          f"{archive.stat().st_size / 2**20:.0f} MiB (zstd)", flush=True)
    label = "cold install, empty uv cache" if empty_uv_cache else "cold install"
    cold = h.Contender(f"{label} ({extras or 'no extras'})", ["bash", str(INSTALL)], env=cold_env,
                       check=_fresh, setup=cold_setup)
    warm = h.Contender(f"warm: key + restore + verify ({extras or 'no extras'})", ["bash", "-c", WARM],
                       env={**env, "INSTALL": str(INSTALL), "DIGEST": got["venv-digest"], "KEY": got["cache-key"],
                            "ARCHIVE": str(archive)},
                       check=_restored, setup=lambda: _new_job(temp))
    print(h.compare(cold, warm, runs=runs).describe(), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--extras", action="append", help="extras sets (default: none, and code-scan's)")
    ap.add_argument("--empty-uv-cache", action="store_true", help="cold runs start with no uv cache (a fresh runner)")
    args = ap.parse_args(argv)
    h.start()
    print(h.machine())
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    for extras in args.extras or ["", "trivy,secrets,sast,iac"]:
        with tempfile.TemporaryDirectory(prefix="mlsec-bench-venv-") as tmp:
            bench(extras, args.runs, Path(tmp), args.empty_uv_cache)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
