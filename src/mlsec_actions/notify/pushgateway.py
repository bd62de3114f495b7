"""pushgateway: the run as Prometheus metrics, PUT to a Pushgateway (text exposition format 0.0.4).

Metrics (all gauges): `mlsec_findings{stage,severity}`, `mlsec_stage_duration_seconds{stage}`,
`mlsec_stage_tool_errors{stage}`, `mlsec_coverage_gaps{stage}` and `mlsec_coverage_gaps_total`,
`mlsec_gate_passed` (1 pass, 0 fail or no verdict), `mlsec_gate_violations`, `mlsec_last_run_timestamp_seconds`.
The grouping key is `job` (--pushgateway-job) and, when known, `repository` and `pipeline`, each base64url
encoded in the path (`label@base64/...`), so no value can add a path segment. PUT replaces the group: a stage
gone from this run does not linger from the last.

Basic auth (a Pushgateway behind `--web.config.file` `basic_auth_users`, or a proxy): MLSEC_PUSHGATEWAY_USERNAME
and MLSEC_PUSHGATEWAY_PASSWORD, environment only, both or neither, masked like every channel's credential. The
URL is https, or http to loopback only (`http.check_url`, as for every channel), so they never cross a network in
clear; a wrong pair is the gateway's 401, a warning naming the host.
"""

from __future__ import annotations

import base64
import re
import time

from mlsec_actions.errors import UsageError
from mlsec_actions.notify.http import Client, check_url, host_of
from mlsec_actions.notify.model import SEVERITIES, Channel, Settings, Summary

_JOB = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
USERNAME_ENV = "MLSEC_PUSHGATEWAY_USERNAME"
PASSWORD_ENV = "MLSEC_PUSHGATEWAY_PASSWORD"  # noqa: S105 - the variable's name, not a password


def _credentials(s: Settings) -> tuple[str, str] | None:
    """(username, password), or None; UsageError for half a pair or a value Basic auth cannot carry (the value
    itself is never repeated)."""
    user, password = s.secret(USERNAME_ENV), s.secret(PASSWORD_ENV)
    if user is None and password is None:
        return None
    if user is None or password is None:
        raise UsageError(f"pushgateway: set both {USERNAME_ENV} and {PASSWORD_ENV}, or neither")
    if ":" in user or not user.isprintable() or len(user) > 256:
        raise UsageError(f"pushgateway: {USERNAME_ENV}: printable, no ':', at most 256 characters")
    if not password.isprintable() or len(password) > 1024:
        raise UsageError(f"pushgateway: {PASSWORD_ENV}: printable, at most 1024 characters")
    return user, password


def auth_header(s: Settings) -> dict[str, str]:
    """`Authorization: Basic ...` when credentials are set (RFC 7617, UTF-8), else nothing."""
    pair = _credentials(s)
    if pair is None:
        return {}
    token = base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def label(value: str) -> str:
    """A label value in the exposition format: backslash, double quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(summary: Summary, now: float | None = None) -> str:
    """The metrics text."""
    out: list[str] = []

    def family(name: str, help_text: str, rows: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")
        out.extend(f"{name}{labels} {value:g}" for labels, value in rows)

    family("mlsec_findings", "Findings in this run by stage and severity.",
           [(f'{{stage="{label(s.stage)}",severity="{sev}"}}', s.counts.get(sev, 0))
            for s in summary.stages for sev in SEVERITIES])
    family("mlsec_stage_duration_seconds", "Wall time of each stage.",
           [(f'{{stage="{label(s.stage)}"}}', s.seconds) for s in summary.stages if s.seconds is not None])
    family("mlsec_stage_tool_errors", "Tools of the stage that failed, were missing or timed out.",
           [(f'{{stage="{label(s.stage)}"}}', s.tool_errors) for s in summary.stages])
    family("mlsec_coverage_gaps", "What each stage could not check.",
           [(f'{{stage="{label(s.stage)}"}}', s.coverage_gaps) for s in summary.stages])
    family("mlsec_coverage_gaps_total", "Coverage gaps over the run.", [("", summary.coverage_total)])
    family("mlsec_gate_passed", "1 when the gate passed; 0 when it failed or left no verdict.",
           [("", 1 if summary.passed else 0)])
    family("mlsec_gate_violations", "Policy violations.", [("", summary.violations)])
    family("mlsec_last_run_timestamp_seconds", "When this run's metrics were pushed.",
           [("", float(int(now if now is not None else time.time())))])
    return "\n".join(out) + "\n"


def _segment(name: str, value: str) -> str:
    return f"{name}@base64/{base64.urlsafe_b64encode(value.encode('utf-8')).decode('ascii') or '='}"


def group_url(base: str, job: str, summary: Summary) -> str:
    parts = [_segment("job", job)]
    if summary.repository:
        parts.append(_segment("repository", summary.repository))
    if summary.pipeline:
        parts.append(_segment("pipeline", summary.pipeline))
    return f"{base.rstrip('/')}/metrics/" + "/".join(parts)


def check(s: Settings) -> None:
    url = s.option("pushgateway_url")
    if url is None:
        raise UsageError("pushgateway: set --pushgateway-url (MLSEC_PUSHGATEWAY_URL)")
    check_url(url, "--pushgateway-url")
    if not _JOB.fullmatch(s.option("pushgateway_job") or "mlsec"):
        raise UsageError("--pushgateway-job: letters, digits, '_', '.', ':', '-' (at most 100)")
    _credentials(s)


def send(s: Settings, summary: Summary, client: Client) -> str:
    base = check_url(s.option("pushgateway_url") or "", "--pushgateway-url")
    body = exposition(summary).encode("utf-8")
    client.request("pushgateway", "PUT", group_url(base, s.option("pushgateway_job") or "mlsec", summary), body,
                   {"Content-Type": "text/plain; version=0.0.4; charset=utf-8", **auth_header(s)})
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    how = " (basic auth)" if s.secret(PASSWORD_ENV) else ""
    return f"pushgateway: {samples} samples pushed to {host_of(base)}{how}"


CHANNEL = Channel("pushgateway", "Prometheus Pushgateway metrics", (USERNAME_ENV, PASSWORD_ENV), check, send)
