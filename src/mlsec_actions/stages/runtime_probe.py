"""runtime-probe (Dev stage 12): mlsec's canned, versioned attack set sent to the deployed service, reporting
every probe the protection in front of it (WAF, gateway, RASP, the service's own checks) let through.

Only the hosts the caller lists are contacted: each `--target` / `--llm-target` URL must be inside the
allowlist (`--allow-host`, else the targets' own hosts), checked before any request (exit 2 otherwise);
redirects are never followed and SSRF payloads are data sent to the target. How each probe is judged
(blocked / let through / no effect) is in `analyzers/attack_set.py` and docs/runtime-probe.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, StageResult, ToolRun, ToolStatus
from mlsec_actions.stages.base import (
    ScanContext,
    Stage,
    add_scan_arguments,
    positive_float,
    positive_int,
    run_scan,
)

STAGE_ID = "runtime-probe"
TOOL = "runtime-probe"
_FAMILIES = ("sql-injection", "path-traversal", "command-injection", "reflected-xss", "ssrf-metadata",
             "oversized-body", "prompt-injection", "jailbreak", "system-prompt-leak")


def configure(parser: argparse.ArgumentParser) -> None:
    add_scan_arguments(parser, STAGE_ID)
    parser.add_argument("--target", action="append", default=[], metavar="URL",
                        help="a URL of the service; each query parameter gets every web probe (repeatable)")
    parser.add_argument("--llm-target", action="append", default=[], metavar="URL",
                        help="an OpenAI-style chat completions URL for the LLM probes (repeatable)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="HOST",
                        help="hosts that may be probed; a target elsewhere is refused (default: the targets' hosts)")
    parser.add_argument("--policy", default=None, metavar="POLICY",
                        help="trusted policy whose `runtime-probe.allow-hosts` also bounds the targets")
    parser.add_argument("--skip-family", action="append", default=[], choices=_FAMILIES, metavar="FAMILY",
                        help=f"probe family not to send (repeatable; a coverage gap): {', '.join(_FAMILIES)}")
    parser.add_argument("--llm-canary", action="append", default=[], metavar="TOKEN",
                        help="a token planted in the system prompt: a reply holding it leaked the prompt (repeatable)")
    parser.add_argument("--llm-model", default="default", help="the `model` field of the chat requests")
    parser.add_argument("--request-timeout", type=positive_float, default=10.0,
                        help="seconds per request (default: %(default)s)")
    parser.add_argument("--oversize-bytes", type=positive_int, default=2 * 1024 * 1024,
                        help="size of the oversized-body probe (default: %(default)s)")


def _finding(o: object) -> Finding:
    from mlsec_actions.analyzers import attack_set as aset
    from mlsec_actions.analyzers.prober import Outcome

    assert isinstance(o, Outcome)
    t = o.target
    where = f"the parameter {o.parameter!r} of" if o.parameter else "a request to"
    how = f"; evidence: {o.evidence}" if o.evidence else ""
    props = (("probe", o.probe.id), ("url", f"{t.origin}{t.path}"), ("parameter", o.parameter),
             ("status", str(o.status)), ("attack-set", aset.VERSION))
    return Finding(aset.rule(o.probe.family), f"Probe {o.probe.id} in {where} {t.origin}{t.path} was not blocked "
                   f"(status {o.status}{how}).", aset.severity(o.probe.family),
                   Location(f"{t.host}:{t.port}{t.path}", logical=f"{o.probe.id} {o.parameter}".strip()),
                   properties=props)


def scan(ctx: ScanContext) -> StageResult:
    if Path(ctx.args.paths[0]).resolve() != ctx.target:  # the inputs are options: judged once
        return StageResult(STAGE_ID)
    import secrets

    from mlsec_actions import web_targets
    from mlsec_actions.analyzers import attack_set as aset
    from mlsec_actions.analyzers import prober

    args = ctx.args
    web = web_targets.checked_targets(args.target, args.allow_host, policy_hosts=args.policy_hosts)
    chat = web_targets.checked_targets(args.llm_target, args.allow_host, "--llm-target", args.policy_hosts)
    families = frozenset(aset.Family) - {aset.Family(f) for f in args.skip_family}
    gaps = [CoverageGap(GapKind.EXCLUSION, f"probe family {f} skipped (--skip-family)") for f in args.skip_family]
    notes: list[str] = []
    extra: dict[str, object] = {"attack-set": aset.VERSION}
    if not web and not chat:
        gaps.append(CoverageGap(GapKind.EXCLUSION, "no --target or --llm-target given: nothing was probed"))
        return StageResult(STAGE_ID, (), (ToolRun(TOOL, ToolStatus.OK, version=aset.VERSION, gaps=tuple(gaps)),),
                           extra=extra)
    gaps += [CoverageGap(GapKind.EXCLUSION, f"{t.origin}{t.path} has no query parameter: only the oversized-body "
                                            "probe was sent to it") for t in web if not t.query]
    if chat and not args.llm_canary:
        gaps.append(CoverageGap(GapKind.EXCLUSION, "system-prompt leak probes not sent: no --llm-canary planted"))
    down = [t for t in (*web, *chat) if web_targets.send(t, "GET", t.with_query(t.query),
                                                          timeout=args.request_timeout).status is None]
    if down:
        message = f"target {down[0].origin} did not answer a baseline request: nothing could be probed"
        return StageResult(STAGE_ID, (), (ToolRun(TOOL, ToolStatus.FAILED, version=aset.VERSION, message=message,
                                                  gaps=tuple(gaps)),), extra=extra)
    canary = "mlsec-" + secrets.token_hex(8)
    budget = prober.Budget(args.timeout)
    outcomes = [*prober.web(web, families, canary, budget, args.request_timeout, args.oversize_bytes),
                *prober.llm(chat, families, canary, tuple(args.llm_canary), args.llm_model, budget,
                            args.request_timeout)]
    counts = {v: sum(o.verdict == v for o in outcomes) for v in (prober.BLOCKED, prober.LET_THROUGH, prober.NO_EFFECT)}
    extra["probes"] = {"sent": len(outcomes), **counts}
    status, message = ToolStatus.OK, ""
    if budget.spent:
        status, message = ToolStatus.TIMEOUT, f"time budget of {args.timeout:g}s spent after {len(outcomes)} probes"
        gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"{message}; the rest were not sent"))
    after = [t for t in (*web, *chat) if web_targets.send(t, "GET", t.with_query(t.query),
                                                           timeout=args.request_timeout).status is None]
    if after and status is ToolStatus.OK:
        status, message = ToolStatus.FAILED, f"target {after[0].origin} stopped answering during the probes"
    notes.append(f"attack set {aset.VERSION}: {len(outcomes)} probes sent, {counts[prober.BLOCKED]} blocked, "
                 f"{counts[prober.LET_THROUGH]} let through, {counts[prober.NO_EFFECT]} reached with no effect")
    findings = tuple(_finding(o) for o in outcomes if o.verdict == prober.LET_THROUGH)
    from mlsec_actions.findings import sort_findings

    tool = ToolRun(TOOL, status, version=aset.VERSION, message=message, notes=tuple(notes), gaps=tuple(gaps))
    return StageResult(STAGE_ID, sort_findings(findings), (tool,), extra=extra)


def execute(args: argparse.Namespace) -> int:
    from mlsec_actions import web_targets

    # Refused before anything is sent (and before any file is written): a target outside the allowlist.
    args.policy_hosts = web_targets.policy_hosts(args.policy, STAGE_ID)
    web_targets.checked_targets(args.target, args.allow_host, policy_hosts=args.policy_hosts)
    web_targets.checked_targets(args.llm_target, args.allow_host, "--llm-target", args.policy_hosts)
    return run_scan(args, STAGE_ID, scan)


STAGE = Stage(STAGE_ID, "attack probes proving runtime protection works", configure, execute)
