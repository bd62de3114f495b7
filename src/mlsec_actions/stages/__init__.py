"""The CLI registry, derived from the stage catalog (`catalog.py`): which sub-commands exist is the catalog's
`implemented` column; this module only maps each implemented id to its module's `STAGE`.

The implementations are an explicit tuple, so nothing is imported by name, and a stage id lives in one place
(the catalog row). Helper commands that are not pipeline stages (`run`, `policy`) are listed apart.
To add a stage, follow docs/development.md.
"""

from __future__ import annotations

from mlsec_actions import catalog
from mlsec_actions.stages import (
    code_scan,
    evaluate,
    gate,
    model_scan,
    policy_cmd,
    run_cmd,
    sbom,
    sign,
    train,
    verify,
)
from mlsec_actions.stages.base import Stage

# One entry per implemented catalog row; a test fails when this and the catalog disagree.
_IMPLEMENTATIONS: tuple[Stage, ...] = (
    code_scan.STAGE,
    gate.STAGE,
    train.STAGE,
    evaluate.STAGE,
    model_scan.STAGE,
    sbom.STAGE,
    sign.STAGE,
    verify.STAGE,
)

# Sub-commands that are not stages of the map: hidden from `mlsec stages`, never in a pipeline.
COMMANDS: tuple[Stage, ...] = (run_cmd.STAGE, policy_cmd.STAGE)


def _registry() -> tuple[Stage, ...]:
    by_stage = {s.id: s for s in _IMPLEMENTATIONS}
    missing = [s.id for s in catalog.implemented() if s.id not in by_stage]
    extra = sorted(set(by_stage) - {s.id for s in catalog.implemented()})
    if missing or extra:  # a programming error in this package, caught by every test run
        raise RuntimeError(f"stage registry disagrees with catalog.py: without a module {missing}, "
                           f"not implemented in the catalog {extra}")
    return tuple(by_stage[s.id] for s in catalog.implemented())


STAGES: tuple[Stage, ...] = (*_registry(), *COMMANDS)
"""Every `mlsec` sub-command: the catalog's implemented stages in catalog order, then the helper commands."""

PLANNED: tuple[str, ...] = tuple(s.id for s in catalog.planned())
"""Stage ids of the map not built yet (from the catalog); asking for one is a clear error, not a stub."""


def by_id(stage_id: str) -> Stage | None:
    return next((s for s in STAGES if s.id == stage_id), None)
