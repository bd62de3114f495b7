"""pagerduty: an Events API v2 `trigger`, only for a failing gate (or none at all) on the default branch.

Anything else (a pass, a pull request branch) sends nothing and says so. The routing key
(MLSEC_PAGERDUTY_ROUTING_KEY) is the credential; the dedup key is per repository and branch, so reruns of
the same failure update one incident instead of paging again.
"""

from __future__ import annotations

import json

from mlsec_actions import sanitize
from mlsec_actions.errors import UsageError
from mlsec_actions.notify import render
from mlsec_actions.notify.http import Client, check_url
from mlsec_actions.notify.model import Channel, Settings, Summary

CREDENTIAL_ENV = "MLSEC_PAGERDUTY_ROUTING_KEY"
API = "https://events.pagerduty.com/v2/enqueue"


def check(s: Settings) -> None:
    if s.secret(CREDENTIAL_ENV) is None:
        raise UsageError(f"pagerduty: set {CREDENTIAL_ENV}")
    check_url(s.option("pagerduty_url") or API, "--pagerduty-url")


def event(s: Settings, summary: Summary) -> dict[str, object]:
    source = summary.repository or "mlsec"
    doc = render.document(summary)
    details = {k: doc[k] for k in ("verdict", "violations", "totals", "coverage_gaps", "run_id", "sha")}
    details["stages"] = [render.stage_line(st) for st in summary.stages]
    out: dict[str, object] = {
        "routing_key": s.secret(CREDENTIAL_ENV),
        "event_action": "trigger",
        "dedup_key": sanitize.bounded(f"mlsec/{source}/{summary.ref or s.option('branch') or ''}", 255),
        "payload": {"summary": sanitize.bounded(summary.headline(), 1024), "source": source,
                    "severity": "error", "component": summary.pipeline or "mlsec", "group": "mlsec-gate",
                    "class": "security-gate", "custom_details": details},
    }
    if summary.run_url:
        out["links"] = [{"href": summary.run_url, "text": "workflow run"}]
    return out


def send(s: Settings, summary: Summary, client: Client) -> str:
    branch, default = s.option("branch") or summary.ref, s.option("default_branch")
    if summary.passed:
        return "pagerduty: not sent (the gate passed)"
    if not branch or not default or branch != default:
        return f"pagerduty: not sent (branch {branch or '?'} is not the default branch {default or '?'})"
    url = check_url(s.option("pagerduty_url") or API, "--pagerduty-url")
    body = json.dumps(event(s, summary), ensure_ascii=True).encode("ascii")
    client.request("pagerduty", "POST", url, body, {"Content-Type": "application/json"})
    return "pagerduty: incident triggered"


CHANNEL = Channel("pagerduty", "PagerDuty Events v2, failing gate on the default branch", (CREDENTIAL_ENV,),
                  check, send)
