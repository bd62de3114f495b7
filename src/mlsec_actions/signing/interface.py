"""The small interface every signing backend implements, and the errors they raise.

A backend signs one thing: a DSSE envelope (payload type `application/vnd.in-toto+json`) over an
in-toto statement we built (`statements`: a file, a model folder's model_signing manifest, or the gate
attestation, each its own predicate type). It never signs a bare digest or caller-chosen bytes, so a
signature cannot be moved from one kind of artifact to another. Bundles (`*.sigstore.json`) travel
as plain JSON dicts so the key, OpenPubkey and Sigstore backends share one format.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from mlsec_actions.errors import ExitCode, MlsecError

Bundle = dict[str, Any]
"""A Sigstore bundle as parsed JSON."""

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
"""What we write."""
READ_MEDIA_TYPES = frozenset({
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    BUNDLE_MEDIA_TYPE,
})
"""Bundle media types read, exactly (suffix included): the ones Sigstore's bundle spec defines."""
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""DSSE payload type of every statement we sign."""
BUNDLE_SUFFIX = ".sigstore.json"
"""`ARTIFACT.sigstore.json` sits beside the artifact (a folder's bundle sits beside the folder)."""


class SigningError(MlsecError):
    """Signing could not happen (no credential, no key, refused by policy): exit 1."""

    exit_code = ExitCode.ERROR


class VerificationError(MlsecError):
    """A signature, identity or digest did not check out: exit 1, naming what changed."""

    exit_code = ExitCode.ERROR


@dataclass(frozen=True)
class SignedPayload:
    """What a verified DSSE envelope carried."""

    payload_type: str
    """DSSE payloadType."""
    payload: bytes
    """The exact signed bytes (JSON of an in-toto statement)."""
    signer: str
    """Who signed it, for the report: key fingerprint or OIDC identity."""
    trusted: str = ""
    """The trust entry that verified it (`Verifier.label`), when the verifier has one."""


class Signer(abc.ABC):
    """Makes bundles. One instance signs every artifact of one `mlsec sign` run."""

    name: str = ""

    def sign_statement(self, statement: bytes) -> Bundle:
        """A `dsseEnvelope` bundle over an in-toto statement (payload type `INTOTO_PAYLOAD_TYPE`).

        Refuses anything but a Statement v1 of one of our `statements.Kind` predicate types, so no future
        caller can turn a backend back into a signer of arbitrary bytes.
        """
        from mlsec_actions.signing.statements import require_typed  # statements imports this module

        require_typed(statement)
        return self._sign(statement)

    @abc.abstractmethod
    def _sign(self, statement: bytes) -> Bundle:
        """The backend's DSSE signature over `statement` (already checked to be typed)."""


class Verifier(abc.ABC):
    """Checks bundles of one kind against an expected key or identity."""

    name: str = ""
    label: str = ""
    """Which trust entry made this verifier (`--public-key k.pub`, `trust.yml signers[1]`), for the report."""

    @abc.abstractmethod
    def accepts(self, bundle: Bundle) -> bool:
        """True when the bundle is of this backend's kind (key hint, OpenPubkey token, certificate)."""

    def verify_message(self, bundle: Bundle, sha256: bytes) -> str:
        """Check a `messageSignature` bundle for a file with this SHA-256; return the signer.

        Only keyless Sigstore bundles logged as Rekor v1 `hashedrekord` entries are typed by their log
        entry; a key or OpenPubkey signature over a bare digest could be any DSSE signature moved over.
        """
        raise VerificationError(f"a {self.name} messageSignature bundle (a bare file digest, as mlsec-actions "
                                "signed files before typed statements) is not accepted: re-sign the file")

    def verify_message_trusted(self, bundle: Bundle, sha256: bytes) -> tuple[str, str]:
        """`verify_message`, and the label of the trust entry that verified it."""
        return self.verify_message(bundle, sha256), self.label

    def verify_dsse_trusted(self, bundle: Bundle) -> SignedPayload:
        """`verify_dsse`, with `trusted` naming the trust entry that verified it."""
        signed = self.verify_dsse(bundle)
        return signed if signed.trusted else SignedPayload(signed.payload_type, signed.payload, signed.signer,
                                                           self.label)

    @abc.abstractmethod
    def verify_dsse(self, bundle: Bundle) -> SignedPayload:
        """Check a `dsseEnvelope` bundle's signature and signer; return what it signed (type unchecked)."""
