"""The peers' own test suites (picklescan, fickling, modelscan, modelaudit): every malicious sample CPython would run
is a high finding, no benign sample is a finding at medium or above.

Samples and labels are in tests/corpus/peers/manifest.json, each with its upstream repository, commit
and path (see the tools next to it for how they were captured). Nothing is loaded: the dispatcher reads
the bytes. Samples that cannot execute are listed with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.dispatch import Dispatcher
from mlsec_actions.findings import Finding, Severity

PEERS = Path(__file__).resolve().parents[2] / "corpus" / "peers"
ROWS: list[dict[str, object]] = json.loads((PEERS / "manifest.json").read_text(encoding="utf-8"))


def _scan(row: dict[str, object]) -> tuple[list[Finding], dict[str, list[str]]]:
    path = PEERS / str(row["file"])
    dispatcher = Dispatcher()
    findings = dispatcher.scan_file(Blob(path.name, None, path.stat().st_size, lambda: path.open("rb")))
    return findings, dispatcher.errors


def _param(row: dict[str, object]) -> object:
    return pytest.param(row, id=str(row["file"]))


EXECUTABLE = [_param(r) for r in ROWS if r["label"] == "malicious" and r.get("executes", True)]
BENIGN = [_param(r) for r in ROWS if r["label"] == "benign"]


@pytest.mark.parametrize("row", EXECUTABLE)
def test_malicious_sample_is_a_high_finding(row: dict[str, object]) -> None:
    findings, errors = _scan(row)
    assert not errors
    top = max((f.severity for f in findings), default=None)
    assert top is not None and top >= Severity.HIGH, [f.message for f in findings]


@pytest.mark.parametrize("row", BENIGN)
def test_benign_sample_has_no_finding_at_medium_or_above(row: dict[str, object]) -> None:
    findings, errors = _scan(row)
    assert not errors
    assert [f.message for f in findings if f.severity >= Severity.MEDIUM] == []


def test_samples_that_cannot_execute_say_why() -> None:
    idle = [r for r in ROWS if r.get("executes") is False]
    assert idle and all(r["label"] == "malicious" and len(str(r.get("reason", ""))) > 20 for r in idle)


def test_manifest_names_every_file_and_its_upstream_source() -> None:
    listed = {str(r["file"]) for r in ROWS}
    stored = {p.relative_to(PEERS).as_posix() for p in PEERS.rglob("*") if p.is_file() and p.parent != PEERS}
    assert listed == stored
    assert len(listed) == len(ROWS)
    for row in ROWS:
        source = row["source"]
        assert isinstance(source, dict)
        assert source["repo"] in {"mmaitre314/picklescan", "trailofbits/fickling", "protectai/modelscan",
                                  "promptfoo/modelaudit"}
        assert len(str(source["commit"])) == 40 and source["path"]
        assert row["label"] in {"malicious", "benign"}
    peers = {r["peer"] for r in ROWS}
    assert peers == {"picklescan", "fickling", "modelscan", "modelaudit"}
