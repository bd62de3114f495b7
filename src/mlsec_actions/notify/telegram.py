"""telegram: the Bot API's `sendMessage` to one chat, as plain text (no `parse_mode`, so nothing in a
finding title is read as HTML or Markdown), without link previews, within Telegram's 4096 characters.

The bot token (MLSEC_TELEGRAM_BOT_TOKEN) is part of the request path, so no message ever shows the URL.
"""

from __future__ import annotations

import json
import re

from mlsec_actions import sanitize
from mlsec_actions.errors import UsageError
from mlsec_actions.notify import render
from mlsec_actions.notify.http import Client, check_url
from mlsec_actions.notify.model import Channel, Settings, Summary

CREDENTIAL_ENV = "MLSEC_TELEGRAM_BOT_TOKEN"
API = "https://api.telegram.org"
_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}")
_CHAT = re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,64}")


def check(s: Settings) -> None:
    token = s.secret(CREDENTIAL_ENV)
    if token is None:
        raise UsageError(f"telegram: set {CREDENTIAL_ENV}")
    if not _TOKEN.fullmatch(token):
        raise UsageError(f"{CREDENTIAL_ENV}: not a bot token (digits, ':', then the key)")
    chat = s.option("telegram_chat_id")
    if chat is None or not _CHAT.fullmatch(chat):
        raise UsageError("telegram: --telegram-chat-id must be a chat id (digits) or @channelname")
    check_url(s.option("telegram_api_url") or API, "--telegram-api-url")


def send(s: Settings, summary: Summary, client: Client) -> str:
    base = check_url(s.option("telegram_api_url") or API, "--telegram-api-url").rstrip("/")
    text = sanitize.bounded("\n".join(render.lines(summary)), 4096)
    body = json.dumps({"chat_id": s.option("telegram_chat_id"), "text": text, "disable_web_page_preview": True},
                      ensure_ascii=True).encode("ascii")
    client.request("telegram", "POST", f"{base}/bot{s.secret(CREDENTIAL_ENV)}/sendMessage", body,
                   {"Content-Type": "application/json"})
    return "telegram: sent"


CHANNEL = Channel("telegram", "Telegram Bot API sendMessage", (CREDENTIAL_ENV,), check, send)
