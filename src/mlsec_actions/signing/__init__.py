"""Signing backends: an explicit registry of the three, each in its own module, imported lazily.

`sigstore` (keyless, GitHub OIDC + Fulcio/Rekor), `openpubkey` (OpenPubkey PK Token committing to an
ephemeral key, no CA), `key` (a PEM key: air-gapped and local use), `kms` (an AWS KMS key) and `vault` (a
HashiCorp Vault transit key); the last two write key-backend bundles without the key leaving its store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, assert_never

from mlsec_actions.signing.interface import Signer

Backend = Literal["sigstore", "openpubkey", "key", "kms", "vault"]
BACKENDS: tuple[Backend, ...] = ("sigstore", "openpubkey", "key", "kms", "vault")


def make_signer(backend: Backend, *, key: Path | None = None, staging: bool = False, kms_key: str = "",
                vault_key: str = "", key_source: str = "", trust_config: Path | None = None) -> Signer:
    """The signer for one run; raises `SigningError` when its credential is missing."""
    if backend == "key":
        from mlsec_actions.signing.key import KeySigner, load_private_key

        return KeySigner(load_private_key(key, key_source))
    if backend == "openpubkey":
        from mlsec_actions.signing.openpubkey import OpenPubkeySigner

        return OpenPubkeySigner()
    if backend == "sigstore":
        from mlsec_actions.signing.sigstore import SigstoreSigner

        return SigstoreSigner(staging=staging, trust_config=trust_config)
    if backend == "kms":
        from mlsec_actions.signing.kms import ENV_KEY_ID, KmsSigner

        return KmsSigner(kms_key or os.environ.get(ENV_KEY_ID, ""))
    if backend == "vault":
        from mlsec_actions.signing.vault import ENV_KEY, VaultSigner

        return VaultSigner(vault_key or os.environ.get(ENV_KEY, ""))
    assert_never(backend)
