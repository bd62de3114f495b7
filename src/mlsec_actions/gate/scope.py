"""The policy as one pipeline's gate applies it: `required-stages` narrowed to the stages that pipeline has.

A builtin policy serves both pipelines: `strict` requires notebook-scan, data-scan and model-scan, which the
DevSecOps pipeline never runs, so its gate would always fail with required-stage-missing. `mlsec gate --pipeline
devsecops` drops, from the policy's required stages, only those the catalog places in no stage of that pipeline
(`catalog.StageInfo.numbers`), each named in a warning of the verdict. Every stage of the pipeline stays
required, even one that runs after this gate or that the caller turned off: a missing stage of this pipeline is
still red. A name that is not exactly a catalog stage id (a glob) is kept, so it still fails closed.
"""

from __future__ import annotations

from dataclasses import replace

from mlsec_actions import catalog
from mlsec_actions.gate.model import Policy


def not_in_pipeline(stages: tuple[str, ...], pipeline: str) -> tuple[str, ...]:
    """The stage ids among `stages` that are catalog stages with no number in `pipeline`."""
    if pipeline not in catalog.PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}")
    return tuple(s for s in stages if (info := catalog.by_id(s)) is not None and not info.numbers(pipeline))


def for_pipeline(pol: Policy, pipeline: str | None) -> Policy:
    """`pol` with the required stages `pipeline` does not have left out (and a warning naming them); the same
    policy for `pipeline=None` (every required stage counts, as before pipelines were named)."""
    if pipeline is None:
        return pol
    dropped = not_in_pipeline(pol.required_stages, pipeline)
    kept = tuple(s for s in pol.required_stages if s not in dropped)
    warnings = pol.warnings
    if dropped:
        where = f"{pol.path}:{pol.required_line or 1}"
        warnings += (f"{where}: required-stages: {', '.join(dropped)} not in the {pipeline} pipeline; "
                     f"not required at its gate",)
    return replace(pol, required_stages=kept, warnings=warnings, pipeline=pipeline)
