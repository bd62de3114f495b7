"""The typed statements every signature is over: one in-toto predicate type per kind of artifact.

Each backend signs only DSSE envelopes of payload type `application/vnd.in-toto+json` over a
statement we build, never a digest or bytes handed to it, so no signature made for one purpose
can be replayed for another: a file's bundle is a statement with predicate `signed-file/v1`, a
model folder's is model_signing's manifest, the gate's is `gate-verdict/v1`, a training run's is SLSA v1
provenance with our build type `train/v1`. Verification names
the kind it expects and checks the payload type, `_type` and `predicateType` before reading more.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from mlsec_actions.signing.interface import INTOTO_PAYLOAD_TYPE, SignedPayload, VerificationError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
"""in-toto Statement v1: the `_type` of every statement we sign or accept."""


class Kind(enum.Enum):
    """What a signed statement is about; the value is its predicate type."""

    FILE = "https://mlsec-actions.dev/signed-file/v1"
    """One file, by SHA-256 (the subject); the predicate is empty."""
    MODEL_FOLDER = "https://model_signing/signature/v1.0"
    """A model folder: OpenSSF model_signing's manifest of every file."""
    GATE_VERDICT = "https://mlsec-actions.dev/gate-verdict/v1"
    """The gate attestation: the verdict and every file it is about."""
    TRAIN_PROVENANCE = "https://slsa.dev/provenance/v1"
    """A training run (`mlsec train`): SLSA v1 provenance whose build type is `TRAIN_BUILD_TYPE`; subjects are
    the files it wrote to its declared output folder."""
    IMAGE = "https://mlsec-actions.dev/signed-image/v1"
    """A container image: one subject, the repository (`HOST/REPO`) and its manifest's SHA-256 (`sign-image`)."""
    IMAGE_GATE = "https://mlsec-actions.dev/image-gate-verdict/v1"
    """The gate verdict an image was signed after: the image is the subject, the predicate the verdict summary."""
    IMAGE_SBOM = "https://cyclonedx.org/bom"
    """A CycloneDX SBOM of an image as the predicate, the image the subject (cosign's `--type cyclonedx` type)."""


TRAIN_BUILD_TYPE = "https://mlsec-actions.dev/train/v1"
"""The `buildDefinition.buildType` of our training provenance. SLSA's predicate type is shared by every builder,
so a provenance statement is ours (and signable) only with this build type: the domain separation."""


def file_statement(name: str, sha256_hex: str) -> bytes:
    """The statement a file's bundle signs: its name (informative) and its SHA-256."""
    readable = name.encode("utf-8", "backslashreplace").decode("utf-8")  # a non-UTF-8 file name, escaped
    body = {"_type": STATEMENT_TYPE, "subject": [{"name": readable, "digest": {"sha256": sha256_hex}}],
            "predicateType": Kind.FILE.value, "predicate": {}}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def require_typed(statement: bytes) -> None:
    """What a signer accepts: an in-toto Statement v1 whose predicate type is one of `Kind` (else SigningError)."""
    from mlsec_actions.signing.interface import SigningError

    try:
        doc = json.loads(statement)
    except (ValueError, RecursionError):
        doc = None
    kinds = {k.value for k in Kind}
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE or doc.get("predicateType") not in kinds:
        raise SigningError("refusing to sign: not an in-toto Statement v1 of an mlsec-actions predicate type")
    if doc["predicateType"] == Kind.TRAIN_PROVENANCE.value and _build_type(doc) != TRAIN_BUILD_TYPE:
        raise SigningError("refusing to sign: not an in-toto Statement v1 of an mlsec-actions predicate type "
                           f"(SLSA provenance whose build type is not {TRAIN_BUILD_TYPE})")


def _build_type(doc: dict[str, Any]) -> object:
    predicate = doc.get("predicate")
    definition = predicate.get("buildDefinition") if isinstance(predicate, dict) else None
    return definition.get("buildType") if isinstance(definition, dict) else None


def open_statement(signed: SignedPayload, kind: Kind) -> dict[str, Any]:
    """The statement of a verified envelope, after checking it is of `kind` (else VerificationError)."""
    if signed.payload_type != INTOTO_PAYLOAD_TYPE:
        raise VerificationError(f"unexpected DSSE payload type {signed.payload_type!r}, expected "
                                f"{INTOTO_PAYLOAD_TYPE!r}")
    try:
        doc = json.loads(signed.payload)
    except (ValueError, RecursionError):
        raise VerificationError("the signed payload is not JSON") from None
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE:
        raise VerificationError("the signed payload is not an in-toto Statement v1")
    if doc.get("predicateType") != kind.value:
        raise VerificationError(f"signed statement has predicate type {doc.get('predicateType')!r}, expected "
                                f"{kind.value!r} (a bundle made for another kind of artifact)")
    if kind is Kind.TRAIN_PROVENANCE and _build_type(doc) != TRAIN_BUILD_TYPE:
        raise VerificationError(f"signed provenance has build type {_build_type(doc)!r}, expected "
                                f"{TRAIN_BUILD_TYPE!r} (another builder's provenance)")
    if not isinstance(doc.get("subject"), list) or not doc["subject"]:
        raise VerificationError("signed statement has no subjects")
    return doc


def file_digest(doc: dict[str, Any]) -> str:
    """The one subject's hex SHA-256 of a `signed-file/v1` statement."""
    subjects = doc["subject"]
    digest = subjects[0].get("digest") if len(subjects) == 1 and isinstance(subjects[0], dict) else None
    if not isinstance(digest, dict) or set(digest) != {"sha256"}:
        raise VerificationError("signed file statement must have exactly one subject with one sha256 digest")
    value = digest["sha256"]
    if not isinstance(value, str) or len(value) != 64:
        raise VerificationError("signed file statement must have exactly one subject with one sha256 digest")
    return value
