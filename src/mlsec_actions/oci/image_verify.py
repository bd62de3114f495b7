"""Verify an image in its registry before it is deployed: which digest, signed by whom, with which attestations.

A tag is resolved once to a digest; everything after is about that digest. Evidence is read from the registry
and trusted only once checked: cosign `.sig` layers (the simple-signing payload must name this digest and this
repository, the signature must verify with `--public-key`), Sigstore bundles in referrers and DSSE layers of the
`.att` manifest (the bundle must verify with a configured verifier, be a statement of an image kind, and have
this image as its one subject). An unsigned image, a signature made for another digest (a re-tagged or moved
image), or an attestation missing or failing fails the check, each named.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions.errors import InputError, MlsecError
from mlsec_actions.oci import cosign, sbom_bind
from mlsec_actions.oci.client import Client
from mlsec_actions.oci.image_sign import resolve
from mlsec_actions.oci.reference import Reference
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing.interface import SignedPayload, VerificationError, Verifier
from mlsec_actions.signing.statements import Kind, open_statement

IMAGE_KINDS = (Kind.IMAGE, Kind.IMAGE_SBOM, Kind.IMAGE_GATE)
ATTESTATION_NAMES = {"sbom": Kind.IMAGE_SBOM, "gate": Kind.IMAGE_GATE}
"""`--require-attestation` names."""
KIND_NAMES = {Kind.IMAGE_SBOM: "SBOM", Kind.IMAGE_GATE: "gate verdict"}
"""What a missing attestation is called in a problem."""


@dataclass(frozen=True)
class ImageCheck:
    """The outcome for one image reference."""

    reference: str
    """The reference as given."""
    digest: str
    """The digest it resolved to (empty when it did not resolve)."""
    ok: bool
    """True when a valid signature and every required attestation were found."""
    signers: tuple[str, ...] = ()
    """Who validly signed the image (key fingerprint or identity), one per valid signature."""
    attestations: tuple[str, ...] = ()
    """Predicate types of the valid attestations."""
    problems: tuple[str, ...] = field(default_factory=tuple)
    """Every piece of evidence that failed, and what is missing."""

    def as_json(self) -> dict[str, object]:
        return {"reference": self.reference, "digest": self.digest, "ok": self.ok, "signers": list(self.signers),
                "attestations": list(self.attestations), "problems": list(self.problems)}


def _statement_kind(signed: SignedPayload) -> Kind:
    try:
        ptype = json.loads(signed.payload).get("predicateType")
    except (ValueError, RecursionError, AttributeError):
        ptype = None
    for kind in IMAGE_KINDS:
        if kind.value == ptype:
            return kind
    raise VerificationError(f"signed statement has predicate type {ptype!r}, not one of an image")


def _check_subject(doc: dict[str, object], pinned: Reference, names: set[str]) -> None:
    subjects = doc["subject"]
    subject = subjects[0] if isinstance(subjects, list) and len(subjects) == 1 else None
    digest = subject.get("digest") if isinstance(subject, dict) else None
    if not isinstance(subject, dict) or not isinstance(digest, dict) or set(digest) != {"sha256"}:
        raise VerificationError("a signed image statement must have exactly one subject with one sha256 digest")
    signed = f"sha256:{digest['sha256']}"
    if signed != pinned.digest:
        raise VerificationError(f"signed for another image digest ({signed}, the image is {pinned.digest})")
    if subject.get("name") not in names:
        raise VerificationError(f"signed for repository {subject.get('name')!r}, not {pinned.name!r}")


def _bundle_evidence(data: bytes, where: str, verifiers: Sequence[Verifier], pinned: Reference,
                     names: set[str]) -> tuple[Kind, str, dict[str, object]]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise VerificationError(f"{where}: not JSON") from None
    bundle = bl.check_shape(doc, where)
    if "dsseEnvelope" not in bundle:
        raise VerificationError(f"{where}: not a DSSE bundle")
    verifier = next((v for v in verifiers if v.accepts(bundle)), None)
    if verifier is None:
        raise VerificationError(f"{where}: signed by a backend no configured verifier checks")
    signed = verifier.verify_dsse(bundle)
    kind = _statement_kind(signed)
    statement = open_statement(signed, kind)
    _check_subject(statement, pinned, names)
    return kind, signed.signer, statement


def _key_bundle(envelope: bytes, public_key_hint: str, where: str) -> bytes:
    """An `.att` layer's bare DSSE envelope as a key bundle, so the key verifier checks it."""
    try:
        env = json.loads(envelope)
    except (ValueError, RecursionError):
        raise VerificationError(f"{where}: not JSON") from None
    if not isinstance(env, dict):
        raise VerificationError(f"{where}: not a DSSE envelope")
    return json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                       "verificationMaterial": {"publicKey": {"hint": public_key_hint}, "tlogEntries": []},
                       "dsseEnvelope": env}).encode("utf-8")


