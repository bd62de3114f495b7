"""nmap as infra-scan's port and service scanner: one host per run, exactly the host the caller and the policy
both named (stages/infra_targets.py checks that before this module is reached).

How it runs: a TCP connect scan (`-sT --unprivileged`: no raw packets, the same on a laptop and a runner),
no host discovery (`-Pn`: the host was named, so it is scanned), no DNS (`-n`), XML on standard output
(`-oX -`). Service detection (`-sV --version-light`) only when the policy asks for it: against a silent
port it waits for a banner (about 30 s on loopback). Its data files come from `--datadir`, the folder beside
the binary (Debian's `/usr/share/nmap`), so a `~/.nmap` or `$NMAPDIR` of the caller's account does not
steer it; it starts in an empty folder of ours.

Its report is parsed with `xml_safe` (no DTD, no entities, bounded); a host in it that we did not ask
for is dropped and said (a scanner must not widen what we report on). A report that cannot be read, or
whose run did not finish with `exit="success"`, is a failed run: fail closed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from mlsec_actions.findings import ToolRun, ToolStatus
from mlsec_actions.tools.base import Isolation, ToolSpec, execute, locate, safe

SPEC = ToolSpec(
    name="nmap",
    executable="nmap",
    version_args=("--version",),
    version_pattern=r"[Nn]map version ([0-9][0-9.A-Za-z]*)",
    ok_exit_codes=frozenset({0}),
    install_hint="install nmap (Debian: apt-get install nmap; scripts/bootstrap does it as root)",
    # Data files it looks up in ~/.nmap, $NMAPDIR and its working folder unless --datadir names the folder.
    isolation=Isolation(discovers=("nmap-services", "nmap-service-probes", "nmap-payloads"),
                        forced_flags=("--datadir",), env_prefixes=("NMAP",)),
    version_in_output=True,
)
MAX_REPORT = 32 * 1024 * 1024


@dataclass(frozen=True)
class OpenPort:
    """One open port nmap reported."""

    host: str
    """The host as we asked for it."""
    port: int
    """TCP port number."""
    service: str = ""
    """nmap's service name (from its port table, or probed with service detection)."""
    probed: bool = False
    """The service was detected by probing (`-sV`), not guessed from the port number."""
    tls: bool = False
    """nmap saw TLS on it (`tunnel="ssl"` or an `ssl/...` service)."""
    product: str = ""
    """Product and version nmap detected, when it did."""


def datadir(binary: str) -> str:
    """nmap's data folder beside its binary (`/usr/bin/nmap` -> `/usr/share/nmap`)."""
    real = Path(os.path.realpath(binary))
    return str(real.parent.parent / "share" / "nmap")


def command(host: str, ports: str, *, detect: bool, timeout: float, data: str) -> list[str]:
    """nmap's arguments for one host (`ports` empty: its default port set)."""
    seconds = max(1, int(timeout))
    args = ["-sT", "--unprivileged", "-Pn", "-n", "-T4", "--max-retries", "1", "--host-timeout", f"{seconds}s",
            "--datadir", data, "--noninteractive", "-oX", "-"]
    if ports:
        args += ["-p", ports]
    if detect:
        args += ["-sV", "--version-light"]
    return [*args, host]


def scan(host: str, ports: str, *, detect: bool, timeout: float) -> tuple[list[OpenPort], ToolRun]:
    """Run nmap on one host; the open ports and the run record (failed when the report is not usable)."""
    binary = locate(SPEC)
    data = datadir(binary) if binary else "/usr/share/nmap"
    got = execute(SPEC, command(host, ports, detect=detect, timeout=timeout, data=data), timeout=timeout,
                  max_stdout=MAX_REPORT)
    if got.run.status is not ToolStatus.OK:
        return [], got.run
    try:
        found, version, dropped = parse_report(got.stdout, host)
    except ValueError as e:
        return [], replace(got.run, status=ToolStatus.FAILED, message=safe(f"its report was not usable: {e}"))
    notes = (f"nmap reported {dropped} host(s) that were not asked for; dropped",) if dropped else ()
    return found, replace(got.run, version=version, notes=got.run.notes + notes)


def parse_report(data: bytes, host: str) -> tuple[list[OpenPort], str | None, int]:
    """(open ports of `host`, nmap's version, hosts dropped) from `-oX` output; ValueError when it is not a
    finished nmap report."""
    from mlsec_actions import xml_safe

    try:
        (root,) = xml_safe.parse(data, limits=xml_safe.Limits(max_bytes=MAX_REPORT, max_depth=16))
    except xml_safe.XmlRefused as e:
        raise ValueError(str(e)) from None
    if root.tag != "nmaprun":
        raise ValueError(f"root element is <{root.tag[:40]}>, not <nmaprun>")
    finished = root.find("runstats/finished")
    if finished is None or finished.get("exit") != "success":
        why = finished.get("errormsg", "") if finished is not None else "no runstats"
        raise ValueError(f"the scan did not finish ({why[:200]})")
    found: list[OpenPort] = []
    dropped = seen = 0
    for h in root.iter("host"):
        addrs = {a.get("addr", "") for a in h.iter("address")}
        names = {n.get("name", "").lower() for n in h.iter("hostname")}
        if host not in addrs | names:
            dropped += 1
            continue
        seen += 1
        if h.get("timedout") == "true":
            raise ValueError(f"{host} timed out before its ports were all scanned")
        for p in h.iter("port"):
            state = p.find("state")
            if p.get("protocol") != "tcp" or state is None or state.get("state") != "open":
                continue
            found.append(_port(host, p))
    if not seen:  # a host nmap skipped (down, unresolvable) was not scanned: never read as "nothing open"
        raise ValueError(f"the report has no result for {host}")
    return found, root.get("version"), dropped


def _port(host: str, p: object) -> OpenPort:
    import xml.etree.ElementTree as ET

    assert isinstance(p, ET.Element)
    number = p.get("portid", "")
    if not number.isdigit() or not 1 <= int(number) <= 65535:
        raise ValueError(f"port id {number[:20]!r} is not a port number")
    svc = p.find("service")
    if svc is None:
        return OpenPort(host, int(number))
    name = svc.get("name", "")
    product = " ".join(x for x in (svc.get("product", ""), svc.get("version", "")) if x)
    tls = svc.get("tunnel") == "ssl" or name.startswith("ssl")
    return OpenPort(host, int(number), name, svc.get("method") == "probed", tls, product)
