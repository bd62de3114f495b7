"""Sign one image digest and store what was signed in the registry, beside the image.

What is written, for every backend: the image statement (`signed-image/v1`) and each attestation (SBOM, gate
verdict) as Sigstore bundles in OCI 1.1 referrers; each attestation's DSSE envelope also as a layer of the
`sha256-<hex>.att` manifest (cosign's attestation layout). The key backend also writes cosign's
`sha256-<hex>.sig` simple-signing signature, so `cosign verify --key` accepts the image. Existing signatures are
kept: each one is a layer or referrer of its own.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions.errors import UsageError
from mlsec_actions.oci import cosign, sbom_bind
from mlsec_actions.oci.client import Client, RegistryError
from mlsec_actions.oci.reference import Reference
from mlsec_actions.signing.interface import Bundle, Signer
from mlsec_actions.signing.statements import STATEMENT_TYPE, Kind

CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"


class SbomMismatch(ValueError):
    """The SBOM given to attest is not of the image being signed (`sbom_bind.mismatch`); nothing was pushed."""


@dataclass(frozen=True)
class Written:
    """What one signing run stored."""

    reference: Reference
    """The image, pinned to the digest that was signed."""
    manifests: tuple[str, ...]
    """`kind -> repo@digest or repo:tag` lines, one per object written (for the log and the step outputs)."""


def resolve(client: Client, ref: Reference) -> tuple[Reference, cosign.Subject]:
    """The reference pinned to a digest: a tag is read once, its bytes hashed, and only the digest is used after."""
    if not ref.digest and not ref.tag:
        raise UsageError(f"{ref}: name a digest (@sha256:...) or a tag to resolve once; there is no default tag")
    manifest = client.get_manifest(ref.repository, ref.digest or ref.tag, missing_ok=True)
    if manifest is None:
        raise RegistryError(f"{ref}: no such image in the registry")
    if not manifest.media_type:
        raise RegistryError(f"{ref}: the manifest has no media type")
    return ref.at(manifest.digest), cosign.Subject(manifest.digest, manifest.media_type, len(manifest.data))


def image_statement(kind: Kind, ref: Reference, predicate: dict[str, Any]) -> bytes:
    """An in-toto statement whose one subject is the image (`HOST/REPO`, its manifest's SHA-256)."""
    hex_digest = ref.digest.removeprefix("sha256:")
    body = {"_type": STATEMENT_TYPE, "subject": [{"name": ref.name, "digest": {"sha256": hex_digest}}],
            "predicateType": kind.value, "predicate": predicate}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _envelope(bundle: Bundle) -> dict[str, Any]:
    env = bundle["dsseEnvelope"]
    return {"payloadType": env["payloadType"], "payload": env["payload"],
            "signatures": [{"keyid": s.get("keyid", ""), "sig": s["sig"]} for s in env["signatures"]]}


def _certificate_pem(bundle: Bundle) -> str:
    """A keyless bundle's leaf certificate as PEM (cosign's certificate annotation); empty for other backends."""
    material = bundle.get("verificationMaterial") or {}
    raw = (material.get("certificate") or {}).get("rawBytes")
    if not isinstance(raw, str):
        chain = (material.get("x509CertificateChain") or {}).get("certificates") or [{}]
        raw = chain[0].get("rawBytes")
    if not isinstance(raw, str):
        return ""
    body = "\n".join(raw[i:i + 64] for i in range(0, len(raw), 64))
    base64.b64decode(raw, validate=True)
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def _signed_by(key: ec.EllipticCurvePublicKey) -> Callable[[cosign.Layer], bool]:
    """Whether an existing `.sig` layer of the same payload already verifies with this key (cosign's dupe check)."""
    from mlsec_actions.signing.bundle import verify_data

    def check(layer: cosign.Layer) -> bool:
        try:
            return verify_data(key, cosign.layer_signature(layer), layer.data)
        except ValueError:
            return False

    return check


class CosignKey:
    """The key backend's key, for cosign's `.sig` only: it signs simple-signing payloads (checked to be one) and
    nothing else. Kept apart from the `Signer` backends, which sign typed in-toto statements only; a payload cannot
    pass for a DSSE signature (a PAE starts with `DSSEv1 `, a payload with `{`)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key()

    def sign_payload(self, payload: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes

        cosign.require_simple_signing(payload)
        return self._key.sign(payload, ec.ECDSA(hashes.SHA256()))


def sign_image(client: Client, ref: Reference, signer: Signer, attestations: list[tuple[Kind, dict[str, Any]]],
               cosign_key: CosignKey | None = None) -> Written:
    """Sign `ref` (resolved to its digest once) and every attestation `(kind, predicate)` about it; with
    `cosign_key`, also cosign's `.sig` signature. An SBOM attestation of another image raises `SbomMismatch` before
    anything is signed."""
    pinned, subject = resolve(client, ref)
    repo = pinned.repository
    if any(kind is Kind.IMAGE_SBOM for kind, _ in attestations):
        config = sbom_bind.config_digest(client, pinned)
        for kind, predicate in attestations:
            problem = sbom_bind.mismatch(predicate, pinned.digest, config) if kind is Kind.IMAGE_SBOM else None
            if problem:
                raise SbomMismatch(problem)
    # Everything is signed before anything is pushed: a backend failing half-way leaves the registry untouched.
    statements = [(Kind.IMAGE, image_statement(Kind.IMAGE, pinned, {}))]
    statements += [(kind, image_statement(kind, pinned, predicate)) for kind, predicate in attestations]
    bundles = [(kind, signer.sign_statement(statement)) for kind, statement in statements]
    sig_layer = None
    if cosign_key is not None:
        payload = cosign.simple_signing_payload(pinned, pinned.digest)
        sig_layer = cosign.signature_layer(payload, cosign_key.sign_payload(payload))
    att_layers = []
    for kind, bundle in bundles[1:]:
        layer = cosign.attestation_layer(_envelope(bundle), kind.value)
        cert = _certificate_pem(bundle)
        att_layers.append(cosign.Layer(layer.media_type, layer.data, {**layer.annotations,
                                                                      CERTIFICATE_ANNOTATION: cert})
                          if cert else layer)
    items = [cosign.Referrer(json.dumps(b, separators=(",", ":")).encode("utf-8"), "dsse-envelope", kind.value)
             for kind, b in bundles]
    written = [f"{'signature' if kind is Kind.IMAGE else 'attestation'} referrer {pinned.name}@{digest}"
               f"{'' if kind is Kind.IMAGE else f' ({kind.value})'}"
               for (kind, _), digest in zip(bundles, cosign.push_referrers(client, repo, subject, items), strict=True)]
    if sig_layer is not None and cosign_key is not None:
        tag = cosign.tag_for(pinned.digest, ".sig")
        cosign.append_layers(client, repo, tag, [sig_layer], _signed_by(cosign_key.public_key))
        written.append(f"cosign signature {pinned.name}:{tag}")
    if att_layers:
        tag = cosign.tag_for(pinned.digest, ".att")
        cosign.append_layers(client, repo, tag, att_layers)
        written.append(f"cosign attestations {pinned.name}:{tag} ({len(att_layers)})")
    return Written(pinned, tuple(written))
