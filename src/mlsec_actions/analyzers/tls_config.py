"""The TLS configuration of one port, probed in-house with Python's ssl (the runner's OpenSSL).

- protocol versions: one handshake per version (TLS 1.0 to 1.3, each the only one offered; 1.0 and 1.1 at
  OpenSSL's security level 0, which is what lets an OpenSSL 3 client speak them at all);
- weak suites: one handshake per weak class offered alone, up to TLS 1.2 (1.3 has none): NULL encryption,
  anonymous key exchange, static RSA (no forward secrecy). Classes this OpenSSL cannot offer (RC4, DES,
  3DES, EXPORT in OpenSSL 3's default provider) are not tested, and that is a coverage gap, never silence;
- the certificate of the best handshake, read with cryptography: validity window, self-signed, the host's
  name or address in its SANs, and a chain check against the system trust store (or `--tls-ca`).

The certificate and the server's choices are hostile input: parsing failures are recorded, text is bounded.
Only the host and port given are contacted (the stage checked both against the policy).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Severity

VERSIONS: tuple[tuple[str, ssl.TLSVersion], ...] = (
    ("TLSv1", ssl.TLSVersion.TLSv1), ("TLSv1.1", ssl.TLSVersion.TLSv1_1),
    ("TLSv1.2", ssl.TLSVersion.TLSv1_2), ("TLSv1.3", ssl.TLSVersion.TLSv1_3))
WEAK_CLASSES: tuple[tuple[str, str, Severity], ...] = (
    ("eNULL", "no encryption (NULL cipher)", Severity.HIGH),
    ("aNULL", "no authentication (anonymous key exchange)", Severity.HIGH),
    ("kRSA", "no forward secrecy (static RSA key exchange)", Severity.MEDIUM),
)
UNTESTABLE = ("RC4", "DES", "3DES", "EXPORT")


@dataclass(frozen=True)
class Probe:
    """What one port accepted."""

    host: str
    """The host as scanned."""
    port: int
    """The TCP port."""
    versions: tuple[str, ...] = ()
    """Protocol versions it completed a handshake with."""
    weak: tuple[tuple[str, str, Severity], ...] = ()
    """(negotiated suite, why weak, severity) per weak class it accepted."""
    certificate: bytes | None = None
    """The leaf certificate (DER) of its best handshake."""
    verify_error: str | None = None
    """Why the chain did not verify against the trust store; None: it did (or no handshake)."""
    gaps: tuple[CoverageGap, ...] = field(default=())
    """What could not be checked on this port."""


def _context(version: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version < ssl.TLSVersion.TLSv1_3 or ciphers:
        ctx.set_ciphers((ciphers or "ALL:eNULL") + ":@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # offering the deprecated versions is the test
        ctx.minimum_version = ssl.TLSVersion.TLSv1 if ciphers else version
        ctx.maximum_version = version
    return ctx


def _handshake(ctx: ssl.SSLContext, host: str, port: int, timeout: float) -> ssl.SSLSocket | None:
    """A completed handshake (caller closes it), or None when the server refused; OSError when unreachable."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        tls = ctx.wrap_socket(sock, server_hostname=None)
    except (ssl.SSLError, ConnectionResetError, TimeoutError, BrokenPipeError):
        sock.close()
        return None
    except BaseException:
        sock.close()
        raise
    return tls


def probe(host: str, port: int, timeout: float, ca_file: Path | None = None) -> Probe:
    """Every handshake above against one port."""
    versions: list[str] = []
    best: bytes | None = None
    try:
        for name, version in VERSIONS:
            tls = _handshake(_context(version), host, port, timeout)
            if tls is not None:
                with tls:
                    versions.append(name)
                    best = tls.getpeercert(binary_form=True) or best
        weak = _weak(host, port, timeout) if set(versions) - {"TLSv1.3"} else ()
        verify = _verify(host, port, timeout, ca_file) if versions else None
    except OSError as e:
        gap = CoverageGap(GapKind.TOOL_ERROR, f"{host}:{port}: TLS not checked: {e.strerror or type(e).__name__}")
        return Probe(host, port, tuple(versions), gaps=(gap,))
    gaps = () if versions else (CoverageGap(GapKind.FORMAT_UNKNOWN, f"{host}:{port}: no TLS handshake completed "
                                            "with any version; not a TLS port, or it refused every offer"),)
    return Probe(host, port, tuple(versions), weak, best, verify, gaps)


def _weak(host: str, port: int, timeout: float) -> tuple[tuple[str, str, Severity], ...]:
    found = []
    for spec, why, severity in WEAK_CLASSES:
        tls = _handshake(_context(ssl.TLSVersion.TLSv1_2, spec), host, port, timeout)
        if tls is not None:
            with tls:
                suite = (tls.cipher() or ("?",))[0]
            found.append((suite, why, severity))
    return tuple(found)


