"""Each builtin policy, at each gate of devsecops.yml, requires only stages whose SARIF that gate job collects.

A gate job reads only the artifacts `mlsec-sarif-<ns>-<stage>` it downloads; a policy requiring any other stage
there (code-scan at gate 7, say: gate-4 judged it) turns every devsecops call red with required-stage-missing,
whatever the scans found. The checkpoint a job passes (`checkpoint:` of its gate step) picks the policy section.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlsec_actions.gate import policy

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "devsecops.yml"
_COLLECTED = re.compile(r"^mlsec-sarif-\$\{\{ needs\.run-id\.outputs\.ns \}\}-([a-z0-9-]+)$")


def _jobs() -> dict[str, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    jobs: dict[str, Any] = doc["jobs"]
    return jobs


def gates() -> dict[str, tuple[int | None, frozenset[str]]]:
    """gate job id -> (the checkpoint its gate step passes, the stages whose SARIF it downloads)."""
    found = {}
    for job_id, job in _jobs().items():
        if not job_id.startswith("gate-"):
            continue
        collected, checkpoint = set(), None
        for step in job["steps"]:
            uses, args = str(step.get("uses", "")), step.get("with") or {}
            if uses.startswith("actions/download-artifact@"):
                match = _COLLECTED.match(str(args.get("name", "")))
                assert match, (job_id, args)
                collected.add(match.group(1))
            if uses == "$/actions/gate" and "checkpoint" in args:
                checkpoint = int(args["checkpoint"])
        found[job_id] = (checkpoint, frozenset(collected))
    return found


def unmet(source: str | Path, checkpoint: int | None, collected: frozenset[str]) -> set[str]:
    """Stages the policy requires at `checkpoint` that the gate never sees."""
    return set(policy.load(source, checkpoint=checkpoint).required_stages) - collected


def test_the_workflow_has_the_three_devsecops_gates() -> None:
    assert {job: checkpoint for job, (checkpoint, _) in gates().items()} == {"gate-4": None, "gate-7": 7,
                                                                             "gate-11": 11}
    assert gates()["gate-7"][1] == {"build", "image-scan", "dast"}
    assert gates()["gate-11"][1] == {"infra-scan", "runtime-probe"}


@pytest.mark.parametrize("job", ["gate-7", "gate-11"])
@pytest.mark.parametrize("builtin", policy.BUILTIN)
def test_builtin_checkpoints_require_only_stages_their_gate_collects(builtin: str, job: str) -> None:
    checkpoint, collected = gates()[job]
    assert unmet(builtin, checkpoint, collected) == set()


def test_default_policy_passes_the_pre_build_gate_on_code_scan_alone() -> None:
    checkpoint, collected = gates()["gate-4"]
    assert unmet("default", checkpoint, collected) == set()


def test_gate_7_requires_the_build_and_its_image_scan() -> None:
    # Gate 7 is the image's gate: with the builtins, a call with dast-targets but no build-context fails there
    # (required-stage-missing); a DAST-only pipeline sets its own checkpoints."7" in its policy.
    for builtin in policy.BUILTIN:
        assert policy.load(builtin, checkpoint=7).required_stages == ("build", "image-scan")


def test_a_checkpoint_requiring_an_earlier_gates_stage_is_caught(tmp_path: Path) -> None:
    # The check above can fail: the policies as they were (code-scan required at gate 7, nothing at 11).
    stale = tmp_path / "stale.yml"
    stale.write_text("version: 1\nrequired-stages: [code-scan]\nthresholds: []\n"
                     "checkpoints:\n  \"7\":\n    required-stages: [code-scan, build, image-scan]\n", encoding="utf-8")
    for job, want in (("gate-7", {"code-scan"}), ("gate-11", {"code-scan"})):
        checkpoint, collected = gates()[job]
        assert unmet(stale, checkpoint, collected) == want
