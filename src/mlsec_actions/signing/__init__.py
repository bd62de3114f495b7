"""Signing backends: an explicit registry of the three, each in its own module, imported lazily.

`sigstore` (keyless, GitHub OIDC + Fulcio/Rekor), `openpubkey` (GitHub OIDC token committing to an
ephemeral key, no CA), `key` (a PEM key: air-gapped and local use).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, assert_never

from mlsec_actions.signing.interface import Signer

Backend = Literal["sigstore", "openpubkey", "key"]
BACKENDS: tuple[Backend, ...] = ("sigstore", "openpubkey", "key")


def make_signer(backend: Backend, *, key: Path | None = None, staging: bool = False) -> Signer:
    """The signer for one run; raises `SigningError` when its credential is missing."""
    if backend == "key":
        from mlsec_actions.signing.key import KeySigner, load_private_key

        return KeySigner(load_private_key(key))
    if backend == "openpubkey":
        from mlsec_actions.signing.openpubkey import OpenPubkeySigner

        return OpenPubkeySigner()
    if backend == "sigstore":
        from mlsec_actions.signing.sigstore import SigstoreSigner

        return SigstoreSigner(staging=staging)
    assert_never(backend)
