"""A private Sigstore instance on loopback: STAND-INS for Fulcio, its CT log and Rekor, for tests only.

Sigstore's public servers cannot be reached here, and their keys are not ours, so the interop tests
(`tests/integration/test_sigstore_interop.py`) run sigstore-python's own CLI and our `mlsec` against
servers whose every key the test holds:

- a CA (root and intermediate, P-256) standing in for Fulcio: `POST /api/v2/signingCert` checks the
  bearer OIDC token's RS256 signature with the issuer's key (tests/oidc_issuer.py), its audience
  `sigstore` and expiry, and the CSR's proof of possession, then issues a 10-minute code-signing
  certificate with Fulcio's profile: empty subject, critical SAN (the workflow URI for GitHub-shaped
  tokens, else the email or subject), the issuer extensions (v1 raw and v2 DER), the GitHub workflow
  extensions, and one embedded precertificate SCT signed by a CT log key;
- a transparency log standing in for Rekor v1: `POST /api/v1/log/entries` checks the proposed
  `hashedrekord/0.0.1` or `dsse/0.0.1` entry's signature against its certificate, canonicalises the
  body as Rekor does (RFC 8785; a DSSE entry becomes its payload hash, envelope hash and signatures),
  appends it to an RFC 6962 Merkle tree (seeded with other entries, so proofs have hashes), and answers
  with the integrated time, a signed entry timestamp, an inclusion proof and a signed checkpoint;
- `trust_config(path)`: a sigstore-python ClientTrustConfig (trusted root + signing config v0.2)
  listing exactly these keys and URLs, for `sigstore --trust-config` and `mlsec --trust-config`.

This is what sigstore-python's client checks (read from its source: sign.py, verify/verifier.py,
_internal/sct.py, rekor/checkpoint.py, merkle.py); it is not Fulcio's or Rekor's code.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jwt
import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.oidc_issuer import Issuer, JsonHandler, serve_loopback

_SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_FULCIO = "1.3.6.1.4.1.57264.1."
CERT_LIFETIME = dt.timedelta(minutes=10)
EPOCH = "2020-01-01T00:00:00Z"


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """A log's id as Sigstore computes it: SHA-256 of the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(_spki(key)).digest()


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    if len(raw) >= 128:
        length = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
        return bytes([0x0C, 0x80 | len(length)]) + length + raw
    return bytes([0x0C, len(raw)]) + raw


def _der_octets(raw: bytes) -> bytes:
    if len(raw) < 128:
        return bytes([0x04, len(raw)]) + raw
    length = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
    return bytes([0x04, 0x80 | len(length)]) + length + raw


# --- RFC 6962 Merkle tree ------------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def tree_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(tree_root(leaves[:k]), tree_root(leaves[k:]))


def inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 section 2.1.1, lowest level first."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_path(index, leaves[:k]), tree_root(leaves[k:])]
    return [*inclusion_path(index - k, leaves[k:]), tree_root(leaves[:k])]


# --- the instance ----------------------------------------------------------------------------------------------


