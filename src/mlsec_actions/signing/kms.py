"""`kms` backend: sign with an AWS KMS asymmetric key (ECC_NIST_P256, ECDSA_SHA_256); the key never leaves KMS.

KMS signs each DSSE PAE (`MessageType=RAW` up to KMS's 4,096-byte message limit, its SHA-256 with
`MessageType=DIGEST` above it, so a model folder's statement of any size fits) and returns a DER ECDSA
signature: what the key backend writes, with the same public-key hint (hex SHA-256 of the PEM public key).
So `mlsec verify --public-key kms.pub` and `model_signing verify key` accept these bundles, and
`mlsec sign --backend kms --public-key-out kms.pub` exports that key. Credentials, region and endpoint come
from the environment as boto3 reads them (`AWS_*`, e.g. set by aws-actions/configure-aws-credentials from
the job's OIDC token); nothing is read from the scanned tree.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions.sanitize import log_line
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing.interface import INTOTO_PAYLOAD_TYPE, Bundle, Signer, SigningError

ENV_KEY_ID = "MLSEC_KMS_KEY"
"""Key id, ARN or alias (`alias/release-signing`) when `--kms-key` is not given."""
_ALGORITHM = "ECDSA_SHA_256"
_MAX_RAW = 4096
"""KMS's limit for a RAW message; larger statements are sent as their SHA-256 (MessageType DIGEST)."""


def _error(e: Exception) -> SigningError:
    # botocore messages name the operation and the error code; never the credentials.
    return SigningError(log_line(f"kms backend: {type(e).__name__}: {e}"))


class KmsSigner(Signer):
    name = "kms"

    def __init__(self, key_id: str, client: Any = None) -> None:
        if not key_id:
            raise SigningError(f"kms backend: no key; pass --kms-key ID|ARN|alias/NAME or set {ENV_KEY_ID}")
        import boto3
        import botocore.exceptions

        self._errors = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
        try:
            self._client = client if client is not None else boto3.client("kms")
            meta = self._client.get_public_key(KeyId=key_id)
        except self._errors as e:
            raise _error(e) from None
        spec = meta.get("KeySpec", meta.get("CustomerMasterKeySpec"))  # the second: its deprecated name
        if spec != "ECC_NIST_P256" or meta.get("KeyUsage") != "SIGN_VERIFY" or \
                _ALGORITHM not in meta.get("SigningAlgorithms", []):
            raise SigningError(f"kms backend: key {key_id!r} is {spec}/{meta.get('KeyUsage')}; "
                               "an ECC_NIST_P256 SIGN_VERIFY key is needed")
        public = serialization.load_der_public_key(meta["PublicKey"])
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise SigningError("kms backend: the key's public key is not an EC key")
        self.public_key = bl.check_p256(public, f"KMS key {key_id}")
        self._key_id = str(meta.get("KeyId", key_id))  # the ARN: an alias could be re-pointed mid-run
        self._hint = bl.key_hint(self.public_key)

    def _sign(self, statement: bytes) -> Bundle:
        signed = bl.pae(INTOTO_PAYLOAD_TYPE, statement)
        raw = len(signed) <= _MAX_RAW
        try:
            sig = self._client.sign(KeyId=self._key_id, Message=signed if raw else hashlib.sha256(signed).digest(),
                                    MessageType="RAW" if raw else "DIGEST", SigningAlgorithm=_ALGORITHM)["Signature"]
        except self._errors as e:
            raise _error(e) from None
        if not bl.verify_data(self.public_key, sig, signed):  # a wrong key or a broken proxy: never write it
            raise SigningError("kms backend: KMS returned a signature that does not verify under the key")
        return bl.dsse_bundle(self._hint, INTOTO_PAYLOAD_TYPE, statement, sig)
