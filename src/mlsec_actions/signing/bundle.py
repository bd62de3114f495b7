"""Bundle JSON shapes shared by the key and OpenPubkey backends, DSSE PAE, and ECDSA P-256 helpers.

The shapes follow the Sigstore bundle v0.3 protobuf-JSON (`sigstore_models.bundle.v1.Bundle`):
`verificationMaterial.publicKey.hint` instead of a certificate, no transparency-log entries. Every
signature is ECDSA-SHA256 over a DSSE PAE of an in-toto statement; nothing signs a bare digest. The key
backend writes exactly what OpenSSF model_signing's elliptic-key signer writes, so its verifier
accepts our model-folder bundles too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions.errors import InputError
from mlsec_actions.inputs import read_regular
from mlsec_actions.signing.interface import (
    BUNDLE_MEDIA_TYPE,
    INTOTO_PAYLOAD_TYPE,
    READ_MEDIA_TYPES,
     Bundle,
    VerificationError,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"bundle: {what} is missing")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"bundle: {what} is not valid base64") from None


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_hint(key: ec.EllipticCurvePublicKey) -> str:
    """model_signing's hint: hex SHA-256 of the PEM SubjectPublicKeyInfo."""
    return hashlib.sha256(public_pem(key)).hexdigest()


def check_p256(key: object, where: object) -> ec.EllipticCurvePublicKey:
    pub = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name != "secp256r1":
        raise InputError(where, "not an ECDSA P-256 key")
    return pub


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    data = read_regular(path, "public key", 64 * 1024)
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise InputError(path, "not a PEM public key") from None
    return check_p256(key, path)


def verify_data(key: ec.EllipticCurvePublicKey, sig: bytes, data: bytes) -> bool:
    try:
        key.verify(sig, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def sign_statement(key: ec.EllipticCurvePrivateKey, hint: str, statement: bytes) -> Bundle:
    """A DSSE bundle over an in-toto statement: the only thing the key and OpenPubkey backends sign."""
    sig = key.sign(pae(INTOTO_PAYLOAD_TYPE, statement), ec.ECDSA(hashes.SHA256()))
    return dsse_bundle(hint, INTOTO_PAYLOAD_TYPE, statement, sig)


def dsse_bundle(hint: str, payload_type: str, payload: bytes, signature: bytes) -> Bundle:
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
        "dsseEnvelope": {"payload": b64(payload), "payloadType": payload_type,
                         "signatures": [{"sig": b64(signature), "keyid": ""}]},
    }


def hint_of(bundle: Bundle) -> str | None:
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict):
        return None
    pk = material.get("publicKey")
    hint = pk.get("hint") if isinstance(pk, dict) else None
    return hint if isinstance(hint, str) else None


def message_parts(bundle: Bundle, sha256: bytes) -> bytes:
    """The signature of a messageSignature bundle, after checking its digest (SHA2_256) names this file."""
    ms = bundle.get("messageSignature")
    if not isinstance(ms, dict):
        raise VerificationError("bundle has no messageSignature")
    md = ms.get("messageDigest")
    if not isinstance(md, dict):
        raise VerificationError("bundle: messageSignature.messageDigest is missing")
    if md.get("algorithm") != "SHA2_256":
        raise VerificationError(f"bundle: messageDigest.algorithm is {md.get('algorithm')!r}, expected 'SHA2_256'")
    signed = unb64(md.get("digest"), "messageDigest.digest")
    if signed != sha256:
        raise VerificationError(f"digest mismatch: signed sha256:{signed.hex()}, file is now sha256:{sha256.hex()}")
    return unb64(ms.get("signature"), "messageSignature.signature")


