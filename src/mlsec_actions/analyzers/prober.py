"""Send the canned attack set (`attack_set.py`) to allowlisted targets and judge each probe.

Every request goes to a target's own origin (`web_targets.send`: no redirect followed). A baseline request
first shows the target answers at all (a target that does not answer fails the run: every probe would look
"blocked"); the same baseline after the probes shows the service survived them.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from mlsec_actions import web_targets
from mlsec_actions.analyzers import attack_set as aset
from mlsec_actions.analyzers.attack_set import Family, Probe
from mlsec_actions.web_targets import Response, Target

BLOCKED, LET_THROUGH, NO_EFFECT = "blocked", "let-through", "no-effect"
_EVIDENCE_SHOWN = 120


@dataclass(frozen=True)
class Outcome:
    """One probe sent once, and how it was judged."""

    probe: Probe
    """Which probe."""
    target: Target
    """Where it went."""
    parameter: str
    """The query parameter replaced ('' for body probes)."""
    verdict: str
    """`blocked`, `let-through` or `no-effect`."""
    status: int | None
    """The HTTP status (None: the connection was dropped)."""
    evidence: str = ""
    """What in the response showed success (bounded), for let-through probes."""


@dataclass
class Budget:
    """The run's time budget: no request starts after it is spent."""

    seconds: float
    """The whole budget."""
    started: float = field(default_factory=time.monotonic)
    spent: bool = False
    """Set once a probe was skipped for lack of time."""

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.started)


def judge(probe: Probe, response: Response, canary: str, text: str | None = None) -> tuple[str, str]:
    """(verdict, evidence) for one response; `text` is what to search (default: the body)."""
    if response.status is None or response.status in aset.BLOCK_STATUSES:
        return BLOCKED, ""
    if probe.family is Family.OVERSIZED:
        return (LET_THROUGH, f"status {response.status}") if response.status < 400 else (NO_EFFECT, "")
    payload, evidence = probe.expanded(canary)
    if evidence is None:
        return NO_EFFECT, ""
    searched = response.body if text is None else text
    if probe.family is not Family.XSS and payload:  # an echo of the payload is no evidence (its reflection is XSS's)
        searched = searched.replace(payload, "").replace(html.escape(payload), "")
    match = evidence.search(searched)
    return (LET_THROUGH, match.group(0)[:_EVIDENCE_SHOWN]) if match else (NO_EFFECT, "")


def _request_timeout(budget: Budget, per_request: float) -> float | None:
    left = budget.left()
    if left <= 0.05:
        budget.spent = True
        return None
    return min(per_request, left)


def web(targets: tuple[Target, ...], families: frozenset[Family], canary: str, budget: Budget,
        per_request: float, oversize_bytes: int) -> Iterator[Outcome]:
    """Each web probe into each query parameter of each target, then the oversized body to each target."""
    for target in targets:
        for index, (name, _) in enumerate(target.query):
            for probe in aset.WEB_PROBES:
                if probe.family not in families:
                    continue
                timeout = _request_timeout(budget, per_request)
                if timeout is None:
                    return
                payload, _ = probe.expanded(canary)
                query = [*target.query[:index], (name, payload), *target.query[index + 1:]]
                got = web_targets.send(target, "GET", target.with_query(query), timeout=timeout)
                verdict, evidence = judge(probe, got, canary)
                yield Outcome(probe, target, name, verdict, got.status, evidence)
        if Family.OVERSIZED in families:
            timeout = _request_timeout(budget, per_request)
            if timeout is None:
                return
            got = web_targets.send(target, "POST", target.with_query(target.query), body=b"A" * oversize_bytes,
                                   headers={"Content-Type": "application/octet-stream"}, timeout=timeout)
            verdict, evidence = judge(aset.OVERSIZED, got, canary)
            yield Outcome(aset.OVERSIZED, target, "", verdict, got.status, evidence)


def reply_text(response: Response) -> str | None:
    """The assistant's text of an OpenAI-style chat completion; None when the body is not one."""
    try:
        doc = json.loads(response.body)
        content = doc["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def llm(targets: tuple[Target, ...], families: frozenset[Family], canary: str, leak_canaries: tuple[str, ...],
        model: str, budget: Budget, per_request: float) -> Iterator[Outcome]:
    """Each prompt-injection and jailbreak probe (and, with planted canaries, each leak probe) to each target."""
    probes = [p for p in aset.LLM_PROBES if p.family in families]
    if leak_canaries and Family.PROMPT_LEAK in families:
        probes += aset.LEAK_PROBES
    for target in targets:
        for probe in probes:
            timeout = _request_timeout(budget, per_request)
            if timeout is None:
                return
            payload, _ = probe.expanded(canary)
            body = json.dumps({"model": model, "messages": [{"role": "user", "content": payload}],
                               "max_tokens": 256, "temperature": 0}).encode()
            got = web_targets.send(target, "POST", target.with_query(target.query), body=body,
                                   headers={"Content-Type": "application/json"}, timeout=timeout)
            text = reply_text(got)
            if text is None:  # not a chat completion: only a successful plain answer is searched
                text = got.body if got.status is not None and got.status < 300 else ""
            if probe.family is Family.PROMPT_LEAK:
                leaked = next((c for c in leak_canaries if c in text), None)
                blocked = got.status is None or got.status in aset.BLOCK_STATUSES
                verdict = BLOCKED if blocked else LET_THROUGH if leaked else NO_EFFECT
                yield Outcome(probe, target, "", verdict, got.status, "a planted canary" if leaked else "")
            else:
                verdict, evidence = judge(probe, got, canary, text)
                yield Outcome(probe, target, "", verdict, got.status, evidence)
