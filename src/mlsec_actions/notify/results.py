"""A results folder (the gate's verdict JSON, every stage's SARIF, `mlsec run`'s run.json) -> a `Summary`.

All of it is hostile (SARIF text comes from the scanned tree): files are read through the project's bounded
readers (`inputs.load_json`, `sarif_read.read_sarif`: regular files only, size and depth bounded), at most
`MAX_SARIF_FILES` SARIF files, every string through `sanitize.log_line` with a short bound, stage names
reduced to `[a-z0-9._/-]`. A SARIF that cannot be read is a warning in the summary (the gate fails on it
anyway); a verdict that cannot be read is bad input (exit 2), a missing one is verdict `none`.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from mlsec_actions import inputs, sanitize
from mlsec_actions.errors import InputError, UsageError
from mlsec_actions.findings import Severity
from mlsec_actions.notify.model import SEVERITIES, StageSummary, Summary, Title

MAX_SARIF_FILES = 200
MAX_TITLES = 10
MAX_TEXT = 200
VERDICT_NAMES = ("verdict.json", "gate-verdict.json")
_UNSAFE_STAGE = re.compile(r"[^a-z0-9._/-]+")


def stage_name(raw: object) -> str:
    """A stage id safe as a metric label, a DefectDojo test title and a chat line."""
    return _UNSAFE_STAGE.sub("_", str(raw).lower())[:64] or "unknown"


def text(raw: object, limit: int = MAX_TEXT) -> str:
    return sanitize.log_line(raw, limit)


def _verdict(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    doc = inputs.load_json(path, "verdict")
    if not isinstance(doc, dict) or doc.get("verdict") not in ("pass", "fail"):
        raise InputError(path, "not a gate verdict (no 'verdict': pass or fail)")
    return doc


def _seconds(path: Path | None) -> tuple[dict[str, float], str]:
    if path is None or not path.is_file():
        return {}, ""
    doc = inputs.load_json(path, "run record", 1024 * 1024)
    rows = doc.get("stages") if isinstance(doc, dict) else None
    pipeline = str(doc.get("pipeline", "")) if isinstance(doc, dict) else ""
    out = {stage_name(r["stage"]): float(r["seconds"]) for r in (rows if isinstance(rows, list) else [])
           if isinstance(r, dict) and isinstance(r.get("stage"), str) and isinstance(r.get("seconds"), int | float)
           and not isinstance(r.get("seconds"), bool) and math.isfinite(r["seconds"]) and r["seconds"] >= 0}
    return out, stage_name(pipeline) if pipeline else ""


def _gaps(verdict: dict[str, Any]) -> tuple[int, dict[str, int]]:
    cov = verdict.get("coverage")
    if not isinstance(cov, dict):
        return 0, {}
    stages = cov.get("stages") if isinstance(cov.get("stages"), dict) else {}
    by_stage = {stage_name(s): int(v["total"]) for s, v in (stages or {}).items()
                if isinstance(v, dict) and isinstance(v.get("total"), int) and not isinstance(v.get("total"), bool)}
    total = cov.get("total")
    return (total if isinstance(total, int) and not isinstance(total, bool) else sum(by_stage.values())), by_stage


def sarif_files(sarif_dir: Path) -> list[Path]:
    """Every `*.sarif` under the folder (symlinks not followed), sorted, at most MAX_SARIF_FILES + 1."""
    found: list[Path] = []
    for top, dirs, files in os.walk(sarif_dir):
        dirs.sort()
        for name in sorted(files):
            path = Path(top) / name
            if name.endswith(".sarif") and not path.is_symlink():
                found.append(path)
                if len(found) > MAX_SARIF_FILES:
                    return found
    return found


def read(results: Path, *, verdict_file: Path | None = None, sarif_dir: Path | None = None,
         run_record: Path | None = None, details: bool = False) -> Summary:
    """The summary of one run's results folder."""
    if not results.is_dir():
        raise UsageError(f"{results}: results folder not found")
    if verdict_file is None:
        verdict_file = next((results / n for n in VERDICT_NAMES if (results / n).is_file()), None)
    elif not verdict_file.is_file():
        verdict_file = None  # the gate did not get to write one: verdict `none`, still worth telling
    verdict = _verdict(verdict_file)
    seconds, pipeline = _seconds(run_record if run_record is not None else results / "run.json")
    gap_total, gaps = _gaps(verdict)
    folder = sarif_dir if sarif_dir is not None else (results / "sarif" if (results / "sarif").is_dir() else results)
    files = sarif_files(folder) if folder.is_dir() else []
    warnings: list[str] = []
    if len(files) > MAX_SARIF_FILES:
        warnings.append(f"more than {MAX_SARIF_FILES} SARIF files: the rest not read")
        files = files[:MAX_SARIF_FILES]
    stages, titles = _stages(files, seconds, gaps, details, warnings)
    env = os.environ.get
    run_url = ""
    if env("GITHUB_REPOSITORY") and env("GITHUB_RUN_ID"):
        server = env("GITHUB_SERVER_URL", "https://github.com") or "https://github.com"
        run_url = f"{server.rstrip('/')}/{env('GITHUB_REPOSITORY')}/actions/runs/{env('GITHUB_RUN_ID')}"
    violations = verdict.get("violations")
    return Summary(verdict=str(verdict.get("verdict", "none")),
                   violations=len(violations) if isinstance(violations, list) else 0,
                   stages=stages, titles=titles, coverage_total=gap_total,
                   run_id=text(verdict.get("run_id") or "", 80), pipeline=pipeline,
                   repository=text(env("GITHUB_REPOSITORY", ""), 140), ref=text(env("GITHUB_REF_NAME", ""), 140),
                   sha=text(env("GITHUB_SHA", ""), 64), run_url=text(run_url, 300), warnings=tuple(warnings))


