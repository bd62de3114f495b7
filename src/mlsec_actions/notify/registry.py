"""The channels, as an explicit tuple: nothing is found by scanning or named by a config file's class path."""

from __future__ import annotations

from mlsec_actions.notify import defectdojo, pagerduty, pushgateway, slack, telegram, webhook
from mlsec_actions.notify.model import Channel

CHANNELS: tuple[Channel, ...] = (
    webhook.CHANNEL,
    slack.CHANNEL,
    telegram.CHANNEL,
    pushgateway.CHANNEL,
    defectdojo.CHANNEL,
    pagerduty.CHANNEL,
)

CHANNEL_IDS: tuple[str, ...] = tuple(c.id for c in CHANNELS)


def by_id(channel_id: str) -> Channel | None:
    return next((c for c in CHANNELS if c.id == channel_id), None)
