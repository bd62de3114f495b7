"""`mlsec train` under the real strace: undeclared data reads, pinned and declared ones, the network (a TCP
server of the test on a loopback address other than 127.0.0.1, and internet addresses that no packet is ever
sent to), hostile file names, a missing or refused tracer (fail closed under `--network forbid`), and the
process group still killed through strace.

Internet addresses are reached with a UDP `connect`, which sends nothing (it only sets the socket's peer) but
is the same `connect` call strace records for TCP: no traffic leaves this machine (192.0.2.0/24 and 2001:db8::/32
are documentation ranges besides)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsec_actions.training import provenance

pytestmark = pytest.mark.integration
PYTHON = sys.executable
WRITE = "import pathlib; pathlib.Path('model/m.bin').write_bytes(b'w')\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "data.csv").write_text("a,b\n1,2\n")
    (proj / "extra.csv").write_text("c\n3\n")
    (proj / "train.py").write_text("open('data.csv').read(); open('extra.csv').read()\n" + WRITE)
    return proj


def _train(proj: Path, *command: str, extra: tuple[str, ...] = (), env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "mlsec")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_"))}
    base.update(env or {})
    out = proj.parent / "out"
    args = [exe, "train", "--output", "model", "--sarif", str(out / "train.sarif"), "--provenance",
            str(out / "train.provenance.json"), "--log", str(out / "train.log"), *extra, "--", *command]
    return subprocess.run(args, cwd=proj, env=base, capture_output=True, text=True, timeout=timeout, check=False)


def _results(proj: Path) -> tuple[dict[str, object], dict[str, object]]:
    out = proj.parent / "out"
    return (json.loads((out / "train.provenance.json").read_text()), json.loads((out / "train.sarif").read_text()))


def _found(sarif: dict[str, object]) -> list[tuple[str, str, str]]:
    run = sarif["runs"][0]  # type: ignore[index]
    return sorted((r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r["level"])
                  for r in run["results"])


def _roles(doc: dict[str, object]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for d in doc["predicate"]["buildDefinition"]["resolvedDependencies"]:  # type: ignore[index]
        role = d.get("annotations", {}).get("role")
        if role:
            out.setdefault(role, set()).add(d["name"])
    return out


def _gaps(sarif: dict[str, object]) -> str:
    return json.dumps(sarif["runs"][0]["invocations"])  # type: ignore[index]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_undeclared_csv_is_a_finding_and_the_script_is_code(project: Path) -> None:
    proc = _train(project, PYTHON, "train.py", extra=("--input", "data.csv"))
    assert proc.returncode == 0, proc.stderr
    doc, sarif = _results(project)
    assert _found(sarif) == [("train/undeclared-read", "extra.csv", "warning")]
    assert _roles(doc) == {"input": {"data.csv"}, "code": {"train.py"}, "undeclared": {"extra.csv"}}
    facts = [b.get("annotations") for b in doc["predicate"]["runDetails"]["byproducts"]]  # type: ignore[index]
    assert {"observed": True, "hosts": []} in facts


def test_declared_and_pinned_reads_are_not_findings(project: Path) -> None:
    lock = {"version": 1, "artifacts": [{"name": "extra.csv", "url": "https://example.org/extra.csv",
                                         "sha256": _sha(project / "extra.csv")}]}
    (project / "mlsec.lock").write_text(json.dumps(lock))
    proc = _train(project, PYTHON, "train.py", extra=("--input", "data.csv"))
    assert proc.returncode == 0, proc.stderr
    doc, sarif = _results(project)
    assert _found(sarif) == []
    assert _roles(doc)["pinned"] == {"extra.csv"}
    # The same file with other content than its pin is read undeclared.
    (project / "extra.csv").write_text("poisoned\n")
    (project / "model" / "m.bin").unlink()
    proc = _train(project, PYTHON, "train.py", extra=("--input", "data.csv"))
    assert proc.returncode == 0, proc.stderr
    assert _found(_results(project)[1]) == [("train/undeclared-read", "extra.csv", "warning")]


@pytest.fixture
def loopback_server() -> Iterator[tuple[str, int]]:
    """A TCP server on 127.0.0.2 that accepts one connection at a time and closes it (bounded: daemon thread,
    closed at teardown)."""
    server = socket.create_server(("127.0.0.2", 0))
    server.settimeout(30)

    def serve() -> None:
        for _ in range(4):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[:2]
    server.close()


NETWORK = """\
import socket, sys
c = socket.create_connection(({host!r}, {port}), timeout=10); c.close()  # loopback: allowed
for family, address in ((socket.AF_INET, ("192.0.2.1", 9)), (socket.AF_INET6, ("2001:db8::1", 443))):
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.connect(address)  # UDP: sets the peer, sends nothing
    except OSError:
        pass  # no IPv6 route here: the call is still made and traced
