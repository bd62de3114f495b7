"""infra-scan against hostile inputs: a target the policy does not list (no packet is sent: traced), an nmap
report carrying an entity bomb or a host nobody asked for, and malformed policy allowlists. Each case runs
the real CLI as its own isolated process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.adversarial.observe import strace_path

pytestmark = pytest.mark.integration

ALLOWED = "127.0.0.21"


def _policy(tmp_path: Path, body: str | None = None) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text(body if body is not None else
                    f"version: 1\ninfra-scan:\n  hosts:\n    - host: {ALLOWED}\n      allow:\n        - ports: 22\n")
    return path


def _fake_nmap(tmp_path: Path, stdout: bytes) -> tuple[Path, Path]:
    report = tmp_path / "report.xml"
    report.write_bytes(stdout)
    canary = tmp_path / "nmap-started"
    fake = tmp_path / "fake-nmap"
    fake.write_text(f"#!/bin/sh\ntouch {canary}\ncat {report}\nexit 0\n")
    fake.chmod(0o755)
    return fake, canary


def _stage(tmp_path: Path, *args: str, env: dict[str, str] | None = None, trace: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-I", "-m", "mlsec_actions", "infra-scan", str(tmp_path), "--sarif",
            str(tmp_path / "out" / "infra-scan.sarif"), *args]
    if trace is not None:
        argv = [strace_path(), "-f", "-qq", "-e", "trace=execve,connect,sendto,sendmsg", "-o", str(trace), "--", *argv]
    return subprocess.run(argv, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", **(env or {})}, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize("target", ["127.0.0.23", "127.0.0.23:22", "127.0.0.0/24", "127.0.0.21-23", "-iL/etc/hosts",
                                    "localhost"])
def test_a_target_outside_the_allowlist_sends_no_packet(tmp_path: Path, target: str) -> None:
    trace = tmp_path / "trace.log"
    proc = _stage(tmp_path, "--policy", str(_policy(tmp_path)), "--target", ALLOWED, "--target", target, trace=trace)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("mlsec: error: "), proc.stderr
    log = trace.read_text()
    execs = re.findall(r'execve\("([^"]+)"', log)
    assert all(not e.endswith("nmap") for e in execs) and len(execs) == 1, execs  # only our interpreter
    inet = [ln for ln in log.splitlines() if re.search(r"(connect|sendto|sendmsg)\(.*AF_INET", ln)]
    assert inet == [], inet  # no TCP/UDP packet to any host
    assert not (tmp_path / "out" / "infra-scan.sarif").exists()


BOMB = (b'<?xml version="1.0"?>\n<!DOCTYPE nmaprun [<!ENTITY a "aaaaaaaaaaaaaaaaaaaa">'
        + b"".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 20}">'.encode() for i in range(8))
        + b']>\n<nmaprun scanner="nmap" version="7.93"><host><address addr="127.0.0.21" addrtype="ipv4"/>'
          b'<ports><port protocol="tcp" portid="22"><state state="open"/><service name="&i;"/></port></ports>'
          b'</host><runstats><finished exit="success"/></runstats></nmaprun>\n')
EXTERNAL = (b'<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<nmaprun><host><address addr="127.0.0.21"/></host><runstats><finished exit="success"/></runstats>'
            b"</nmaprun>")
OTHER_HOST = (b'<?xml version="1.0"?><!DOCTYPE nmaprun><nmaprun version="7.93"><host><address addr="10.9.9.9"/>'
              b'<ports><port protocol="tcp" portid="23"><state state="open"/></port></ports></host>'
              b'<runstats><finished exit="success"/></runstats></nmaprun>')


@pytest.mark.parametrize(("report", "why"), [(BOMB, "DTD"), (EXTERNAL, "DTD"),
                                             (OTHER_HOST, "no result for 127.0.0.21")])
def test_a_hostile_nmap_report_fails_the_run_closed(tmp_path: Path, report: bytes, why: str) -> None:
    fake, canary = _fake_nmap(tmp_path, report)
    proc = _stage(tmp_path, "--policy", str(_policy(tmp_path)), "--target", f"{ALLOWED}:22",
                  env={"MLSEC_NMAP_BIN": str(fake)})
    assert canary.exists() and proc.returncode == 1, proc.stderr
    run = json.loads((tmp_path / "out" / "infra-scan.sarif").read_text())["runs"][0]
    (nmap_run,) = [i for i in run["invocations"] if i["properties"]["tool"] == "nmap"]
    assert not nmap_run["executionSuccessful"] and why in json.dumps(nmap_run), nmap_run
    assert run["results"] == [] and "10.9.9.9" not in json.dumps(run)


@pytest.mark.parametrize("body", [
    "version: 1\ninfra-scan:\n  hosts: '*'\n",
    "version: 1\ninfra-scan:\n  hosts:\n    - host: 127.0.0.0/8\n",
    "version: 1\ninfra-scan:\n  hosts:\n    - host: 127.0.0.21\n      allow:\n        - ports: 1-99999\n",
    "version: 1\ninfra-scan:\n  hosts:\n    - host: 127.0.0.21\n      allow:\n        - ports: '22; rm -rf /'\n",
    "version: 1\ninfra-scan:\n  hosts:\n    - host: 127.0.0.21\n      extra: 1\n",
    "version: 1\ninfra-scan:\n  hosts:\n    - host: 127.0.0.21\n    - host: 127.0.0.021\n",
    "version: 1\ninfra-scan:\n  hosts:\n    - {host: 127.0.0.21, allow: [{ports: 22, service: ssh}]}\n",
    "version: 1\ninfra-scan: [127.0.0.21]\n",
    "version: 1\ninfra-scan:\n  hosts:\n    - host: \"127.0.0.21\\n::error::x\"\n",
    "version: 1\ninfra-scan:\n  tls: {min-version: SSLv2}\n",
    "version: 1\ninfra-scan:\n\thosts: []\n",
    "\xff\xfe",
])
def test_a_malformed_allowlist_is_refused_before_anything_runs(tmp_path: Path, body: str) -> None:
    fake, canary = _fake_nmap(tmp_path, OTHER_HOST)
    policy = tmp_path / "policy.yml"
    policy.write_bytes(body.encode("utf-8", "surrogateescape") if body != "\xff\xfe" else b"\xff\xfe")
    proc = _stage(tmp_path, "--policy", str(policy), "--target", ALLOWED, env={"MLSEC_NMAP_BIN": str(fake)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "policy.yml" in proc.stderr, proc.stderr
    assert not re.search(r"^::", proc.stderr, flags=re.M)
    assert not canary.exists()
