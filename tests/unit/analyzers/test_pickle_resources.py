"""Memory follows the walker's caps, not the attacker's claims: each file is scanned in a fresh process whose
peak RSS is measured (sparse files stand for the huge ones, so the test itself stays small on disk).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests import pickle_corpus as pc

# VmHWM is this process's own peak RSS (ru_maxrss would carry the parent's over the fork and exec).
_CHILD = """
import json, sys
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.dispatch import Dispatcher
def hwm():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
path = sys.argv[1]
before = hwm()
d = Dispatcher()
findings = d.scan_file(Blob("f", None, 0, lambda: open(path, "rb")))
print(json.dumps({"rules": sorted({f.rule.id for f in findings}),
                  "severities": sorted({f.severity.name for f in findings}),
                  "peak_mib": hwm(), "baseline_mib": before, "errors": d.errors}))
"""
LIMIT_MIB = 100
EVIL = pc.call("os", "system", pc.CMD, protocol=4, stack=True)


def _scan(path: Path) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, timeout=300,
                          check=True)
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def _sparse(path: Path, head: bytes, hole: int, tail: bytes) -> Path:
    with path.open("wb") as f:
        f.write(head)
        f.seek(hole, 1)
        f.write(tail)
    return path


def test_declared_2gb_binbytes8_allocates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "claims.pkl"
    path.write_bytes(EVIL[:-1] + b"\x8e" + struct.pack("<Q", 2 << 30) + b"only this")
    result = _scan(path)
    assert "pickle/dangerous-global" in result["rules"] and "pickle/malformed" in result["rules"]  # type: ignore[operator]
    assert float(result["peak_mib"]) < LIMIT_MIB  # type: ignore[arg-type]


def test_1gb_of_byte_strings_is_skipped_not_read(tmp_path: Path) -> None:
    size = 1 << 30
    head = b"\x80\x04(" + b"\x8e" + struct.pack("<Q", size)
    path = _sparse(tmp_path / "big.pkl", head, size, b"0" + EVIL[2:])
    result = _scan(path)
    assert "CRITICAL" in result["severities"]  # type: ignore[operator]  # the payload after the 1 GB literal
    assert float(result["peak_mib"]) < LIMIT_MIB  # type: ignore[arg-type]


@pytest.mark.parametrize(("label", "body"), [
    ("10 MB of MARK", b"(" * (10 << 20)),
    ("5 M memoized values", b"N\x94" * (5 << 20)),
    ("5 M stacked values", b"N" * (5 << 20)),
    ("a list appended 5 M times", b"]" + b"Na" * (5 << 20)),
])
def test_opcode_floods_stay_bounded(tmp_path: Path, label: str, body: bytes) -> None:
    path = tmp_path / "flood.pkl"
    path.write_bytes(b"\x80\x04" + body + EVIL[2:])
    result = _scan(path)
    assert "CRITICAL" in result["severities"], label  # type: ignore[operator]
    assert float(result["peak_mib"]) < LIMIT_MIB, label  # type: ignore[arg-type]


def test_many_large_literals_are_not_all_kept(tmp_path: Path) -> None:
    # 2,000 byte strings of 100 KiB (200 MB of literals) in one list: materialised up to a budget, then skipped.
    path = tmp_path / "literals.pkl"
    n, size = 2000, 100 * 1024
    with path.open("wb") as f:
        f.write(b"\x80\x04](")
        for _ in range(n):
            f.write(b"B" + struct.pack("<I", size))
            f.seek(size, 1)
        f.write(b"e0" + EVIL[2:])
    # With the file in the page cache, each jump over a skipped literal maps the cached pages around it: the
    # walker must give them back, or RSS follows the file's 200 MB (it did, and this bound was flaky).
    with path.open("rb") as f:
        while f.read(1 << 20):
            pass
    result = _scan(path)
    assert "CRITICAL" in result["severities"]  # type: ignore[operator]
    assert float(result["peak_mib"]) < LIMIT_MIB  # type: ignore[arg-type]


def test_protocol0_string_of_128_mib_is_searched_with_flat_memory(tmp_path: Path) -> None:
    # The line must be read to its newline (CPython does): searched in place, pages given back as it goes.
    path = _sparse(tmp_path / "padded.pkl", b"S'", 128 << 20, b"'\n0" + pc.call("os", "system", pc.CMD, protocol=0))
    result = _scan(path)
    assert result["severities"] == ["CRITICAL"] and result["errors"] == {}
    assert float(result["peak_mib"]) < LIMIT_MIB  # type: ignore[arg-type]


def test_strings_rebuilt_at_load_time_are_charged_to_the_literal_budget(tmp_path: Path) -> None:
    # A 30 KB string joined to itself 20,000 times, each result kept on the stack: 1.2 GB if every one were held.
    big = b"X" + struct.pack("<I", 30_000) + b"a" * 30_000 + b"\x94"
    join = pc.stack_glob("builtins", "str.join") + b"\x94"
    body = b"\x80\x04" + big + join + (b"h\x01\x8c\x00](h\x00h\x00e\x86R" * 20_000)
    path = tmp_path / "joins.pkl"
    path.write_bytes(body + b"0" + EVIL[2:])
    result = _scan(path)
    assert "CRITICAL" in result["severities"] and result["errors"] == {}  # type: ignore[operator]
    assert float(result["peak_mib"]) < LIMIT_MIB  # type: ignore[arg-type]


def test_a_bounded_probe_never_searches_the_whole_file_for_a_newline() -> None:
    from mlsec_actions.analyzers.pickle_machine import Machine
    from mlsec_actions.analyzers.pickle_walk import Report

    data = b"S'" + b"a" * (2 << 20) + b"'\n."
    probe, full = Report(), Report()
    Machine(data, 0, len(data), probe, (), None, max_ops=64).run()  # frame-straddle rescans: thousands of starts
    Machine(data, 0, len(data), full, (), None).run()
    assert probe.errors == [(0, "text argument longer than 1 MiB")] and full.errors == []
