"""infra-scan's inputs: the caller's `--target HOST[:PORTS]` list and the policy's `infra-scan` section.

A host is contacted only when both name it: the caller lists it as a target and the policy's
`infra-scan.hosts` allowlist has an entry for it. Everything else is refused (`UsageError`, exit 2) before
any tool starts. Hosts are an IP address literal or a DNS name, never an nmap range, CIDR block, wildcard or
option (`-iL`), so what nmap is handed is exactly one host. Reference: docs/infra-scan.md#targets.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsec_actions.errors import InputError, UsageError

MAX_TARGETS = 64
MAX_PORT_ITEMS = 256
_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
_PORTS = re.compile(r"^\d{1,5}(?:-\d{1,5})?(?:,\d{1,5}(?:-\d{1,5})?)*$")
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True)
class PortRange:
    """Ports `low` to `high`, both included."""

    low: int
    """First port."""
    high: int
    """Last port."""

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


@dataclass(frozen=True)
class Target:
    """One host the caller asked to scan."""

    host: str
    """Normalised host: an IP address in its canonical form, or a lower-case DNS name."""
    ports: tuple[PortRange, ...] = ()
    """Ports to scan; empty: nmap's default set (its 1,000 most common TCP ports)."""

    @property
    def port_spec(self) -> str:
        """The ports as nmap's `-p` argument."""
        return ",".join(str(r) for r in self.ports)


@dataclass(frozen=True)
class Allow:
    """One allowlist entry of a host: these ports may be open (with this service, when named)."""

    ports: tuple[PortRange, ...]
    """The ports it covers."""
    service: str | None = None
    """The service nmap must detect there (`ssh`, `http`); None: any."""
    tls: bool = False
    """Check TLS on these ports even when nmap does not say they speak TLS."""

    def covers(self, port: int) -> bool:
        return any(port in r for r in self.ports)


@dataclass(frozen=True)
class HostPolicy:
    """What the policy allows on one host."""

    host: str
    """Normalised host, as `Target.host`."""
    allow: tuple[Allow, ...]
    """Ports (and services) that may be open; every other open port is a finding."""

    def entry_for(self, port: int) -> Allow | None:
        return next((a for a in self.allow if a.covers(port)), None)


@dataclass(frozen=True)
class InfraPolicy:
    """The policy's `infra-scan` section, checked."""

    hosts: tuple[HostPolicy, ...] = ()
    """Per-host allowlists; a target without one is refused."""
    service_detection: bool = False
    """Run nmap's service detection (`-sV`): slower, needed to judge `service` entries."""
    tls_min_version: str = "TLSv1.2"
    """Oldest TLS version a TLS port may accept."""
    expiry_days: int = 30
    """A certificate expiring within this many days is a finding."""
    openscap_profile: str | None = None
    """XCCDF profile id for `oscap xccdf eval`."""
    openscap_content: str | None = None
    """The SCAP source data stream; None: the SCAP Security Guide's for the scanned root's OS."""
    openscap_rules: tuple[str, ...] = ()
    """Only these XCCDF rules (empty: the whole profile)."""
    label: str = ""
    """The policy file, for messages."""

    def host(self, name: str) -> HostPolicy | None:
        return next((h for h in self.hosts if h.host == name), None)


def normalise_host(text: str) -> str | None:
    """The host's canonical form, or None when it is not one IP address literal or DNS name."""
    raw = text.strip()
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1]
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        pass
    name = raw.lower().rstrip(".")
    # The last label needs a letter (no top-level domain is numeric): `10.0.0.1-9` is an nmap range, not a name.
    if _NAME.match(name) and any(c.isalpha() for c in name.rsplit(".", 1)[-1]):
        return name
    return None