def _verify(host: str, port: int, timeout: float, ca_file: Path | None) -> str | None:
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.check_hostname = False  # the name is judged from the certificate itself (hostname-mismatch)
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        with ctx.wrap_socket(sock):
            return None
    except ssl.SSLCertVerificationError as e:
        return str(e.verify_message or e)[:200]
    except (ssl.SSLError, ConnectionResetError, TimeoutError) as e:  # e.g. only TLS 1.0: a default client refuses
        return f"no handshake with a default client: {type(e).__name__}"[:200]
    finally:
        sock.close()


def untestable_gap() -> CoverageGap:
    """The weak classes this OpenSSL cannot offer, said once per run."""
    missing = []
    for name in UNTESTABLE:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).set_ciphers(f"{name}:@SECLEVEL=0")
        except ssl.SSLError:
            missing.append(name)
    return CoverageGap(GapKind.LIMIT_REACHED, f"TLS suites this OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer were "
                       f"not tested: {', '.join(missing) or 'none'}")


def judge(p: Probe, min_version: str, expiry_days: int, where: str,
          now: dt.datetime | None = None) -> tuple[list[Finding], list[CoverageGap]]:
    """Findings for one probed port (and gaps: a certificate that could not be read)."""
    from mlsec_actions.analyzers import infra_rules as rules

    place = Location(where, logical=f"{p.host}:{p.port}/tcp", logical_kind="object")
    facts = (("host", p.host), ("port", str(p.port)))
    out: list[Finding] = []
    names = [n for n, _ in VERSIONS]
    old = [v for v in p.versions if names.index(v) < names.index(min_version)]
    if old:
        sev = Severity.HIGH if {"TLSv1", "TLSv1.1"} & set(old) else Severity.MEDIUM
        out.append(Finding(rules.OLD_PROTOCOL, f"{p.host}:{p.port} accepts {', '.join(old)}; the policy's minimum "
                           f"is {min_version}.", sev, place, properties=(*facts, ("versions", ",".join(p.versions)))))
    for suite, why, sev in p.weak:
        out.append(Finding(rules.WEAK_CIPHER, f"{p.host}:{p.port} accepts {suite[:80]}: {why}.", sev, place,
                           properties=(*facts, ("suite", suite[:80]))))
    if p.certificate is None:
        return out, []
    try:
        out += _certificate(p, expiry_days, place, facts, now or dt.datetime.now(dt.UTC))
    except ValueError as e:
        return out, [CoverageGap(GapKind.FORMAT_UNKNOWN, f"{p.host}:{p.port}: certificate not readable: "
                                 f"{str(e)[:120]}")]
    return out, []


def _certificate(p: Probe, expiry_days: int, place: Location, facts: tuple[tuple[str, str], ...],
                 now: dt.datetime) -> list[Finding]:
    from cryptography import x509

    from mlsec_actions.analyzers import infra_rules as rules

    assert p.certificate is not None
    cert = x509.load_der_x509_certificate(p.certificate)
    out: list[Finding] = []
    at = f"{p.host}:{p.port}"
    after, before = cert.not_valid_after_utc, cert.not_valid_before_utc
    if now > after or now < before:
        when = f"expired on {after:%Y-%m-%d}" if now > after else f"is not valid before {before:%Y-%m-%d}"
        out.append(Finding(rules.CERT_EXPIRED, f"The certificate of {at} {when}.", Severity.HIGH, place,
                           properties=(*facts, ("not-after", after.isoformat()))))
    elif after - now < dt.timedelta(days=expiry_days):
        out.append(Finding(rules.CERT_EXPIRING, f"The certificate of {at} expires on {after:%Y-%m-%d}, within "
                           f"{expiry_days} days.", Severity.MEDIUM, place,
                           properties=(*facts, ("not-after", after.isoformat()))))
    self_signed = _self_signed(cert)
    if self_signed:
        out.append(Finding(rules.SELF_SIGNED, f"The certificate of {at} is self-signed.", Severity.MEDIUM, place,
                           properties=facts))
    elif p.verify_error is not None:
        out.append(Finding(rules.UNTRUSTED, f"The certificate chain of {at} does not verify: {p.verify_error}.",
                           Severity.MEDIUM, place, properties=facts))
    if not names_host(cert, p.host):
        out.append(Finding(rules.HOSTNAME_MISMATCH, f"The certificate of {at} does not name {p.host}.",
                           Severity.MEDIUM, place, properties=facts))
    return out


def _self_signed(cert: object) -> bool:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    assert isinstance(cert, x509.Certificate)
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):  # not signed by its own key
        return False
    return True


def names_host(cert: object, host: str) -> bool:
    """The certificate's SANs (or, without SANs, its common name) name `host` (an address or a DNS name)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    assert isinstance(cert, x509.Certificate)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return sans is not None and address in sans.get_values_for_type(x509.IPAddress)
    names = sans.get_values_for_type(x509.DNSName) if sans is not None else [
        str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return any(_dns_match(n.lower().rstrip("."), host) for n in names)


def _dns_match(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):  # one leftmost label only (RFC 6125)
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host
