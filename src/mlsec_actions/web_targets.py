"""Network targets of the stages that talk to a deployed service (`dast`, `runtime-probe`): a hostile boundary.

A stage only ever contacts the hosts its caller lists. `checked_targets` reads every `--target` URL and refuses
(exit 2, before any packet is sent) a URL that is not plain `http(s)://host[:port]/path?query`, carries
credentials or control characters, or names a host outside the allowlist (`--allow-host`, else the targets'
own hosts) or outside the trusted policy's `allow-hosts` for the stage. `send` makes one request with the
standard library: redirects are never followed (a `Location` to another host is only reported), bodies are read
up to a bound, and every request has a timeout.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import ssl
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mlsec_actions.errors import UsageError
from mlsec_actions.sanitize import log_line

MAX_URL = 2048
"""Longest target URL accepted."""
MAX_RESPONSE = 256 * 1024
"""Bytes of a response body kept (the rest is not read)."""
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_HOST_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")


@dataclass(frozen=True)
class Target:
    """One URL the caller asked us to scan or probe."""

    url: str
    """The URL as given (validated)."""
    scheme: str
    """`http` or `https`."""
    host: str
    """Lower-case host name or IP address (IPv6 without brackets)."""
    port: int
    """The port (the scheme's default when not given)."""
    path: str
    """Path, at least `/`."""
    query: tuple[tuple[str, str], ...]
    """Query parameters in order (the places probes inject into)."""

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def with_query(self, query: Sequence[tuple[str, str]]) -> str:
        """Path and query for a request line, with `query` in place of the target's own."""
        encoded = urllib.parse.urlencode(list(query))
        return self.path + (f"?{encoded}" if encoded else "")


def normalise_host(text: str) -> str:
    """A host as compared against the allowlist: lower case, IPv6 without brackets, IP addresses canonical."""
    host = text.strip().lower().strip("[]").rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(host):
        raise UsageError(log_line(f"{text!r}: not a host name or IP address"))
    return host


def parse_target(url: str, what: str = "--target") -> Target:
    """One target URL, checked (a bad one is a one-line UsageError naming it)."""
    shown = log_line(repr(url))
    if len(url) > MAX_URL:
        raise UsageError(f"{what} {shown[:80]}...: URL longer than {MAX_URL} characters")
    if _CONTROL.search(url):
        raise UsageError(f"{what} {shown}: URL holds spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise UsageError(f"{what} {shown}: not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"{what} {shown}: only http:// and https:// targets are supported")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{what} {shown}: credentials in the URL are refused (pass them another way)")
    if not parts.hostname:
        raise UsageError(f"{what} {shown}: URL has no host")
    if parts.fragment:
        raise UsageError(f"{what} {shown}: URL has a #fragment")
    host = normalise_host(parts.hostname)
    query = tuple(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    return Target(url, parts.scheme, host, port or (443 if parts.scheme == "https" else 80), parts.path or "/", query)


def checked_targets(urls: Iterable[str], allow_hosts: Iterable[str], what: str = "--target",
                    policy_hosts: Iterable[str] | None = None) -> tuple[Target, ...]:
    """Every target parsed and inside every allowlist given: `allow_hosts` (else the targets' own hosts) and the
    policy's `allow-hosts` when it has one (an empty one allows nothing); exit 2 naming the first refused."""
    targets = tuple(parse_target(u, what) for u in urls)
    lists: list[tuple[str, set[str]]] = []
    allowed = {normalise_host(h) for h in allow_hosts}
    if allowed:
        lists.append(("the allowlist", allowed))
    if policy_hosts is not None:
        lists.append(("the policy's allow-hosts", {normalise_host(h) for h in policy_hosts}))
    for t in targets:
        for label, hosts in lists:
            if t.host not in hosts:
                shown = ", ".join(sorted(hosts)) or "none"
                raise UsageError(log_line(f"{what} {t.url!r}: host {t.host} is not in {label} ({shown}); "
                                          "nothing was sent"))
    return targets


def policy_hosts(policy: str | None, stage_id: str) -> tuple[str, ...] | None:
    """The `allow-hosts` of the policy's `stage_id` section; None without a policy or without that key."""
    if policy is None:
        return None
    from mlsec_actions.gate.policy import load_document

    doc, _ = load_document(policy)
    section = doc.get(stage_id)
    hosts = section.get("allow-hosts") if isinstance(section, dict) else None
    return tuple(str(h) for h in hosts) if isinstance(hosts, list) else None


@dataclass(frozen=True)
class Response:
    """What came back for one request (or why nothing did)."""

    status: int | None
    """HTTP status; None when the connection failed, was reset or timed out."""
    headers: tuple[tuple[str, str], ...]
    """Response headers (names lower case)."""
    body: str
    """The body's first `MAX_RESPONSE` bytes, decoded leniently."""
    error: str = ""
    """Why there is no status (connection refused, reset, timeout)."""
    seconds: float = 0.0
    """Wall time of the request."""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)


def send(target: Target, method: str, path_and_query: str, *, body: bytes | None = None,
         headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> Response:
    """One request to `target`'s origin (never anywhere else: no redirect is followed)."""
    started = time.monotonic()
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(target.host, target.port, timeout=timeout,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    try:
        conn.request(method, path_and_query, body=body,
                     headers={"User-Agent": "mlsec-actions", "Connection": "close", **(headers or {})})
        got = conn.getresponse()
        data = got.read(MAX_RESPONSE)
        return Response(got.status, tuple((k.lower(), v) for k, v in got.getheaders()),
                        data.decode("utf-8", errors="replace"), seconds=time.monotonic() - started)
    except (OSError, http.client.HTTPException) as e:
        return Response(None, (), "", error=log_line(f"{type(e).__name__}: {e}"), seconds=time.monotonic() - started)
    finally:
        conn.close()
