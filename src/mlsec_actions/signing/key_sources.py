"""Where the key backend's PEM key may come from besides a file or `MLSEC_SIGNING_KEY`: a secret store.

`aws-secretsmanager:<secret id or ARN>` reads the secret's `SecretString` with boto3 (credentials from the
environment, e.g. OIDC-federated by aws-actions/configure-aws-credentials); `vault-kv:<mount>/<path>#<field>`
reads one field of a Vault KV v2 secret (`VAULT_ADDR`, `VAULT_TOKEN`). The value is masked in the Actions log
before anything else is done with it, and never printed.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request

from mlsec_actions import gha
from mlsec_actions.errors import UsageError
from mlsec_actions.sanitize import log_line
from mlsec_actions.signing.interface import SigningError

ENV_SOURCE = "MLSEC_KEY_SOURCE"
"""A key source when neither `--key` nor `--key-source` is given."""
_VAULT_KV = re.compile(r"vault-kv:(?P<mount>[A-Za-z0-9_.-]+)/(?P<path>[A-Za-z0-9_./-]+)#(?P<field>[A-Za-z0-9_.-]+)")
_MAX = 64 * 1024


def fetch(source: str) -> tuple[bytes, str]:
    """(PEM bytes, where) for a key source; raises UsageError for a malformed one, SigningError on failure."""
    if source.startswith("aws-secretsmanager:") and len(source) > len("aws-secretsmanager:"):
        return _secrets_manager(source.split(":", 1)[1]), source
    match = _VAULT_KV.fullmatch(source)
    if match and ".." not in match["path"].split("/"):
        return _vault_kv(match["mount"], match["path"], match["field"]), source
    raise UsageError(f"--key-source {source!r}: use aws-secretsmanager:<secret-id> or "
                     "vault-kv:<mount>/<path>#<field>")


def _secrets_manager(secret_id: str) -> bytes:
    import boto3
    import botocore.exceptions

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id).get("SecretString")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise SigningError(log_line(f"key backend: Secrets Manager {secret_id}: {type(e).__name__}: {e}")) from None
    if not isinstance(value, str) or not value:
        raise SigningError(f"key backend: Secrets Manager {secret_id} has no SecretString")
    gha.mask(value)
    return value.encode("utf-8")


def _vault_kv(mount: str, path: str, field: str) -> bytes:
    from mlsec_actions.signing.vault import _base_url

    addr, token = os.environ.get("VAULT_ADDR", ""), os.environ.get("VAULT_TOKEN", "")
    if not addr or not token:
        raise SigningError("key backend: vault-kv needs VAULT_ADDR and VAULT_TOKEN")
    gha.mask(token)
    req = urllib.request.Request(f"{_base_url(addr)}/v1/{mount}/data/{path}",  # noqa: S310 - scheme checked
                                 headers={"X-Vault-Token": token, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - scheme checked
            doc = json.loads(resp.read(_MAX))
    except urllib.error.HTTPError as e:
        raise SigningError(f"key backend: Vault KV {mount}/{path}: HTTP {e.code}") from None
    except (OSError, ValueError) as e:
        raise SigningError(log_line(f"key backend: Vault KV {mount}/{path}: {e}")) from None
    outer = doc.get("data") if isinstance(doc, dict) else None
    inner = outer.get("data") if isinstance(outer, dict) else None
    value = inner.get(field) if isinstance(inner, dict) else None
    if not isinstance(value, str) or not value:
        raise SigningError(f"key backend: Vault KV {mount}/{path} has no field {field!r}")
    gha.mask(value)
    return value.encode("utf-8")