def verify_image(client: Client, ref: Reference, verifiers: Sequence[Verifier], *,
                 public_keys: Sequence[ec.EllipticCurvePublicKey] = (), require: Sequence[Kind] = (),
                 also_names: Sequence[str] = ()) -> ImageCheck:
    """Check one image reference; never raises for bad evidence (each piece is a problem), only for bad usage.

    `public_keys`: the trusted keys, for cosign's `.sig` and `.att` layers (which carry no key hint); `verifiers`
    (built from the same keys and the trusted identities) check the referrer bundles."""
    pinned, _ = resolve(client, ref)
    config = functools.cache(lambda: sbom_bind.config_digest(client, pinned))  # read once, if an SBOM needs it
    names = {pinned.name, *also_names}
    signers: list[str] = []
    found: dict[Kind, list[str]] = {k: [] for k in IMAGE_KINDS}
    problems: list[str] = []
    repo = pinned.repository
    if public_keys:
        for i, layer in enumerate(cosign.read_layers(client, repo, cosign.tag_for(pinned.digest, ".sig"),
                                                     cosign.SIMPLE_SIGNING), 1):
            try:
                signers.append(_simple_signing(layer, public_keys, pinned, names))
            except (ValueError, VerificationError) as e:
                problems.append(f"cosign signature {i}: {e}")
        for i, layer in enumerate(cosign.read_layers(client, repo, cosign.tag_for(pinned.digest, ".att"),
                                                     cosign.DSSE_LAYER), 1):
            where = f"cosign attestation {i}"
            try:
                kind, who, doc = _key_evidence(layer.data, public_keys, where, pinned, names)
                _record(kind, who, doc, found, pinned, config)
            except (VerificationError, InputError) as e:
                text = e.diagnostics()
                problems.append(text if text.startswith(where) else f"{where}: {text}")
    bundles, misplaced = cosign.read_referrers(client, repo, pinned.digest)
    problems += misplaced
    for i, data in enumerate(bundles, 1):
        where = f"referrer bundle {i}"
        try:
            kind, who, doc = _bundle_evidence(data, where, verifiers, pinned, names)
            _record(kind, who, doc, found, pinned, config)
        except (VerificationError, InputError) as e:
            text = e.diagnostics()
            problems.append(text if text.startswith(where) else f"{where}: {text}")
    signers += found[Kind.IMAGE]
    missing = [] if signers else [f"no valid signature for {pinned.digest}"]
    missing += [f"no valid {KIND_NAMES[k]} attestation ({k.value})" for k in require if not found[k]]
    return ImageCheck(str(ref), pinned.digest, not missing, tuple(dict.fromkeys(signers)),
                      tuple(k.value for k in IMAGE_KINDS[1:] if found[k]), tuple(missing + problems))


def _record(kind: Kind, who: str, doc: dict[str, object], found: dict[Kind, list[str]], pinned: Reference,
            config: Callable[[], str | None]) -> None:
    if kind is Kind.IMAGE_SBOM:
        problem = sbom_bind.mismatch(doc.get("predicate"), pinned.digest, config())
        if problem:
            raise VerificationError(f"the attested SBOM is not of this image: {problem}")
    if kind is Kind.IMAGE_GATE:
        predicate = doc.get("predicate")
        verdict = predicate.get("verdict") if isinstance(predicate, dict) else None
        if verdict != "pass":
            raise VerificationError(f"the attested gate verdict is {verdict!r}, not 'pass'")
    found[kind].append(who)


def _simple_signing(layer: cosign.Layer, public_keys: Sequence[ec.EllipticCurvePublicKey], pinned: Reference,
                    names: set[str]) -> str:
    name, digest = cosign.read_simple_signing(layer.data)
    if digest != pinned.digest:
        raise VerificationError(f"signed for another image digest ({digest}, the image is {pinned.digest})")
    if name not in names:
        raise VerificationError(f"signed for repository {name!r}, not {pinned.name!r}")
    signature = cosign.layer_signature(layer)
    for key in public_keys:
        if bl.verify_data(key, signature, layer.data):
            return f"key {bl.key_hint(key)[:16]}"
    raise VerificationError("the signature does not verify with any trusted public key")


def _key_evidence(envelope: bytes, public_keys: Sequence[ec.EllipticCurvePublicKey], where: str, pinned: Reference,
                  names: set[str]) -> tuple[Kind, str, dict[str, object]]:
    """A `.att` layer's DSSE envelope, checked with each trusted key in turn (it names none)."""
    from mlsec_actions.signing.key import KeyVerifier

    failure: VerificationError | None = None
    for key in public_keys:
        try:
            return _bundle_evidence(_key_bundle(envelope, bl.key_hint(key), where), where, [KeyVerifier(key)],
                                    pinned, names)
        except VerificationError as e:
            failure = e
    assert failure is not None
    raise failure


def as_error(e: MlsecError, ref: str) -> ImageCheck:
    """A registry failure for one reference, as a failed check (verification fails closed)."""
    return ImageCheck(ref, "", False, problems=(e.diagnostics(),))
