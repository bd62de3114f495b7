"""slack: an incoming webhook message in Block Kit.

The webhook URL is the credential (MLSEC_SLACK_WEBHOOK_URL, environment only). Every text from the run goes
in `plain_text` objects, never `mrkdwn`, so no finding title can add a link, a mention (`<!channel>`) or
formatting; Slack's limits (header 150 characters, 10 fields, 3000 per section) are kept.
"""

from __future__ import annotations

import json
import re

from mlsec_actions import sanitize
from mlsec_actions.errors import UsageError
from mlsec_actions.notify import render
from mlsec_actions.notify.http import Client, check_url
from mlsec_actions.notify.model import Channel, Settings, Summary

CREDENTIAL_ENV = "MLSEC_SLACK_WEBHOOK_URL"


def _plain(text: str, limit: int) -> dict[str, object]:
    return {"type": "plain_text", "text": sanitize.bounded(text, limit), "emoji": False}


def fallback(text: str) -> str:
    """The top-level `text` (notifications, old clients), which Slack reads as mrkdwn: `&`, `<`, `>` escaped as
    Slack documents, so a branch named `<!channel>` is text; no `*`, `_`, `~` or backtick formatting either."""
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return sanitize.bounded(re.sub(r"([*_~`])", "\u200b\\1", out), 3000)


def blocks(summary: Summary) -> list[dict[str, object]]:
    """The message's blocks."""
    out: list[dict[str, object]] = [{"type": "header", "text": _plain(summary.headline(), 150)}]
    fields = [_plain(render.stage_line(s), 2000) for s in summary.stages[:10]]
    if fields:
        out.append({"type": "section", "fields": fields})
    if summary.titles:
        top = "\n".join(render.title_line(t) for t in summary.titles)
        out.append({"type": "section", "text": _plain("Top findings:\n" + top, 3000)})
    notes = [f"Coverage gaps: {summary.coverage_total}"] if summary.coverage_total else []
    notes += [f"Warning: {w}" for w in summary.warnings[:5]]
    if summary.run_url:
        notes.append(summary.run_url)
    if notes:
        out.append({"type": "context", "elements": [_plain(n, 2000) for n in notes[:10]]})
    return out


def check(s: Settings) -> None:
    url = s.secret(CREDENTIAL_ENV)
    if url is None:
        raise UsageError(f"slack: set {CREDENTIAL_ENV} (the incoming webhook's URL, a secret)")
    check_url(url, CREDENTIAL_ENV)


def send(s: Settings, summary: Summary, client: Client) -> str:
    url = check_url(s.secret(CREDENTIAL_ENV) or "", CREDENTIAL_ENV)
    body = json.dumps({"text": fallback(summary.headline()), "blocks": blocks(summary)},
                      ensure_ascii=True).encode("ascii")
    client.request("slack", "POST", url, body, {"Content-Type": "application/json"})
    return "slack: posted"


CHANNEL = Channel("slack", "Slack incoming webhook, Block Kit", (CREDENTIAL_ENV,), check, send)
