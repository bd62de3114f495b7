"""Peak memory and time of `mlsec model-scan` on container bombs, each a whole process run N times.

Fair because the figure is the whole scanner process (median with min-max; peak RSS from the kernel's
accounting of that process, started by the harness's small spawner so the bomb built in this process is not
counted), and a run that crashed or wrote no SARIF counts as failed, not as a small one.
Target (issues 9 and 10): every bomb under 100 MB peak RSS, independent of the sizes the bomb declares.
Run: .venv/bin/python benchmarks/container_bombs.py [NAME ...] [--runs 3]
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io
import json
import lzma
import os
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _harness as h  # run as a script from anywhere

BIN = Path(sys.executable).parent
_MIB = 1024 * 1024


def _zeros_stream(compressor: object, total: int) -> bytes:
    out = io.BytesIO()
    chunk = b"\0" * _MIB
    for _ in range(total // _MIB):
        out.write(compressor.compress(chunk))  # type: ignore[attr-defined]
    out.write(compressor.flush())  # type: ignore[attr-defined]
    return out.getvalue()


def _gzip_zeros(total: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as handle:
        chunk = b"\0" * _MIB
        for _ in range(total // _MIB):
            handle.write(chunk)
    return out.getvalue()


def _zstd_zeros(total: int) -> bytes:
    from backports import zstd

    return _zeros_stream(zstd.ZstdCompressor(), total)


def _lz4_zeros(total: int) -> bytes:
    import lz4.frame  # type: ignore[import-untyped]

    out = io.BytesIO()
    with lz4.frame.LZ4FrameFile(out, "wb") as handle:
        chunk = b"\0" * _MIB
        for _ in range(total // _MIB):
            handle.write(chunk)
    return out.getvalue()


def _zip_declared() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z, z.open("a/data.pkl", "w", force_zip64=True) as h:
        chunk = b"\0" * _MIB
        for _ in range(1024):
            h.write(chunk)
    return out.getvalue()


def _zip_lying() -> bytes:
    # Declares 1 KiB uncompressed; inflates to 1 GiB (sizes patched in both headers).
    data = bytearray(_zip_declared())
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(sig)
        data[pos + at:pos + at + 4] = (1024).to_bytes(4, "little")
    return bytes(data)


def _seven_zip_solid() -> bytes:
    import py7zr

    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as z:
        for i in range(16):
            z.writestr(b"\0" * (64 * _MIB), f"part{i}")
    return out.getvalue()


def _nested_gzip() -> bytes:
    data = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00idR."
    for _ in range(12):
        data = gzip.compress(data, mtime=0)
    return data


def _many_entries() -> bytes:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests import zip_craft

    return zip_craft.archive([zip_craft.Record(f"f{i:06d}".encode(), b"") for i in range(200_000)])


def _random_gzip() -> bytes:
    return gzip.compress(os.urandom(200 * _MIB), compresslevel=1, mtime=0)


BOMBS: dict[str, Callable[[], bytes]] = {
    "gzip-1GiB-zeros": lambda: _gzip_zeros(1024 * _MIB),
    "zstd-1GiB-zeros": lambda: _zstd_zeros(1024 * _MIB),
    "lz4-1GiB-zeros": lambda: _lz4_zeros(1024 * _MIB),
    "xz-256MiB-zeros": lambda: _zeros_stream(lzma.LZMACompressor(preset=0), 256 * _MIB),
    "lzma-alone-256MiB-zeros": lambda: _zeros_stream(lzma.LZMACompressor(lzma.FORMAT_ALONE, preset=0), 256 * _MIB),
    "bz2-256MiB-zeros": lambda: _zeros_stream(bz2.BZ2Compressor(9), 256 * _MIB),
    "zlib-1GiB-zeros": lambda: _zeros_stream(zlib.compressobj(9), 1024 * _MIB),
    "zip-declared-1GiB": _zip_declared,
    "zip-lying-sizes-1GiB": _zip_lying,
    "7z-solid-1GiB": _seven_zip_solid,
    "gzip-nested-12": _nested_gzip,
    "zip-200k-entries": _many_entries,
    "gzip-200MiB-random": _random_gzip,
}


def _contender(path: Path, out: Path) -> tuple[h.Contender, Path]:
    sarif = out / f"{path.name}.sarif"

    def check(done: object) -> str | None:
        return None if sarif.is_file() else "no SARIF written"

    return h.Contender(path.name, [str(BIN / "mlsec"), "model-scan", str(path), "--no-modelscan", "--sarif",
                                   str(sarif), "--source-root", str(path.parent)],
                       check=check, setup=lambda: sarif.unlink(missing_ok=True)), sarif


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"bombs to run (default: all): {', '.join(BOMBS)}")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    h.start()  # before the bombs are built in this process's memory
    print(h.machine())
    print(f"{'bomb':26} {'file MiB':>9}  whole mlsec process: median (min-max), peak RSS; result")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names or list(BOMBS):
            path = Path(tmp) / name
            path.write_bytes(BOMBS[name]())
            contender, sarif = _contender(path, Path(tmp))
            stats = h.measure(contender, runs=args.runs)
            found = sorted({r["ruleId"] for r in json.loads(sarif.read_text())["runs"][0]["results"]}) \
                if sarif.is_file() else []
            verdict = "met" if stats.ok and stats.peak_mb() < 100 else "MISSED"
            print(f"{name:26} {path.stat().st_size / _MIB:9.2f}  {stats.describe().split(': ', 1)[1]}  "
                  f"[{verdict}] {', '.join(found) or 'no findings'}", flush=True)
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