""" + WRITE


@pytest.mark.parametrize(("network", "level", "code"), [("allow", "note", 0), ("forbid", "error", 0)])
def test_network_access_records_the_hosts(project: Path, loopback_server: tuple[str, int], network: str,
                                          level: str, code: int) -> None:
    (project / "net.py").write_text(NETWORK.format(host=loopback_server[0], port=loopback_server[1]))
    proc = _train(project, PYTHON, "net.py", extra=("--network", network))
    assert proc.returncode == code, proc.stderr
    doc, sarif = _results(project)
    assert _found(sarif) == [("train/network-access", "net.py", level)] * 2
    hosts = {r["properties"]["host"] for r in sarif["runs"][0]["results"]}  # type: ignore[index]
    assert hosts == {"192.0.2.1:9", "[2001:db8::1]:443"}
    network_fact = next(b for b in doc["predicate"]["runDetails"]["byproducts"] if b["name"] == "network")
    assert network_fact["annotations"] == {"observed": True, "hosts": ["192.0.2.1:9", "[2001:db8::1]:443"]}


def test_hostile_names_are_read_back_exactly(project: Path) -> None:
    names = [b"new\nline.csv", b'quote"and>angle<.csv', b"bad\xff\xfeutf8.csv", b"tab\there.dat"]
    for name in names:
        (project / os.fsdecode(name)).write_bytes(b"x")
    (project / "hostile.py").write_text(
        "import os\nfor n in sorted(os.listdir(b'.')):\n"
        "    if n.endswith((b'.csv', b'.dat')) and n not in (b'data.csv', b'extra.csv'):\n"
        "        open(n, 'rb').read()\n" + WRITE)
    proc = _train(project, PYTHON, "hostile.py")
    assert proc.returncode == 0, proc.stderr
    doc, sarif = _results(project)
    assert _roles(doc)["undeclared"] == {provenance.escaped(os.fsdecode(n)) for n in names}
    assert [r for r, _, _ in _found(sarif)] == ["train/undeclared-read"] * len(names)


def _no_strace_path(tmp_path: Path) -> str:
    """A PATH without strace that still has what the command needs (its interpreter is given by full path)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    return str(empty)


def test_missing_strace_is_a_coverage_gap_and_fails_closed_under_forbid(project: Path, tmp_path: Path) -> None:
    env = {"PATH": _no_strace_path(tmp_path)}
    proc = _train(project, PYTHON, "train.py", env=env)
    assert proc.returncode == 0, proc.stderr
    doc, sarif = _results(project)
    assert _found(sarif) == [] and (project / "model" / "m.bin").exists()  # the run still happened
    assert "files read and network access were not observed: strace is not installed" in _gaps(sarif)
    fact = next(b for b in doc["predicate"]["runDetails"]["byproducts"] if b["name"] == "network")
    assert fact["annotations"] == {"observed": False}
    (project / "model" / "m.bin").unlink()
    proc = _train(project, PYTHON, "train.py", extra=("--network", "forbid"), env=env)
    assert proc.returncode == 1
    failed = [i for i in _results(project)[1]["runs"][0]["invocations"] if not i["executionSuccessful"]]  # type: ignore[index]
    assert failed and "--network forbid, but the network cannot be observed" in json.dumps(failed)


def test_refused_ptrace_is_a_coverage_gap(project: Path, tmp_path: Path) -> None:
    # strace's own words where ptrace is denied (a container without CAP_SYS_PTRACE, a seccomp profile).
    fake = tmp_path / "strace"
    fake.write_text("#!/bin/sh\necho 'strace: test_ptrace_get_syscall_info: PTRACE_TRACEME: Operation not "
                    "permitted' >&2\nexit 1\n")
    fake.chmod(0o755)
    proc = _train(project, PYTHON, "train.py", env={"MLSEC_STRACE_BIN": str(fake)})
    assert proc.returncode == 0, proc.stderr
    sarif = _results(project)[1]
    assert (project / "model" / "m.bin").exists()
    assert "PTRACE_TRACEME: Operation not permitted" in _gaps(sarif)
    proc = _train(project, PYTHON, "train.py", extra=("--no-trace", "--network", "forbid"))
    assert proc.returncode == 2 and "drop --no-trace" in proc.stderr


def test_timeout_kills_grandchildren_through_strace(project: Path, tmp_path: Path) -> None:
    marker = tmp_path / "grandchild-wrote"
    (project / "hang.py").write_text(
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time, pathlib; time.sleep(3); "
        f"pathlib.Path({json.dumps(str(marker))}).write_text(\"late\")'])\n"
        "time.sleep(60)\n")
    proc = _train(project, PYTHON, "hang.py", extra=("--timeout", "1"))
    assert proc.returncode == 1
    assert "timed out" in _gaps(_results(project)[1])
    time.sleep(4)  # past the grandchild's own sleep: had it survived, it would have written by now
    assert not marker.exists()


def test_the_run_ends_with_the_command_not_its_leftover_children(project: Path, tmp_path: Path) -> None:
    # strace -f waits for every traced process; the run must still end when the command itself exits.
    marker = tmp_path / "leftover-wrote"
    (project / "leave.py").write_text(
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time, pathlib; time.sleep(30); "
        f"pathlib.Path({json.dumps(str(marker))}).write_text(\"late\")'])\n" + WRITE + "sys.exit(3)\n")
    proc = _train(project, PYTHON, "leave.py", extra=("--timeout", "20"))
    assert proc.returncode == 1
    doc, sarif = _results(project)
    assert "exited 3" in _gaps(sarif)
    assert doc["predicate"]["runDetails"]["byproducts"][0]["annotations"]["exitCode"] == 3
