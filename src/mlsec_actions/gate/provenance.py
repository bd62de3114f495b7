"""Is each SARIF file this run's, untouched? The run id, the expected stages and the recorded digests.

A stage job stamps `mlsec-run-id` into its SARIF run properties and exports the file's SHA-256; the gate
refuses a file from another run (`sarif-stale`), an expected stage with no run of this run
(`stage-missing`) and a file whose bytes differ from what the stage recorded (`sarif-tampered`).
Reference: docs/gate.md (one section per violation kind).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from mlsec_actions.gate.input import InputFile, RunInput
from mlsec_actions.gate.rules import Violation

RUN_ID_PROPERTY = "mlsec-run-id"


@dataclass(frozen=True)
class Expectations:
    """What the caller (the runner or the workflow) knows about this run's SARIF."""

    run_id: str | None = None
    """This run's id: every SARIF run must carry it as `mlsec-run-id`; None: not checked."""
    stages: tuple[str, ...] = ()
    """Stages that must each have a SARIF run of this run."""
    digests: tuple[tuple[str, str], ...] = ()
    """(name relative to the SARIF folder, lower-case hex SHA-256) the stage jobs recorded."""


@dataclass(frozen=True)
class DigestCheck:
    """One recorded digest and what the gate found."""

    name: str
    """Path relative to the SARIF folder."""
    expected: str
    """The SHA-256 the stage recorded."""
    actual: str | None
    """The SHA-256 of the file read; None when there was no such file."""

    @property
    def status(self) -> str:
        """`ok`, `mismatch` or `missing`."""
        return "missing" if self.actual is None else "ok" if self.actual == self.expected else "mismatch"


NOTHING_EXPECTED = Expectations()


def is_fresh(properties: dict[str, Any], run_id: str | None) -> bool:
    """Whether a run belongs to this run: exactly this id (a string), or no id is checked."""
    if run_id is None:
        return True
    got = properties.get(RUN_ID_PROPERTY)
    return isinstance(got, str) and got == run_id


def stale(run: RunInput, run_id: str) -> Violation:
    got = run.properties.get(RUN_ID_PROPERTY)
    seen = "no run id" if got is None else f"run id {str(got)[:80]!r}"
    return Violation("sarif-stale", f"{run.source}: stage {run.stage}: SARIF carries {seen}, this run is "
                     f"{run_id!r}; a file from another run is not evidence of this one", "run-id", run.stage,
                     run.source)


def missing_stages(expected: Iterable[str], fresh: set[str], seen: dict[str, list[str]],
                   run_id: str | None) -> list[Violation]:
    """`stage-missing` for each expected stage without a run of this run. `seen`: stage -> files with a run
    of it (stale ones included), to say where the other run's file was."""
    out = []
    for stage in expected:
        if stage in fresh:
            continue
        if seen.get(stage):
            why = f"only SARIF from another run ({', '.join(seen[stage][:3])}; this run is {run_id!r})"
        else:
            why = "no SARIF run at all"
        out.append(Violation("stage-missing", f"expected stage {stage}: {why}", "expect-stage", stage))
    return out


def check_digests(digests: Iterable[tuple[str, str]], root: str, files: Iterable[InputFile],
                  stages_of: dict[str, list[str]]) -> tuple[list[DigestCheck], list[Violation]]:
    """Compare each recorded digest with the file read under `root`. `stages_of`: file path -> its stages."""
    by_name = {f.name: f for f in files}
    checks, violations = [], []
    for name, expected in digests:
        file = by_name.get(name)
        check = DigestCheck(name, expected, file.sha256 if file is not None else None)
        checks.append(check)
        if check.status == "ok":
            continue
        path = file.path if file is not None else str(PurePosixPath(root) / name)
        stages = stages_of.get(path, [])
        stage = stages[0] if len(stages) == 1 else None
        named = f" (stage {', '.join(stages)})" if stages else ""
        if file is None:
            what = f"{path}: no such SARIF file under {root}, but a stage recorded sha256 {expected}"
        else:
            what = (f"{path}{named}: sha256 {file.sha256 or '(unreadable)'} differs from the {expected} "
                    "its stage recorded")
        violations.append(Violation("sarif-tampered", what + "; it was changed or replaced after the stage ran",
                                    "sarif-digest", stage, path if file is not None else ""))
    return checks, violations