def parse_ports(text: str, where: str) -> tuple[PortRange, ...]:
    """`22,80,8000-8010` as ranges; raises ValueError naming `where`."""
    spec = text.strip().replace(" ", "")
    if not _PORTS.match(spec):
        raise ValueError(f"{where}: {text[:60]!r} is not a port list like 22,80,8000-8010")
    items = spec.split(",")
    if len(items) > MAX_PORT_ITEMS:
        raise ValueError(f"{where}: more than {MAX_PORT_ITEMS} port items")
    out = []
    for item in items:
        low, _, high = item.partition("-")
        lo, hi = int(low), int(high or low)
        if not 1 <= lo <= hi <= 65535:
            raise ValueError(f"{where}: {item!r} is not a port range within 1-65535")
        out.append(PortRange(lo, hi))
    return tuple(out)


def parse_target(text: str) -> Target:
    """`HOST`, `HOST:PORTS` or `[IPV6]:PORTS`; raises UsageError naming the value."""
    raw = text.strip()
    host, ports = raw, ""
    if raw.startswith("["):
        close = raw.find("]")
        host, rest = raw[: close + 1], raw[close + 1:]
        if close < 0 or (rest and not rest.startswith(":")):
            raise UsageError(f"--target {raw[:80]!r}: write an IPv6 address as [ADDRESS] or [ADDRESS]:PORTS")
        ports = rest[1:]
    elif raw.count(":") == 1:
        host, _, ports = raw.partition(":")
    name = normalise_host(host)
    if raw.endswith(":") and not raw.startswith(":"):
        raise UsageError(f"--target {raw[:80]!r}: no ports after ':'")
    if name is None:
        raise UsageError(f"--target {raw[:80]!r}: not one IP address or DNS name (ranges, CIDR blocks and "
                         "options are refused)")
    try:
        return Target(name, parse_ports(ports, f"--target {raw[:80]!r}") if ports else ())
    except ValueError as e:
        raise UsageError(str(e)) from None


def parse_targets(values: list[str]) -> tuple[Target, ...]:
    if len(values) > MAX_TARGETS:
        raise UsageError(f"--target: at most {MAX_TARGETS} targets")
    return tuple(parse_target(v) for v in values)


def _ports_value(value: Any, where: str) -> tuple[PortRange, ...]:
    return parse_ports(str(value), where)


def from_section(section: Any, label: str) -> InfraPolicy:
    """The checked `infra-scan` section; InputError naming the key. Its shape is checked here as
    policies/schema.json states it (a test holds the two together), so the stage need not import jsonschema."""
    if section is None:
        return InfraPolicy(label=label)
    try:
        _shape(section)
        return _build(section, label)
    except (ValueError, TypeError) as e:
        raise InputError(label, str(e)) from None