def _ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Instance:
    """The running stand-ins and every key they use; tests may swap a key to forge a server's answer."""

    issuer: Issuer
    url: str = ""
    root_key: ec.EllipticCurvePrivateKey = field(default_factory=_ec)
    ca_key: ec.EllipticCurvePrivateKey = field(default_factory=_ec)
    ct_key: ec.EllipticCurvePrivateKey = field(default_factory=_ec)
    rekor_key: ec.EllipticCurvePrivateKey = field(default_factory=_ec)
    origin: str = "rekor.standin.test"
    leaves: list[bytes] = field(default_factory=list)
    issued: list[x509.Certificate] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "standin.test"),
                               x509.NameAttribute(NameOID.COMMON_NAME, "stand-in fulcio root")])
        ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "standin.test"),
                             x509.NameAttribute(NameOID.COMMON_NAME, "stand-in fulcio intermediate")])
        root_pub, ca_pub = self.root_key.public_key(), self.ca_key.public_key()
        self.root = self._ca_cert(root_name, root_name, root_pub, self.root_key, root_pub, now, path_length=1)
        self.intermediate = self._ca_cert(ca_name, root_name, ca_pub, self.root_key, root_pub, now, path_length=0)
        self.leaves = [leaf_hash(os.urandom(32)) for _ in range(6)]  # other people's entries

    @staticmethod
    def _ca_cert(subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey,
                 signer: ec.EllipticCurvePrivateKey, signer_pub: ec.EllipticCurvePublicKey, now: dt.datetime,
                 *, path_length: int) -> x509.Certificate:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_pub), critical=False)
                .sign(signer, hashes.SHA256()))

    # Fulcio ---------------------------------------------------------------------------------------------------

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature (the issuer's RS256 key), audience and expiry check out."""
        return dict(jwt.decode(token, self.issuer.key.public_key(), algorithms=["RS256"], audience="sigstore",
                               issuer=self.issuer.url))

    def certificate(self, claims: dict[str, Any], public: ec.EllipticCurvePublicKey) -> x509.Certificate:
        """A Fulcio-profile leaf for these claims, with an embedded SCT over its precertificate."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        if "job_workflow_ref" in claims:  # a GitHub Actions token: Fulcio's SAN and workflow extensions
            san: x509.GeneralName = x509.UniformResourceIdentifier(f"https://github.com/{claims['job_workflow_ref']}")
        elif "email" in claims:
            san = x509.RFC822Name(str(claims["email"]))
        else:
            san = x509.UniformResourceIdentifier(str(claims["sub"]))
        v1 = {"1": claims["iss"], "2": claims.get("event_name"), "3": claims.get("sha"),
              "4": claims.get("workflow"), "5": claims.get("repository"), "6": claims.get("ref")}
        builder = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self.intermediate.subject)
                   .public_key(public).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + CERT_LIFETIME)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                                  critical=False)
                   .add_extension(x509.SubjectAlternativeName([san]), critical=True))
        for n, value in v1.items():
            if value:
                builder = builder.add_extension(
                    x509.UnrecognizedExtension(x509.ObjectIdentifier(_FULCIO + n), str(value).encode()), False)
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(_FULCIO + "8"), _der_utf8(str(claims["iss"]))), False)
        # The SCT signs the precertificate's TBS, which is the final TBS without the SCT extension: build once
        # with a placeholder SCT, take cryptography's `tbs_precertificate_bytes`, sign it, build again.
        stamp = int(time.time() * 1000)
        draft = builder.add_extension(self._sct_extension(stamp, b"\x00" * 8), False).sign(self.ca_key,
                                                                                         hashes.SHA256())
        signed = self._sct_input(stamp, draft.tbs_precertificate_bytes)
        sct_sig = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        cert = builder.add_extension(self._sct_extension(stamp, sct_sig), False).sign(self.ca_key, hashes.SHA256())
        assert cert.tbs_precertificate_bytes == draft.tbs_precertificate_bytes
        self.issued.append(cert)
        return cert

    def _sct_input(self, stamp: int, tbs: bytes) -> bytes:
        """RFC 6962 3.2 digitally-signed: v1, certificate_timestamp, time, precert_entry, issuer key hash, TBS."""
        issuer_hash = key_id(self.ca_key.public_key())
        return (struct.pack("!BBQH", 0, 0, stamp, 1) + issuer_hash + len(tbs).to_bytes(3, "big") + tbs
                + struct.pack("!H", 0))

    def _sct_extension(self, stamp: int, signature: bytes) -> x509.UnrecognizedExtension:
        sct = (struct.pack("!B", 0) + key_id(self.ct_key.public_key()) + struct.pack("!QH", stamp, 0)
               + struct.pack("!BBH", 4, 3, len(signature)) + signature)  # sha256, ecdsa
        listed = struct.pack("!H", len(sct)) + sct
        return x509.UnrecognizedExtension(_SCT_OID, _der_octets(struct.pack("!H", len(listed)) + listed))

    def chain_pem(self, cert: x509.Certificate) -> list[str]:
        return [c.public_bytes(serialization.Encoding.PEM).decode() for c in (cert, self.intermediate, self.root)]

    # Rekor ----------------------------------------------------------------------------------------------------

    def log_entry(self, proposed: dict[str, Any]) -> dict[str, Any]:
        """Check a proposed entry's signature, integrate it, and answer as Rekor v1 does."""
        body = rfc8785.dumps(_canonical_entry(proposed))
        with self.lock:
            index = len(self.leaves)
            self.leaves.append(leaf_hash(body))
            size, root = len(self.leaves), tree_root(self.leaves)
            proof = inclusion_path(index, self.leaves)
        log_id = key_id(self.rekor_key.public_key())
        integrated = int(time.time())
        body64 = base64.b64encode(body).decode()
        set_payload = rfc8785.dumps({"body": body64, "integratedTime": integrated, "logID": log_id.hex(),
                                     "logIndex": index})
        entry = {"body": body64, "integratedTime": integrated, "logID": log_id.hex(), "logIndex": index,
                 "verification": {"signedEntryTimestamp": base64.b64encode(
                     self.rekor_key.sign(set_payload, ec.ECDSA(hashes.SHA256()))).decode(),
                     "inclusionProof": {"logIndex": index, "treeSize": size, "rootHash": root.hex(),
                                        "hashes": [h.hex() for h in proof],
                                        "checkpoint": self.checkpoint(size, root)}}}
        self.entries.append(entry)
        return {uuid.uuid4().hex + hashlib.sha256(body).hexdigest(): entry}

    def checkpoint(self, size: int, root: bytes) -> str:
        """A signed note (transparency-dev checkpoint) as Rekor v1 writes it: key hint = log id's first 4 bytes."""
        note = f"{self.origin} - 1\n{size}\n{base64.b64encode(root).decode()}\n"
        sig = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        hint = key_id(self.rekor_key.public_key())[:4]
        return f"{note}\n\u2014 {self.origin} {base64.b64encode(hint + sig).decode()}\n"

    # trust ----------------------------------------------------------------------------------------------------

    def trust_config(self, path: Path) -> Path:
        """sigstore-python's ClientTrustConfig JSON naming these keys and URLs (no TSA: Rekor's SET gives time)."""
        def der(c: x509.Certificate) -> dict[str, str]:
            return {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}

        def log(url: str, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
            return {"baseUrl": url, "hashAlgorithm": "SHA2_256",
                    "publicKey": {"rawBytes": base64.b64encode(_spki(key.public_key())).decode(),
                                  "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": EPOCH}},
                    "logId": {"keyId": base64.b64encode(key_id(key.public_key())).decode()}}

        def service(url: str) -> dict[str, Any]:
            return {"url": url, "majorApiVersion": 1, "validFor": {"start": EPOCH}, "operator": "standin.test"}

        root = {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [log(self.url, self.rekor_key)], "ctlogs": [log(f"{self.url}/ct", self.ct_key)],
                "certificateAuthorities": [{"subject": {"organization": "standin.test", "commonName": "stand-in"},
                                            "uri": self.url, "certChain": {"certificates": [
                                                der(self.intermediate), der(self.root)]},
                                            "validFor": {"start": EPOCH}}],
                "timestampAuthorities": []}
        signing = {"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                   "caUrls": [service(self.url)], "oidcUrls": [service(self.issuer.url)],
                   "rekorTlogUrls": [service(self.url)], "tsaUrls": [],
                   "rekorTlogConfig": {"selector": "ANY"}, "tsaConfig": {"selector": "ANY"}}
        path.write_text(json.dumps({"mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
                                    "trustedRoot": root, "signingConfig": signing}, indent=1), encoding="utf-8")
        return path


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _verify_with_cert(cert_b64: str, signature: bytes, data: bytes, *, prehashed: bool) -> None:
    cert = x509.load_pem_x509_certificate(_b64(cert_b64))
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    public.verify(signature, data, ec.ECDSA(Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()))


def _pae(payload_type: str, payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


def _canonical_entry(proposed: dict[str, Any]) -> dict[str, Any]:
    """The entry Rekor v1 stores for a proposed one; raises (-> HTTP 400) when its signature does not verify."""
    kind, version, spec = proposed["kind"], proposed["apiVersion"], proposed["spec"]
    if (kind, version) == ("hashedrekord", "0.0.1"):
        digest = bytes.fromhex(spec["data"]["hash"]["value"])
        _verify_with_cert(spec["signature"]["publicKey"]["content"], _b64(spec["signature"]["content"]), digest,
                          prehashed=True)
        return {"apiVersion": version, "kind": kind, "spec": spec}
    if (kind, version) == ("dsse", "0.0.1"):
        raw = spec["proposedContent"]["envelope"]
        envelope = json.loads(raw)
        payload = _b64(envelope["payload"])
        verifier = spec["proposedContent"]["verifiers"][0]
        signatures = []
        for s in envelope["signatures"]:
            _verify_with_cert(verifier, _b64(s["sig"]), _pae(envelope["payloadType"], payload), prehashed=False)
            signatures.append({"signature": s["sig"], "verifier": verifier})
        return {"apiVersion": version, "kind": kind, "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(raw.encode()).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": signatures}}
    raise ValueError(f"unsupported entry {kind}/{version}")


def _handler(inst: Instance) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                doc = json.loads(raw)
                if self.path == "/api/v2/signingCert":
                    auth = self.headers.get("Authorization", "")
                    claims = inst.claims(auth.removeprefix("Bearer "))
                    csr = x509.load_pem_x509_csr(_b64(doc["certificateSigningRequest"]))
                    public = csr.public_key()
                    if not csr.is_signature_valid or not isinstance(public, ec.EllipticCurvePublicKey):
                        raise ValueError("CSR: no proof of possession of an EC key")
                    cert = inst.certificate(claims, public)
                    self._json(201, {"signedCertificateEmbeddedSct": {"chain": {
                        "certificates": inst.chain_pem(cert)}}})
                elif self.path == "/api/v1/log/entries":
                    self._json(201, inst.log_entry(doc))
                else:
                    self._json(404, {"message": "not found"})
            except Exception as e:  # a stand-in server answers 400 to anything it refuses
                self._json(400, {"message": f"{type(e).__name__}: {e}"[:300]})

    return Handler


@contextmanager
def running_instance(issuer: Issuer) -> Iterator[Instance]:
    """Fulcio, CT and Rekor stand-ins on one loopback port (paths as the real servers'), trusting `issuer`."""
    with serve_loopback(lambda url: Instance(issuer=issuer, url=url), _handler) as instance:
        yield instance
