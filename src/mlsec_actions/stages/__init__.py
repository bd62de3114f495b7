"""The CLI registry, derived from the stage catalog (`catalog.py`): which sub-commands exist is the catalog's
`implemented` column; this module only names the module (under `mlsec_actions.stages`) whose `STAGE`
implements each one, and imports it when that command runs, so `mlsec --help` or `mlsec gate` never pays
for loading every scanner.

The implementations are an explicit tuple of module names, one line per stage, so nothing is found by
scanning and a stage id lives in one place (the catalog row; the module is its id with `_` for `-`).
Helper commands that are not pipeline stages (`run`, `policy`) are listed apart, with their summaries here
so `--help` needs no import. To add a stage, follow docs/development.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mlsec_actions import catalog

if TYPE_CHECKING:
    from mlsec_actions.stages.base import Stage

# One line per implemented catalog row: the module whose STAGE implements it. A check below (run on every
# import) and a test fail when this and the catalog disagree.
_IMPLEMENTATIONS: tuple[str, ...] = (
    "precommit",
    "fetch",
    "code_scan",
    "notebook_scan",
    "data_scan",
    "gate",
    "train",
    "evaluate",
    "model_scan",
    "sbom",
    "sign",
    "verify",
    "publish",
    "sign_image",
    "build",
    "image_scan",
    "infra_scan",
    "dast",
    "runtime_probe",
    "notify",
)

# Sub-commands that are not stages of the map: (id, module, summary). Hidden from `mlsec stages`, never in a
# pipeline.
_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("run", "run_cmd", "run a whole pipeline locally: the catalog's stage graph, independent stages in parallel"),
    ("policy", "policy_cmd", "validate gate policy files: mlsec policy validate FILE..."),
    ("verify-image", "verify_image", "verify image signatures and attestations in the registry before deploy"),
    ("report", "report_cmd", "report.html from a SARIF folder and a verdict (what mlsec run writes at its end)"),
    ("audit-plan", "audit_plan", "an org-wide audit's repository list as a matrix (docs/audit.md)"),
    ("audit-merge", "audit_merge", "one verdict, summary and report over an audit's repositories"),
)


def _stage_modules() -> dict[str, str]:
    by_stage = {m.replace("_", "-"): m for m in _IMPLEMENTATIONS}
    implemented = [s.id for s in catalog.implemented()]
    missing = [s for s in implemented if s not in by_stage]
    extra = sorted(set(by_stage) - set(implemented))
    if missing or extra:  # a programming error in this package, caught by every test run
        raise RuntimeError(f"stage registry disagrees with catalog.py: without a module {missing}, "
                           f"not implemented in the catalog {extra}")
    return {s: by_stage[s] for s in implemented}


_MODULES: dict[str, str] = {**_stage_modules(), **{c: m for c, m, _ in _COMMANDS}}

STAGE_IDS: tuple[str, ...] = tuple(_MODULES)
"""Every `mlsec` sub-command: the catalog's implemented stages in catalog order, then the helper commands."""

COMMAND_IDS: tuple[str, ...] = tuple(c for c, _, _ in _COMMANDS)
"""The helper commands (not stages of the map)."""

PLANNED: tuple[str, ...] = tuple(s.id for s in catalog.planned())
"""Stage ids of the map not built yet (from the catalog); asking for one is a clear error, not a stub."""


def summary(stage_id: str) -> str:
    """The one-line help of a sub-command, without importing it (the catalog row or the command's entry)."""
    row = catalog.by_id(stage_id)
    if row is not None:
        return row.summary
    return next(s for c, _, s in _COMMANDS if c == stage_id)


def load(stage_id: str) -> Stage:
    """The `STAGE` of one sub-command, imported now (KeyError for an id that is not one)."""
    stage: Stage = importlib.import_module(f"mlsec_actions.stages.{_MODULES[stage_id]}").STAGE
    if stage.id != stage_id:
        raise RuntimeError(f"stage module {_MODULES[stage_id]} defines {stage.id!r}, registered as {stage_id!r}")
    return stage


def by_id(stage_id: str) -> Stage | None:
    """The sub-command `stage_id`, or None when there is none."""
    return load(stage_id) if stage_id in _MODULES else None


def __getattr__(name: str) -> tuple[Stage, ...]:
    # STAGES and COMMANDS import every module: for tests and tools that want all of them, never the CLI.
    if name == "STAGES":
        return tuple(load(s) for s in STAGE_IDS)
    if name == "COMMANDS":
        return tuple(load(s) for s in COMMAND_IDS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
