"""infra-scan's in-house rules: the port allowlist (judging nmap's results) and the TLS checks.

Each rule id is `<tool>/<rule>` and its help link is the heading of the same name in docs/infra-scan.md.
"""

from __future__ import annotations

from mlsec_actions.findings import Rule

DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/infra-scan.md"


def _rule(rule_id: str, name: str, short: str, full: str, fix: str, *tags: str) -> Rule:
    return Rule(id=rule_id, name=name, short_description=short, full_description=full, help_text=fix,
                help_uri=f"{DOCS}#{rule_id.replace('/', '')}", tags=("security", "infrastructure", *tags))


PORT_NOT_ALLOWED = _rule(
    "nmap/port-not-allowed", "PortNotAllowed", "An open port is not in the policy's allowlist for its host",
    "nmap found the port open on a host the policy lists, and no `allow` entry of that host covers it: a service "
    "is exposed that nobody declared.",
    "Close the port (stop the service, bind it to loopback, or filter it), or add an `allow` entry for it to the "
    "host in the policy's `infra-scan.hosts`, with a reason.", "network", "exposure")
SERVICE_NOT_ALLOWED = _rule(
    "nmap/service-not-allowed", "ServiceNotAllowed", "An allowed port runs another service than the policy names",
    "Service detection (nmap -sV) found a different service on the port than the policy's `allow` entry names "
    "(for example a debug HTTP server where SSH is expected).",
    "Find what listens on the port and stop it, or correct the entry's `service` in the policy.", "network")
OLD_PROTOCOL = _rule(
    "tls/old-protocol", "TlsOldProtocol", "A TLS port accepts a protocol version older than the policy allows",
    "The port completed a handshake with a protocol version below `infra-scan.tls.min-version` (TLS 1.2 by "
    "default). TLS 1.0 and 1.1 are deprecated (RFC 8996): they lack modern cipher suites and are open to "
    "downgrade attacks.",
    "Set the server's minimum protocol version to TLS 1.2 (or 1.3), e.g. `ssl_protocols TLSv1.2 TLSv1.3;` in "
    "nginx, `MinProtocol = TLSv1.2` in OpenSSL's configuration.", "tls", "crypto")
WEAK_CIPHER = _rule(
    "tls/weak-cipher", "TlsWeakCipher", "A TLS port accepts a weak cipher suite",
    "The port agreed to a cipher suite without encryption (NULL), without authentication (anonymous), or "
    "without forward secrecy (static RSA key exchange).",
    "Limit the server to AEAD suites with (EC)DHE key exchange, e.g. Mozilla's 'intermediate' configuration.",
    "tls", "crypto")
CERT_EXPIRED = _rule(
    "tls/cert-expired", "TlsCertificateExpired", "The TLS certificate has expired or is not valid yet",
    "The certificate the port presents is outside its validity period, so clients refuse it (or users learn to "
    "click through warnings).",
    "Renew the certificate and reload the service; automate renewal (ACME).", "tls", "certificate")
CERT_EXPIRING = _rule(
    "tls/cert-expiring", "TlsCertificateExpiring", "The TLS certificate expires soon",
    "The certificate expires within `infra-scan.tls.expiry-days` (30 by default).",
    "Renew the certificate before it expires; automate renewal (ACME).", "tls", "certificate")
SELF_SIGNED = _rule(
    "tls/self-signed", "TlsSelfSigned", "The TLS certificate is self-signed",
    "The certificate is signed by its own key, so no client can tell it from an attacker's.",
    "Use a certificate from a CA your clients trust (a public CA, or your organisation's internal CA).",
    "tls", "certificate")
HOSTNAME_MISMATCH = _rule(
    "tls/hostname-mismatch", "TlsHostnameMismatch", "The TLS certificate does not name the host",
    "Neither the certificate's subject alternative names nor its common name match the host that was scanned, "
    "so a client verifying the name refuses the connection.",
    "Issue the certificate for the name (or IP address) clients use to reach the service.", "tls", "certificate")
UNTRUSTED = _rule(
    "tls/untrusted", "TlsUntrusted", "The TLS certificate chain does not verify against the system's trust store",
    "A client using the runner's CA bundle cannot build a trusted chain to the certificate (an unknown CA, a "
    "missing intermediate, or a self-signed certificate).",
    "Serve the full chain (leaf and intermediates) and use a certificate from a CA the clients trust.",
    "tls", "certificate")

RULES = (PORT_NOT_ALLOWED, SERVICE_NOT_ALLOWED, OLD_PROTOCOL, WEAK_CIPHER, CERT_EXPIRED, CERT_EXPIRING,
         SELF_SIGNED, HOSTNAME_MISMATCH, UNTRUSTED)
