"""webhook: the summary as JSON (render.document) POSTed to any URL, signed.

Headers: `X-Mlsec-Timestamp` (Unix seconds) and `X-Mlsec-Signature: sha256=HEX`, the HMAC-SHA256 with the
secret of `TIMESTAMP.` followed by the exact body bytes, so a receiver checks the bytes it got and refuses
old timestamps (replays). The secret (MLSEC_WEBHOOK_SECRET) is required: an unsigned body could be forged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from mlsec_actions.errors import UsageError
from mlsec_actions.notify import render
from mlsec_actions.notify.http import Client, check_url, host_of
from mlsec_actions.notify.model import Channel, Settings, Summary

CREDENTIAL_ENV = "MLSEC_WEBHOOK_SECRET"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=HEX` over `TIMESTAMP.BODY`."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def check(s: Settings) -> None:
    url = s.option("webhook_url")
    if url is None:
        raise UsageError("webhook: set --webhook-url (MLSEC_WEBHOOK_URL)")
    check_url(url, "--webhook-url")
    if s.secret(CREDENTIAL_ENV) is None:
        raise UsageError(f"webhook: set {CREDENTIAL_ENV} (the HMAC key the receiver checks the signature with)")


def send(s: Settings, summary: Summary, client: Client) -> str:
    url = check_url(s.option("webhook_url") or "", "--webhook-url")
    body = json.dumps(render.document(summary), sort_keys=True, ensure_ascii=True).encode("ascii")
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Mlsec-Event": "run", "X-Mlsec-Timestamp": stamp,
               "X-Mlsec-Signature": signature(s.secret(CREDENTIAL_ENV) or "", stamp, body)}
    client.request("webhook", "POST", url, body, headers)
    return f"webhook: posted to {host_of(url)}"


CHANNEL = Channel("webhook", "JSON summary, HMAC-SHA256 signed", (CREDENTIAL_ENV,), check, send)