def _stages(files: list[Path], seconds: dict[str, float], gaps: dict[str, int], details: bool,
            warnings: list[str]) -> tuple[tuple[StageSummary, ...], tuple[Title, ...]]:
    from mlsec_actions.sarif_read import read_sarif

    rows: dict[str, StageSummary] = {}
    found: list[tuple[Severity, Title]] = []
    for path in files:
        try:
            runs = read_sarif(path)
        except (InputError, ValueError, TypeError, AttributeError) as e:  # hostile SARIF: shapes it should not have
            problem = e.problem if isinstance(e, InputError) else f"malformed SARIF ({type(e).__name__})"
            warnings.append(text(f"{path.name}: not read ({problem})"))
            stage = stage_name(path.name.removesuffix(".sarif"))
            rows.setdefault(stage, StageSummary(stage, dict.fromkeys(SEVERITIES, 0), seconds=seconds.get(stage),
                                                coverage_gaps=gaps.get(stage, 0), sarif=path, readable=False))
            continue
        for run in runs:
            stage = stage_name(run.result.stage)
            counts = dict.fromkeys(SEVERITIES, 0)
            for f in run.result.findings:
                counts[f.severity.name.lower()] += 1
                if len(found) < 10_000:  # the most severe are kept below; no need to hold a million
                    found.append((f.severity, _title(stage, f, details)))
            errors = sum(1 for t in run.result.tools if not t.status.succeeded)
            old = rows.get(stage)
            if old is not None:
                counts = {k: counts[k] + old.counts.get(k, 0) for k in SEVERITIES}
                errors += old.tool_errors
            rows[stage] = StageSummary(stage, counts, errors, seconds.get(stage), gaps.get(stage, 0), path)
    for stage, secs in seconds.items():  # stages that ran but wrote no SARIF (sbom, sign)
        rows.setdefault(stage, StageSummary(stage, dict.fromkeys(SEVERITIES, 0), seconds=secs,
                                            coverage_gaps=gaps.get(stage, 0)))
    found.sort(key=lambda pair: -pair[0])
    return tuple(rows[s] for s in sorted(rows)), tuple(t for _, t in found[:MAX_TITLES])


def _title(stage: str, f: Any, details: bool) -> Title:
    where = None
    if details and f.location.path:
        where = text(f"{f.location.path}:{f.location.start_line}" if f.location.start_line else f.location.path)
    return Title(stage=stage, rule=text(f.rule.id, 120), severity=f.severity.name.lower(),
                 title=text(f.rule.short_description), message=text(f.message, 500) if details else None,
                 location=where)
