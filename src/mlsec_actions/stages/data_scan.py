"""data-scan (ML stage 3): datasets checked by content, streaming: personal data per column, licence and
provenance from the dataset card, schema drift against a schema the user names, poisoning and quality
signals, and train/test leakage (`analyzers/dataset_*.py`).

CSV, TSV, JSON Lines and JSON arrays of records are read with the standard library (a `.json` file that
is not an array is no dataset and is passed over); Parquet and Arrow need pyarrow (without it such a file
is a finding and a coverage gap). At most `--max-rows` rows of a file are read: the rest is
a gap (sampled, not full). Past `--timeout` the scan stops and the run is a timeout (fail closed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mlsec_actions import outputs
from mlsec_actions.analyzers import (
    dataset_card,
    dataset_checks,
    dataset_profile,
    dataset_read,
    dataset_schema,
    dataset_splits,
    tree,
)
from mlsec_actions.analyzers import dataset_rules as R
from mlsec_actions.findings import (
    CoverageGap,
    Finding,
    GapKind,
    Location,
    StageResult,
    ToolRun,
    ToolStatus,
    sort_findings,
)
from mlsec_actions.stages.base import (
    ScanContext,
    Stage,
    add_scan_arguments,
    positive_float,
    positive_int,
    processing,
    run_scan,
)

STAGE_ID = "data-scan"
TOOL = "mlsec-data-scan"
VERSION = "1"
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "node_modules", "mlsec-results", "__pycache__",
                       ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tox", ".ipynb_checkpoints"})
_TYPED_ROWS = 10_000


def configure(parser: argparse.ArgumentParser) -> None:
    add_scan_arguments(parser, STAGE_ID)
    parser.add_argument("--label", default=None, metavar="COLUMN",
                        help="the label column (default: a column named label, target, class, y, ...)")
    parser.add_argument("--max-rows", type=positive_int, default=500_000,
                        help="rows read per file; the rest is a coverage gap (default: %(default)s)")
    parser.add_argument("--schema", type=Path, default=None, metavar="FILE",
                        help="compare each file's columns and types with this schema (JSON, see docs/data-scan.md)")
    parser.add_argument("--write-schema", type=outputs.output_file, default=None, metavar="FILE",
                        help="write the schema of the files read to FILE (to commit and pass to --schema)")
    parser.add_argument("--label-flip-share", type=positive_float, default=0.01,
                        help="share of rows in near-duplicate groups with two labels that is reported "
                             "(default: %(default)s)")


def _scan_file(root: Path, rel: str, kind: str, args: argparse.Namespace, deadline: float,
               gaps: list[CoverageGap]) -> tuple[list[Finding], dataset_profile.Profile | None, list[tuple[str, str]]]:
    try:
        header, rows = dataset_read.rows(root / rel, kind)
    except dataset_read.NotDataset:
        raise
    except (dataset_read.Unreadable, OSError) as e:
        why = str(e) if isinstance(e, dataset_read.Unreadable) else (e.strerror or str(e))
        gaps.append(CoverageGap(GapKind.FORMAT_UNKNOWN, f"dataset not read: {why}", path=rel))
        return [Finding(R.UNREADABLE.rule, f"{rel} was not read: {why}", R.UNREADABLE.severity, Location(rel))], \
            None, []
    profile = dataset_profile.new_profile(header, getattr(args, "label", None))
    types = ["empty"] * len(header)
    limit = int(getattr(args, "max_rows", 500_000))
    problem = None
    try:
        for lines, columns in dataset_read.blocks(header, rows, limit):
            if time.monotonic() > deadline:
                raise TimeoutError
            if profile.rows < _TYPED_ROWS:
                typed = _TYPED_ROWS - profile.rows
                types = [dataset_schema.type_of_all(c[:typed], t) for c, t in zip(columns, types, strict=True)]
            dataset_profile.add_columns(profile, lines, columns)
        profile.truncated = dataset_read.more_rows(rows)
    except dataset_read.Unreadable as e:
        problem = str(e)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    dataset_profile.finish(profile)
    found = dataset_checks.findings(rel, profile, dataset_checks.Thresholds(
        label_flip_share=float(getattr(args, "label_flip_share", 0.01))))
    if problem:
        gaps.append(CoverageGap(GapKind.FORMAT_UNKNOWN, f"read stopped after {profile.rows} rows: {problem}", path=rel))
        found.append(Finding(R.UNREADABLE.rule, f"{rel} was read only up to row {profile.rows}: {problem}",
                             R.UNREADABLE.severity, Location(rel)))
    if profile.rows > profile.hashed_rows:
        gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"sampled: the duplicate, label-flip and split-leakage "
                                f"checks covered the first {profile.hashed_rows} rows", path=rel))
    if profile.truncated:
        gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"sampled: the first {limit} rows were checked, not the rest",
                                path=rel))
    return found, profile, list(zip(header, types, strict=False))


def _licences(root: Path, folders: dict[str, str]) -> list[Finding]:
    """One finding per dataset folder without a licence, per card with an unknown licence or no source."""
    cache: dict[str, dataset_card.Card | None] = {}
    out: list[Finding] = []
    reported: set[str] = set()
    for folder, first in sorted(folders.items()):
        card = dataset_card.nearest(root, folder, cache)
        key = card.path if card else folder
        if key in reported:
            continue
        reported.add(key)
        if card is None or not card.licences:
            where = f"its card {card.path} names none" if card else "no dataset card names one"
            out.append(Finding(R.MISSING_LICENCE.rule, f"the data in {folder or '.'}/ (e.g. {first}) has no licence: "
                               f"{where}", R.MISSING_LICENCE.severity, Location(card.path if card else first)))
            continue
        unknown = [lic for lic in card.licences if not dataset_card.known(lic)]
        if unknown:
            out.append(Finding(R.UNKNOWN_LICENCE.rule, f"{card.path} names a licence that is not a known id "
                               f"({dataset_checks.column_name(unknown[0])})", R.UNKNOWN_LICENCE.severity,
                               Location(card.path)))
        if not card.has_source:
            out.append(Finding(R.MISSING_SOURCE.rule, f"{card.path} names no source for the data",
                               R.MISSING_SOURCE.severity, Location(card.path)))
    return out


def scan(ctx: ScanContext) -> StageResult:
    args = ctx.args
    deadline = time.monotonic() + float(args.timeout)
    expected = dataset_schema.load(Path(args.schema)) if getattr(args, "schema", None) else None
    findings: list[Finding] = []
    gaps: list[CoverageGap] = []
    folders: dict[str, str] = {}
    hashes: dict[str, set[int]] = {}
    parts: list[dataset_splits.Part] = []
    types: dict[str, list[tuple[str, str]]] = {}
    status, message = ToolStatus.OK, ""
    for entry in tree.walk(ctx.root, ctx.target, SKIP_DIRS):
        kind = dataset_read.format_of(entry.rel)
        if entry.path is None:
            if entry.skip is tree.Skip.TOO_DEEP:
                gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"not walked: {entry.problem}", path=entry.rel))
            elif kind:
                gaps.append(CoverageGap(GapKind.FILE_SKIPPED, f"not scanned: {entry.problem}", path=entry.rel))
            continue
        if kind is None:
            continue
        if time.monotonic() > deadline:
            status, message = ToolStatus.TIMEOUT, f"timed out after {args.timeout:g}s; the rest was not scanned"
            break
        processing(entry.rel)  # a crash below names this file
        try:
            found, profile, columns = _scan_file(ctx.root, entry.rel, kind, args, deadline, gaps)
        except dataset_read.NotDataset:
            continue  # a .json file that is no array of records: configuration, a card, not data
        except TimeoutError:
            status, message = ToolStatus.TIMEOUT, f"timed out after {args.timeout:g}s in {entry.rel}"
            break
        findings.extend(found)
        folders.setdefault(entry.rel.rsplit("/", 1)[0] if "/" in entry.rel else "", entry.rel)
        if profile is not None:
            types[entry.rel] = columns
            hashes[entry.rel] = profile.row_hashes
            part = dataset_splits.part_of(entry.rel)
            if part:
                parts.append(part)
    findings += dataset_splits.leakage(parts, hashes)
    findings += _licences(ctx.root, folders)
    if expected is not None:
        findings += dataset_schema.drift(expected, types)
    if getattr(args, "write_schema", None):
        outputs.write_text(Path(args.write_schema), json.dumps(dataset_schema.document(types), indent=2) + "\n")
    run = ToolRun(TOOL, status, version=VERSION, message=message, gaps=tuple(gaps))
    return StageResult(STAGE_ID, sort_findings(findings), (run,))


def execute(args: argparse.Namespace) -> int:
    return run_scan(args, STAGE_ID, scan)


STAGE = Stage(id=STAGE_ID, summary="datasets by content, streaming: personal data per column, licence, schema "
                                   "drift, poisoning and train/test leakage signals",
              configure=configure, execute=execute)