def dsse_parts(bundle: Bundle) -> tuple[str, bytes, bytes]:
    """(payloadType, payload, first signature) of a dsseEnvelope bundle."""
    env = bundle.get("dsseEnvelope")
    if not isinstance(env, dict):
        raise VerificationError("bundle has no dsseEnvelope (is it a single-file bundle?)")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise VerificationError("bundle: dsseEnvelope must carry exactly one signature")
    payload_type = env.get("payloadType")
    if not isinstance(payload_type, str):
        raise VerificationError("bundle: dsseEnvelope.payloadType is missing")
    if not isinstance(sigs[0].get("keyid", ""), str):
        raise VerificationError("bundle: dsseEnvelope signature keyid is not a string")
    return payload_type, unb64(env.get("payload"), "dsseEnvelope.payload"), unb64(sigs[0].get("sig"), "signature")


MAX_BUNDLE_BYTES = 4 * 1024 * 1024
"""A bundle holds a certificate chain, log entries and one envelope: kilobytes. Larger is refused."""
_TOP_KEYS = frozenset({"mediaType", "verificationMaterial", "messageSignature", "dsseEnvelope"})


def check_shape(bundle: object, where: object) -> Bundle:
    """The fields every verifier relies on, checked before any of them is read (else InputError, exit 2)."""
    if not isinstance(bundle, dict):
        raise InputError(where, "not a Sigstore bundle (not a JSON object)")
    media = bundle.get("mediaType")
    if not isinstance(media, str) or media not in READ_MEDIA_TYPES:
        raise InputError(where, f"not a Sigstore bundle: mediaType {media!r} is none of {sorted(READ_MEDIA_TYPES)}")
    unknown = sorted(set(bundle) - _TOP_KEYS)
    if unknown:
        raise InputError(where, f"bundle has unknown fields {unknown}")
    if ("messageSignature" in bundle) == ("dsseEnvelope" in bundle):
        raise InputError(where, "bundle must hold exactly one of messageSignature and dsseEnvelope")
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict):
        raise InputError(where, "bundle has no verificationMaterial")
    if not isinstance(material.get("tlogEntries", []), list):
        raise InputError(where, "bundle: verificationMaterial.tlogEntries is not a list")
    _only(material, _MATERIAL_KEYS, "verificationMaterial", where)
    content = bundle.get("dsseEnvelope", bundle.get("messageSignature"))
    if not isinstance(content, dict):
        raise InputError(where, "bundle: dsseEnvelope/messageSignature is not an object")
    if "dsseEnvelope" in bundle:
        _only(content, _ENVELOPE_KEYS, "dsseEnvelope", where)
        sigs = content.get("signatures")
        for sig in sigs if isinstance(sigs, list) else []:
            if isinstance(sig, dict):
                _only(sig, _SIGNATURE_KEYS, "dsseEnvelope.signatures[]", where)
    else:
        _only(content, _MESSAGE_KEYS, "messageSignature", where)
    return bundle


_MATERIAL_KEYS = frozenset({"publicKey", "x509CertificateChain", "certificate", "tlogEntries",
                            "timestampVerificationData"})
_ENVELOPE_KEYS = frozenset({"payload", "payloadType", "signatures"})
_SIGNATURE_KEYS = frozenset({"sig", "keyid"})
_MESSAGE_KEYS = frozenset({"messageDigest", "signature"})


def _only(obj: dict[str, Any], allowed: frozenset[str], what: str, where: object) -> None:
    """Unsigned fields nobody checks are where a forgery hides: anything unknown is refused."""
    unknown = sorted(str(k) for k in set(obj) - allowed)
    if unknown:
        raise InputError(where, f"bundle: {what} has unknown fields {unknown[:5]}")


def read_bundle(path: Path) -> Bundle:
    """A bundle file, bounded and shape-checked; a missing one is a verification failure, not bad input."""
    if not path.exists() and not path.is_symlink():
        raise VerificationError(f"{path}: no bundle (was the artifact signed?)")
    data = read_regular(path, "bundle", MAX_BUNDLE_BYTES)
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise InputError(path, f"bundle is not valid JSON: {e}") from None
    return check_shape(doc, path)


def write_bundle(path: Path, bundle: Bundle) -> None:
    path.write_text(json.dumps(bundle, indent=2) + "\n", encoding="utf-8")
