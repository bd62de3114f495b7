"""How runtime-probe judges one probe: blocked, let through or no effect (the verdict that becomes a finding)."""

from __future__ import annotations

import json

import pytest

from mlsec_actions.analyzers import attack_set as aset
from mlsec_actions.analyzers.attack_set import Family
from mlsec_actions.analyzers.prober import BLOCKED, LET_THROUGH, NO_EFFECT, judge, reply_text
from mlsec_actions.web_targets import Response

CANARY = "mlsec-0123456789abcdef"


def _probe(probe_id: str) -> aset.Probe:
    return next(p for p in (*aset.WEB_PROBES, *aset.LLM_PROBES, *aset.LEAK_PROBES, aset.OVERSIZED) if p.id == probe_id)


def _r(status: int | None, body: str = "") -> Response:
    return Response(status, (), body)


@pytest.mark.parametrize("status", sorted(aset.BLOCK_STATUSES))
def test_a_refusal_status_is_blocked_even_with_evidence(status: int) -> None:
    assert judge(_probe("sql-injection-1"), _r(status, "sqlite3.OperationalError: near"), CANARY) == (BLOCKED, "")


def test_a_dropped_connection_is_blocked() -> None:
    assert judge(_probe("path-traversal-1"), _r(None), CANARY)[0] == BLOCKED


@pytest.mark.parametrize(("probe_id", "body"), [
    ("sql-injection-1", "<p>sqlite3.OperationalError: unrecognized token</p>"),
    ("sql-injection-2", "You have an error in your SQL syntax; check the manual that corresponds to your MySQL"),
    ("path-traversal-2", "root:x:0:0:root:/root:/bin/bash"),
    ("command-injection-1", "PING\nuid=33(www-data) gid=33(www-data)"),
    ("ssrf-metadata-1", "ami-id\ninstance-id"),
])
def test_evidence_in_an_answer_that_was_not_refused_is_let_through(probe_id: str, body: str) -> None:
    for status in (200, 302, 500):
        verdict, evidence = judge(_probe(probe_id), _r(status, body), CANARY)
        assert verdict == LET_THROUGH and evidence and evidence in body


def test_no_evidence_is_no_effect() -> None:
    assert judge(_probe("sql-injection-1"), _r(200, "no such item"), CANARY) == (NO_EFFECT, "")
    assert judge(_probe("command-injection-1"), _r(500, "error"), CANARY) == (NO_EFFECT, "")


def test_an_echo_of_the_payload_is_no_evidence() -> None:
    ssrf = _probe("ssrf-metadata-2")  # its URL itself holds the metadata signature "computeMetadata"
    assert judge(ssrf, _r(200, f"You searched for {ssrf.payload}"), CANARY)[0] == NO_EFFECT
    obey = _probe("prompt-injection-1")
    prompt, _ = obey.expanded(CANARY)
    assert judge(obey, _r(200, ""), CANARY, f"I will not do this: {prompt}")[0] == NO_EFFECT
    assert judge(obey, _r(200, ""), CANARY, f"Sure: {CANARY}")[0] == LET_THROUGH


def test_xss_is_its_unescaped_reflection() -> None:
    xss = _probe("reflected-xss-1")
    payload, _ = xss.expanded(CANARY)
    assert judge(xss, _r(200, f"<h1>{payload}</h1>"), CANARY)[0] == LET_THROUGH
    escaped = payload.replace("<", "&lt;").replace(">", "&gt;")
    assert judge(xss, _r(200, f"<h1>{escaped}</h1>"), CANARY)[0] == NO_EFFECT
    other = payload.replace(CANARY, "mlsec-ffffffffffffffff")  # another run's token is no evidence of this one
    assert judge(xss, _r(200, other), CANARY)[0] == NO_EFFECT


def test_an_oversized_body_is_let_through_when_accepted() -> None:
    assert judge(aset.OVERSIZED, _r(200), CANARY)[0] == LET_THROUGH
    assert judge(aset.OVERSIZED, _r(301), CANARY)[0] == LET_THROUGH
    assert judge(aset.OVERSIZED, _r(413), CANARY)[0] == BLOCKED
    assert judge(aset.OVERSIZED, _r(404), CANARY)[0] == NO_EFFECT
    assert judge(aset.OVERSIZED, _r(500), CANARY)[0] == NO_EFFECT


def test_reply_text_reads_only_a_chat_completion() -> None:
    doc = {"choices": [{"message": {"role": "assistant", "content": "hi"}}]}
    assert reply_text(_r(200, json.dumps(doc))) == "hi"
    for body in ("", "not json", "[]", '{"choices": []}', '{"choices": [{"message": {"content": 3}}]}'):
        assert reply_text(_r(200, body)) is None


def test_every_family_has_a_documented_rule_and_probes() -> None:
    probes = (*aset.WEB_PROBES, *aset.LLM_PROBES, *aset.LEAK_PROBES, aset.OVERSIZED)
    assert {p.family for p in probes} == set(Family)
    assert len({p.id for p in probes}) == len(probes)
    for family in Family:
        rule = aset.rule(family)
        assert rule.id == f"runtime-probe/{family.value}"
        assert rule.help_uri is not None and rule.help_uri.endswith(f"runtime-probe.md#{family.value}")
    assert all(p.id.startswith(p.family.value + "-") for p in probes)
