"""Real TCP and TLS services on 127.0.0.0/8 for infra-scan's tests, started in threads of the test process.

- `plain_listeners`: plain TCP listeners on 127.0.0.21 (one allowed by the tests' policy, one not);
- `tls_services`: on 127.0.0.22, a TLS 1.2+ server with a certificate for 127.0.0.22 that is valid for a year
  (issued by a test CA), and a TLS 1.0 server (OpenSSL 3 offers TLS 1.0 only at `@SECLEVEL=0` with
  `minimum_version = TLSv1`) with a self-signed certificate that expired yesterday and names another host,
  accepting a static-RSA suite (no forward secrecy).

Each listener accepts in a daemon thread, answers the handshake (TLS) or closes at once (plain). Import the
fixtures into a test module (`from tests.tls_services import plain_listeners, tls_services`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PLAIN_HOST = "127.0.0.21"
TLS_HOST = "127.0.0.22"


@dataclass(frozen=True)
class Services:
    """Listeners the fixtures started."""

    host: str
    """Their address."""
    ports: dict[str, int]
    """Role -> port (`allowed`, `extra` for plain; `modern`, `legacy` for TLS)."""
    ca: Path | None = None
    """The test CA's certificate (PEM) that issued the modern server's certificate."""


def _listen(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(64)
    return sock


def _serve(sock: socket.socket, context: ssl.SSLContext | None, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except (TimeoutError, OSError):
            continue
        threading.Thread(target=_answer, args=(conn, context), daemon=True).start()


def _answer(conn: socket.socket, context: ssl.SSLContext | None) -> None:
    with contextlib.suppress(OSError, ssl.SSLError), conn:
        conn.settimeout(5)
        if context is None:
            return
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)  # until the client closes


@contextlib.contextmanager
def _running(host: str, contexts: dict[str, ssl.SSLContext | None]) -> Iterator[dict[str, int]]:
    stop = threading.Event()
    socks = {role: _listen(host) for role in contexts}
    threads = [threading.Thread(target=_serve, args=(socks[r], c, stop), daemon=True) for r, c in contexts.items()]
    for t in threads:
        t.start()
    try:
        yield {role: s.getsockname()[1] for role, s in socks.items()}
    finally:
        stop.set()
        for t in threads:
            t.join(2)
        for s in socks.values():
            s.close()


def make_certificate(folder: Path, name: str, *, host: str, days: tuple[int, int], issuer: tuple[object, object] | None
                     ) -> tuple[Path, Path, object, object]:
    """A key and certificate for `host` (an IP SAN) valid from days[0] to days[1] relative to now, signed by
    `issuer` (certificate, key) or self-signed. Returns (cert PEM, key PEM, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"mlsec test {name}")])
    now = dt.datetime.now(dt.UTC)
    signer_cert, signer_key = issuer if issuer else (None, key)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(signer_cert.subject if signer_cert is not None else subject)  # type: ignore[attr-defined]
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now + dt.timedelta(days=days[0])).not_valid_after(now + dt.timedelta(days=days[1])))
    if name == "ca":
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                                        critical=False)
    cert = builder.sign(signer_key, hashes.SHA256())  # type: ignore[arg-type]
    cert_pem, key_pem = folder / f"{name}.crt", folder / f"{name}.key"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert_pem, key_pem, cert, key


def modern_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def legacy_context(cert: Path, key: Path) -> ssl.SSLContext:
    """TLS 1.0 only, with a static-RSA suite: OpenSSL 3 needs security level 0 for both."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("AES128-SHA:ECDHE-RSA-AES128-SHA:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # a deprecated version on purpose
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.fixture(scope="session")
def plain_listeners() -> Iterator[Services]:
    with _running(PLAIN_HOST, {"allowed": None, "extra": None}) as ports:
        yield Services(PLAIN_HOST, ports)


@pytest.fixture(scope="session")
def tls_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    folder = tmp_path_factory.mktemp("tls")
    ca_pem, _, ca_cert, ca_key = make_certificate(folder, "ca", host=TLS_HOST, days=(-1, 365), issuer=None)
    cert, key, _, _ = make_certificate(folder, "modern", host=TLS_HOST, days=(-1, 365), issuer=(ca_cert, ca_key))
    old_cert, old_key, _, _ = make_certificate(folder, "legacy", host="127.0.0.99", days=(-30, -1), issuer=None)
    contexts: dict[str, ssl.SSLContext | None] = {"modern": modern_context(cert, key),
                                                  "legacy": legacy_context(old_cert, old_key)}
    with _running(TLS_HOST, contexts) as ports:
        yield Services(TLS_HOST, ports, ca_pem)
