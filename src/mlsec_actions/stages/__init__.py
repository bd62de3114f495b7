"""The stage registry: an explicit tuple, so the set of stages is visible and nothing is imported by name.

Each stage module exposes `STAGE`, a `Stage`. To add one, follow docs/development.md.
"""

from __future__ import annotations

from mlsec_actions.stages import code_scan, gate, model_scan, policy_cmd, run_cmd, sbom, sign, verify
from mlsec_actions.stages.base import Stage

STAGES: tuple[Stage, ...] = (
    code_scan.STAGE,
    gate.STAGE,
    model_scan.STAGE,
    run_cmd.STAGE,
    sbom.STAGE,
    sign.STAGE,
    verify.STAGE,
    policy_cmd.STAGE,
)

# Stages from DESIGN.md's map that are not built yet; asking for one is a clear error, not a stub.
PLANNED: tuple[str, ...] = (
    "precommit", "fetch", "notebook-scan", "data-scan", "train", "evaluate",
    "publish", "build", "image-scan", "dast", "infra-scan", "runtime-probe", "notify",
)


def by_id(stage_id: str) -> Stage | None:
    return next((s for s in STAGES if s.id == stage_id), None)
