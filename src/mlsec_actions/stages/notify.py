"""notify (all stages): a run's summary to Slack, Telegram, a signed webhook, a Prometheus Pushgateway,
DefectDojo and PagerDuty (channels in `notify/`, one file each, listed in `notify/registry.py`).

Bad configuration (an unknown channel, a malformed URL, http:// to a host that is not loopback, a missing
credential) is exit 2 with one line, before anything is read or sent. Delivery is best effort: a channel that
fails after its retries (or the run's time budget running out) is a warning, and the exit code stays 0, so a
notification never changes a verdict. Credentials come from the environment only (`MLSEC_SLACK_WEBHOOK_URL`,
`MLSEC_TELEGRAM_BOT_TOKEN`, `MLSEC_WEBHOOK_SECRET`, `MLSEC_DEFECTDOJO_TOKEN`, `MLSEC_PAGERDUTY_ROUTING_KEY`,
`MLSEC_PUSHGATEWAY_USERNAME`, `MLSEC_PUSHGATEWAY_PASSWORD`), are masked in the log as soon as read and
scrubbed from every line printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlsec_actions import gha, outputs, sanitize
from mlsec_actions.errors import ExitCode, UsageError
from mlsec_actions.stages.base import Stage, non_negative_int, positive_float

STAGE_ID = "notify"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="?", type=Path, default=Path("mlsec-results"), metavar="RESULTS",
                        help="the run's results folder: verdict JSON, SARIF, run.json (default: %(default)s)")
    parser.add_argument("--channel", action="append", default=[], metavar="CHANNEL",
                        help="webhook, slack, telegram, pushgateway, defectdojo or pagerduty (repeatable; "
                             "MLSEC_CHANNEL: one per line)")
    parser.add_argument("--verdict", type=Path, default=None,
                        help="the gate's verdict JSON (default: RESULTS/verdict.json or RESULTS/gate-verdict.json)")
    parser.add_argument("--sarif-dir", type=Path, default=None,
                        help="folder of the stages' SARIF (default: RESULTS/sarif if present, else RESULTS)")
    parser.add_argument("--run-record", type=Path, default=None, help="mlsec run's run.json (stage durations)")
    parser.add_argument("--details", action="store_true",
                        help="also send finding messages and locations (default: rule titles and counts only)")
    parser.add_argument("--timeout", type=positive_float, default=60.0,
                        help="seconds for all deliveries together, retries included (default: %(default)s)")
    parser.add_argument("--retries", type=non_negative_int, default=3,
                        help="retries per request after a connection error, timeout, 429 or 5xx (default: %(default)s)")
    parser.add_argument("--record", type=outputs.output_file, default=None,
                        help="write what was sent (channel, outcome) as JSON here")
    parser.add_argument("--webhook-url", default=None, help="webhook: where the signed JSON is POSTed")
    parser.add_argument("--telegram-chat-id", default=None, help="telegram: chat id or @channel")
    parser.add_argument("--telegram-api-url", default=None, help="telegram: Bot API base (default: api.telegram.org)")
    parser.add_argument("--pushgateway-url", default=None, help="pushgateway: base URL")
    parser.add_argument("--pushgateway-job", default="mlsec", help="pushgateway: job label (default: %(default)s)")
    parser.add_argument("--defectdojo-url", default=None, help="defectdojo: base URL (without /api/v2)")
    parser.add_argument("--defectdojo-product", default=None, help="defectdojo: product name (created if missing)")
    parser.add_argument("--defectdojo-engagement", default=None,
                        help="defectdojo: engagement name in the product (created if missing)")
    parser.add_argument("--defectdojo-product-type", default="mlsec",
                        help="defectdojo: product type for a new product (default: %(default)s)")
    parser.add_argument("--pagerduty-url", default=None, help="pagerduty: Events v2 endpoint (default: PagerDuty's)")
    parser.add_argument("--branch", default=None, help="pagerduty: this run's branch (default: $GITHUB_REF_NAME)")
    parser.add_argument("--default-branch", default=None,
                        help="pagerduty: the repository's default branch; only a failure there pages")


def channel_ids(names: list[str]) -> list[str]:
    """The channel names given (comma-separated or one per item), checked, in order, once each."""
    from mlsec_actions.notify.registry import CHANNEL_IDS

    chosen: list[str] = []
    for raw in names:
        for name in (n.strip() for n in str(raw).split(",")):
            if not name:
                continue
            if name not in CHANNEL_IDS:
                raise UsageError(f"--channel: unknown channel {sanitize.log_line(name, 60)!r} "
                                 f"(choose from {', '.join(CHANNEL_IDS)})")
            if name not in chosen:
                chosen.append(name)
    return chosen


def execute(args: argparse.Namespace) -> int:
    from mlsec_actions.notify import registry, results
    from mlsec_actions.notify.http import Client
    from mlsec_actions.notify.model import NotifyFailed, Settings, read_secrets

    chosen = [registry.by_id(c) for c in channel_ids(args.channel)]
    channels = [c for c in chosen if c is not None]
    if not channels:
        print("notify: no channel configured; nothing sent", file=sys.stderr)
        return ExitCode.OK
    secrets = read_secrets(tuple(n for c in channels for n in c.secrets))
    for value in secrets.values():
        gha.mask(value)
    settings = Settings(options=vars(args), secrets=secrets, details=bool(args.details))
    for channel in channels:
        channel.check(settings)  # UsageError: exit 2 before anything is read or sent
    summary = results.read(Path(args.results), verdict_file=args.verdict, sarif_dir=args.sarif_dir,
                           run_record=args.run_record, details=bool(args.details))
    client = Client(budget=float(args.timeout), retries=int(args.retries), secrets=tuple(secrets.values()))
    record: list[dict[str, str]] = []
    for channel in channels:
        try:
            line, ok = channel.send(settings, summary, client), True
        except NotifyFailed as e:
            line, ok = str(e), False
        except Exception as e:  # a channel's bug or a hostile answer: still only a warning (never the verdict)
            line, ok = f"{channel.id}: internal error ({type(e).__name__})", False
        line = sanitize.log_line(client.scrub(line))
        record.append({"channel": channel.id, "status": "sent" if ok else "failed", "detail": line})
        if ok:
            print(f"notify: {line}", file=sys.stderr)
        else:
            print(f"notify: warning: {line}", file=sys.stderr)
            gha.annotation("warning", line, title="mlsec notify")
    failed = sum(1 for r in record if r["status"] == "failed")
    if args.record is not None:
        outputs.write_text(args.record, json.dumps({"verdict": summary.verdict, "channels": record}, indent=1) + "\n")
    gha.set_output("sent", str(len(record) - failed))
    gha.set_output("failed", str(failed))
    rows = [(r["channel"], r["status"], r["detail"]) for r in record]
    gha.append_summary("### mlsec notify\n\n" + gha.md_table(("channel", "status", "detail"), rows) + "\n")
    print(sanitize.log_line(f"notify: {len(record) - failed} sent, {failed} failed (verdict {summary.verdict})"),
          file=sys.stderr)
    return ExitCode.OK


STAGE = Stage(id=STAGE_ID, summary="post the run's summary: Slack, Telegram, webhook, DefectDojo, Pushgateway, "
                                   "PagerDuty", configure=configure, execute=execute)
