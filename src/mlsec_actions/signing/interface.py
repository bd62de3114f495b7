"""The small interface every signing backend implements, and the errors they raise.

A backend signs two things, both written as Sigstore bundles (`*.sigstore.json`):
- a file's SHA-256 (a `messageSignature` bundle; the digest comes from the shared digest cache), and
- a DSSE envelope (an in-toto statement: the model_signing manifest of a model folder, or the
  gate attestation).
Bundles travel as plain JSON dicts so the key, OpenPubkey and Sigstore backends share one format.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from mlsec_actions.errors import ExitCode, MlsecError

Bundle = dict[str, Any]
"""A Sigstore bundle as parsed JSON."""

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
"""What we write; older v0.1/v0.2 bundles are still read (the fixture is v0.2)."""
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


class Signer(abc.ABC):
    """Makes bundles. One instance signs every artifact of one `mlsec sign` run."""

    name: str = ""

    @abc.abstractmethod
    def sign_digest(self, sha256: bytes) -> Bundle:
        """A `messageSignature` bundle over a file whose SHA-256 is `sha256`."""

    @abc.abstractmethod
    def sign_dsse(self, payload_type: str, payload: bytes) -> Bundle:
        """A `dsseEnvelope` bundle over `payload`."""


class Verifier(abc.ABC):
    """Checks bundles of one kind against an expected key or identity."""

    name: str = ""

    @abc.abstractmethod
    def accepts(self, bundle: Bundle) -> bool:
        """True when the bundle is of this backend's kind (key hint, OpenPubkey token, certificate)."""

    @abc.abstractmethod
    def verify_digest(self, bundle: Bundle, sha256: bytes) -> str:
        """Check a `messageSignature` bundle for a file with this SHA-256; return the signer."""

    @abc.abstractmethod
    def verify_dsse(self, bundle: Bundle) -> SignedPayload:
        """Check a `dsseEnvelope` bundle; return what it signed."""