def _keys(value: Any, where: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must be a mapping")
    extra = sorted(str(k) for k in value if k not in allowed)
    if extra:
        raise ValueError(f"{where}: unknown key {extra[0][:40]!r}")
    for key in required:
        if key not in value:
            raise ValueError(f"{where}: {key!r} is required")
    return value


def _text(value: Any, where: str, low: int, high: int) -> None:
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise ValueError(f"{where}: must be text of {low} to {high} characters")


def _items(value: Any, where: str, most: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > most:
        raise ValueError(f"{where}: must be a list of at most {most} items")
    return value


def _flag(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: must be true or false")


def _shape(section: Any) -> None:
    top = _keys(section, "infra-scan", {"hosts", "service-detection", "tls", "openscap"})
    for i, entry in enumerate(_items(top.get("hosts", []), "infra-scan.hosts", MAX_TARGETS)):
        where = f"infra-scan.hosts[{i}]"
        host = _keys(entry, where, {"host", "reason", "allow"}, ("host",))
        _text(host["host"], f"{where}.host", 1, 255)
        if "reason" in host:
            _text(host["reason"], f"{where}.reason", 0, 500)
        for j, a in enumerate(_items(host.get("allow", []), f"{where}.allow", MAX_PORT_ITEMS)):
            at = f"{where}.allow[{j}]"
            allow = _keys(a, at, {"ports", "service", "tls", "reason"}, ("ports",))
            ports = allow["ports"]
            if isinstance(ports, bool) or not ((isinstance(ports, int) and 1 <= ports <= 65535)
                                               or (isinstance(ports, str) and 1 <= len(ports) <= 2000)):
                raise ValueError(f"{at}.ports: must be a port number or a port list such as \"22,8000-8010\"")
            if "service" in allow:
                _text(allow["service"], f"{at}.service", 1, 64)
            if "tls" in allow:
                _flag(allow["tls"], f"{at}.tls")
            if "reason" in allow:
                _text(allow["reason"], f"{at}.reason", 0, 500)
    if "service-detection" in top:
        _flag(top["service-detection"], "infra-scan.service-detection")
    tls = _keys(top.get("tls", {}), "infra-scan.tls", {"min-version", "expiry-days"})
    if "min-version" in tls and tls["min-version"] not in TLS_VERSIONS:
        raise ValueError(f"infra-scan.tls.min-version: must be one of {', '.join(TLS_VERSIONS)}")
    days = tls.get("expiry-days", 30)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3650:
        raise ValueError("infra-scan.tls.expiry-days: must be a whole number from 0 to 3650")
    scap = _keys(top.get("openscap", {}), "infra-scan.openscap", {"profile", "content", "rules"})
    if "profile" in scap:
        _text(scap["profile"], "infra-scan.openscap.profile", 1, 300)
    if "content" in scap:
        _text(scap["content"], "infra-scan.openscap.content", 1, 1000)
    for k, rule in enumerate(_items(scap.get("rules", []), "infra-scan.openscap.rules", 2000)):
        _text(rule, f"infra-scan.openscap.rules[{k}]", 1, 300)


BUILTIN = ("default", "strict")
MAX_POLICY_BYTES = 256 * 1024


def read_policy(source: str) -> tuple[Any, str]:
    """(the policy's `infra-scan` section or None, its label). The gate validates the whole policy; this stage
    reads only its section, bounded (size, aliases, depth: `inputs.load_yaml`), and checks its shape itself."""
    from mlsec_actions import inputs

    if source in BUILTIN:  # the shipped policies have no infra-scan section (a test holds this)
        return None, f"policies/{source}.yml"
    doc = inputs.load_yaml(Path(source), "policy", MAX_POLICY_BYTES)
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise InputError(source, "a policy is a mapping with version: 1")
    return doc.get("infra-scan"), source


def _build(section: dict[str, Any], label: str) -> InfraPolicy:
    hosts: list[HostPolicy] = []
    detection = bool(section.get("service-detection", False))
    for i, entry in enumerate(section.get("hosts", [])):
        where = f"infra-scan.hosts[{i}]"
        name = normalise_host(str(entry["host"]))
        if name is None:
            raise ValueError(f"{where}.host: {str(entry['host'])[:60]!r} is not one IP address or DNS name")
        if any(h.host == name for h in hosts):
            raise ValueError(f"{where}.host: {name} is listed twice")
        allows = []
        for j, a in enumerate(entry.get("allow", [])):
            at = f"{where}.allow[{j}]"
            service = a.get("service")
            if service is not None and not detection:
                raise ValueError(f"{at}.service needs infra-scan.service-detection: true (nmap -sV)")
            allows.append(Allow(_ports_value(a["ports"], f"{at}.ports"), service, bool(a.get("tls", False))))
        hosts.append(HostPolicy(name, tuple(allows)))
    tls = section.get("tls", {})
    scap = section.get("openscap", {})
    return InfraPolicy(hosts=tuple(hosts), service_detection=detection,
                       tls_min_version=str(tls.get("min-version", "TLSv1.2")),
                       expiry_days=int(tls.get("expiry-days", 30)), openscap_profile=scap.get("profile"),
                       openscap_content=scap.get("content"), openscap_rules=tuple(scap.get("rules", ())),
                       label=label)


def refuse_unlisted(targets: tuple[Target, ...], policy: InfraPolicy) -> None:
    """Exit 2 before anything is contacted when a target has no allowlist entry in the policy."""
    unlisted = [t.host for t in targets if policy.host(t.host) is None]
    if unlisted:
        raise UsageError(f"infra-scan: target {unlisted[0]} is not in the policy's infra-scan.hosts allowlist "
                         f"({policy.label}); nothing was contacted")
