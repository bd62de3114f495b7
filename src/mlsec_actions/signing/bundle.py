"""Bundle JSON shapes shared by the key and OpenPubkey backends, DSSE PAE, and ECDSA P-256 helpers.

The shapes follow the Sigstore bundle v0.3 protobuf-JSON (`sigstore_models.bundle.v1.Bundle`):
`verificationMaterial.publicKey.hint` instead of a certificate, no transparency-log entries. The key
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
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from mlsec_actions.errors import InputError
from mlsec_actions.signing.interface import BUNDLE_MEDIA_TYPE, Bundle, VerificationError


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
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or e}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise InputError(path, "not a PEM public key") from None
    return check_p256(key, path)


def sign_prehashed(key: ec.EllipticCurvePrivateKey, sha256: bytes) -> bytes:
    return key.sign(sha256, ec.ECDSA(Prehashed(hashes.SHA256())))


def verify_prehashed(key: ec.EllipticCurvePublicKey, sig: bytes, sha256: bytes) -> bool:
    try:
        key.verify(sig, sha256, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


def verify_data(key: ec.EllipticCurvePublicKey, sig: bytes, data: bytes) -> bool:
    try:
        key.verify(sig, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def message_bundle(hint: str, sha256: bytes, signature: bytes) -> Bundle:
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
        "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(sha256)},
                             "signature": b64(signature)},
    }


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
    """The signature of a messageSignature bundle, after checking its digest names this file."""
    ms = bundle.get("messageSignature")
    if not isinstance(ms, dict):
        raise VerificationError("bundle has no messageSignature (is it a model-folder or attestation bundle?)")
    md = ms.get("messageDigest")
    signed = unb64(md.get("digest") if isinstance(md, dict) else None, "messageDigest.digest")
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
    return payload_type, unb64(env.get("payload"), "dsseEnvelope.payload"), unb64(sigs[0].get("sig"), "signature")


def read_bundle(path: Path) -> Bundle:
    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VerificationError(f"{path}: no bundle (was the artifact signed?)") from None
    except (OSError, ValueError) as e:
        raise InputError(path, f"not a readable JSON bundle: {e}") from None
    if not isinstance(doc, dict) or not str(doc.get("mediaType", "")).startswith(
            "application/vnd.dev.sigstore.bundle"):
        raise InputError(path, "not a Sigstore bundle (mediaType)")
    return doc


def write_bundle(path: Path, bundle: Bundle) -> None:
    path.write_text(json.dumps(bundle, indent=2) + "\n", encoding="utf-8")
