"""report.html: a run's results as one self-contained page (collect.py gathers, page.py renders).

Written by `mlsec run` into its output folder, and by `mlsec report` in CI from the SARIF artifacts and the
gate's verdict.
"""

from __future__ import annotations

from pathlib import Path

from mlsec_actions.report.collect import Sources, collect
from mlsec_actions.report.page import render


def write(sources: Sources, dest: Path) -> Path:
    """Render the report of `sources` into `dest` (atomically); returns `dest`."""
    from mlsec_actions import outputs

    outputs.write_text(dest, render(collect(sources)))
    return dest


def write_from_results(out: Path, dest: Path) -> Path:
    """The report of an `mlsec run` output folder (sarif/, verdict.json, run.json, sbom.cdx.json)."""
    def present(name: str) -> Path | None:
        return out / name if (out / name).exists() else None

    missing = tuple(f"{name}: not written by this run" for name in ("verdict.json",) if present(name) is None)
    return write(Sources(out / "sarif", present("verdict.json"), present("run.json"), present("sbom.cdx.json"),
                         missing), dest)
