"""modelscan (Protect AI) as a second opinion: its findings are merged, deduplicated against ours.

What it is given: never the scanned tree itself (it follows symlinks, so `ln -s /etc/shadow model.pkl`
would be read), but a private folder of links named `000001.pkl`, one per regular file inside the root
that the stage's own walk found (symlinks and special files are never in it) and whose extension
modelscan scans. The neutral names also keep hostile file names (newlines, `::error`, non-UTF-8) out of
modelscan's output; we map its paths back. A zip with more entries than the stage's `--max-entries` is
not handed over (a coverage gap; our archive analyzer reports it), so modelscan cannot hang the stage.

How it runs: `python -I -m modelscan.cli` from an empty temporary folder (a `modelscan-settings.toml`
in the repository cannot switch its scanners off), with a timeout that grows with the bytes given.
Exit codes: 0 clean, 1 issues, 2 per-file errors, 3 nothing supported; anything else is a failure.

Per-file errors (modelscan 0.8.8 cannot read a file) are `tool-error` coverage gaps on an OK run: our
own analyzers read every file too, and the default policy warns on gaps while `strict` fails. When
modelscan fails on every one of two or more files it was given, it is broken (as 0.8.8 is with numpy 2
on `.npy`), and the run is FAILED. Error texts are redacted, stripped of quoted file content and
sanitised before they reach a note or a gap.
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Rule, Severity, ToolRun, ToolStatus
from mlsec_actions.tools.base import Isolation, ToolSpec, execute, safe, version

SPEC = ToolSpec(
    name="modelscan",
    executable="modelscan",
    version_args=("--version",),
    version_pattern=r"version\s+(\S+)",
    ok_exit_codes=frozenset({0, 1, 2, 3}),
    version_in_output=True,  # the report's summary has it; `modelscan --version` costs 0.7 s of imports
    install_hint="install mlsec-actions[models] (the pinned modelscan)",
    isolation=Isolation(discovers=("modelscan-settings.toml",), python_module="modelscan.cli"),
)
DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/model-scan.md"
SUPPORTED = frozenset({".pkl", ".pickle", ".joblib", ".dill", ".dat", ".data", ".bin", ".pt", ".pth", ".ckpt",
                       ".npy", ".h5", ".keras", ".pb", ".zip", ".npz"})
"""The extensions modelscan 0.8.8's default settings scan (a test compares them with modelscan's own)."""
BASE_SECONDS, BYTES_PER_SECOND = 30.0, 20 * 1024 * 1024
"""modelscan's time budget: 30 s plus one second per 20 MiB given, capped by the stage's --timeout."""
_MAX_NOTE = 200
MAX_REPORT_BYTES = 64 * 1024 * 1024

UNSAFE_OPERATOR = Rule(
    id="modelscan/unsafe-operator", name="ModelscanUnsafeOperator",
    short_description="modelscan: model imports an unsafe operator",
    full_description="modelscan found an operator in a serialized model that can run code when the model is "
                     "loaded, and the in-house analyzers did not report the same import.",
    help_text="Do not load the model; get it from a trusted source or convert it to safetensors.",
    help_uri=f"{DOCS}#modelscanunsafe-operator", tags=("model", "supply-chain"), precision="high")


def zip_entries(path: Path) -> int | None:
    """Entries a zip's end record declares (zip64: treated as huge); None when `path` is not a zip."""
    with path.open("rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            return None
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - 65557))
        tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    entries = struct.unpack_from("<H", tail, at + 10)[0]
    return 2**31 if entries == 0xFFFF else int(entries)


def _farm(files: Sequence[tuple[str, Path]], farm: Path, max_entries: int
          ) -> tuple[dict[str, str], int, list[CoverageGap]]:
    """Link the supported files into `farm` under neutral names; returns (name -> rel path, bytes, gaps)."""
    names: dict[str, str] = {}
    total = 0
    gaps: list[CoverageGap] = []
    for rel, path in files:
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED:
            continue
        try:
            entries = zip_entries(path)
            size = path.stat().st_size
        except OSError:
            continue  # the stage's own analyzers report unreadable files
        if entries is not None and entries > max_entries:
            gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"not given to modelscan: a zip with {entries} entries "
                                    f"(limit {max_entries})", path=rel))
            continue
        name = f"{len(names):06d}{suffix}"
        (farm / name).symlink_to(path)
        names[name] = rel
        total += size
    return names, total, gaps


def budget(total_bytes: int, cap: float) -> float:
    """Seconds modelscan may take for `total_bytes` of input, never more than `cap`."""
    return min(cap, BASE_SECONDS + total_bytes / BYTES_PER_SECOND)


def scan(files: Sequence[tuple[str, Path]], timeout: float, max_entries: int = 10_000
         ) -> tuple[list[Finding], ToolRun]:
    """Run modelscan on `files` ((path relative to the root, regular file inside it)); paths come back as given."""
    with tempfile.TemporaryDirectory(prefix="mlsec-modelscan-") as tmp:
        work, farm = Path(tmp) / "cwd", Path(tmp) / "farm"
        work.mkdir()
        farm.mkdir()
        names, total, gaps = _farm(files, farm, max_entries)
        if not names:
            return [], ToolRun(SPEC.name, ToolStatus.SKIPPED, message="no file of a format modelscan reads",
                               gaps=tuple(gaps))
        out = Path(tmp) / "report.json"
        got = execute(SPEC, ["scan", "-p", str(farm), "-r", "json", "-o", str(out), "-l", "ERROR"],
                      timeout=budget(total, timeout), workdir=work, max_stdout=16 * 1024 * 1024)
        run = replace(got.run, gaps=(*got.run.gaps, *gaps))
        if run.status is not ToolStatus.OK:
            return [], run
        try:
            if out.stat().st_size > MAX_REPORT_BYTES:
                return [], replace(run, status=ToolStatus.FAILED,
                                   message=f"report is over {MAX_REPORT_BYTES} bytes; not read")
            report = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as e:
            return [], replace(run, status=ToolStatus.FAILED, message=safe(f"no JSON report: {e}"))
    if not isinstance(report, dict):
        return [], replace(run, status=ToolStatus.FAILED, message="report is not a JSON object")
    return _read(report, names, str(farm), run)


def _read(report: dict[str, Any], names: dict[str, str], farm: str, run: ToolRun) -> tuple[list[Finding], ToolRun]:
    findings = [_issue(i, names, farm) for i in report.get("issues") or [] if isinstance(i, dict)]
    errors = [e for e in report.get("errors") or [] if isinstance(e, dict)]
    gaps = [CoverageGap(GapKind.TOOL_ERROR, f"modelscan could not scan it: {_clean(e)}",
                        path=_real(str(e.get("source", "")), names, farm)[0]) for e in errors]
    summary = report.get("summary")
    found = summary.get("modelscan_version") if isinstance(summary, dict) else None
    run = replace(run, version=str(found) if found else version(SPEC), gaps=(*run.gaps, *gaps))
    failed_files = {g.path for g in gaps}
    if len(names) >= 2 and failed_files >= set(names.values()):
        return findings, replace(run, status=ToolStatus.FAILED,
                                 message=safe(f"modelscan failed on all {len(names)} files it was given "
                                              f"(first: {_clean(errors[0])})"))
    if gaps:
        run = replace(run, notes=(*run.notes, f"modelscan could not scan {len(failed_files)} file(s); "
                                              "listed as tool-error coverage gaps"))
    return findings, run


def _clean(error: dict[str, Any]) -> str:
    """An error's text without quoted content (a byte of the file), redacted, on one bounded line."""
    text = str(error.get("description") or error.get("category") or "error")
    text = re.sub(r"b?'[^']*'|b?\"[^\"]*\"", "'…'", text)
    return safe(text)[:_MAX_NOTE]


def _real(source: str, names: dict[str, str], farm: str) -> tuple[str, str]:
    """modelscan's `source` (a farm name, maybe `name:member`) -> (relative path, archive member)."""
    source = source.removeprefix(farm).lstrip("/")
    name, _, member = source.partition(":")
    return names.get(name, name), member


def _issue(issue: dict[str, Any], names: dict[str, str], farm: str) -> Finding:
    path, member = _real(str(issue.get("source", "")), names, farm)
    module, operator = str(issue.get("module", "")), str(issue.get("operator", ""))
    qualname = f"{module}.{operator}" if module else operator
    try:
        severity = Severity.parse(str(issue.get("severity", "HIGH")))
    except ValueError:
        severity = Severity.HIGH
    return Finding(rule=UNSAFE_OPERATOR, severity=severity,
                   message=safe(str(issue.get("description") or f"Unsafe operator {qualname}")),
                   location=Location(path, logical="::".join(p for p in (member, qualname) if p) or None,
                                     logical_kind="function"),
                   properties=(("global", qualname), ("scanner", str(issue.get("scanner", "")))))


def merge(ours: Iterable[Finding], theirs: Iterable[Finding]) -> list[Finding]:
    """Ours, plus modelscan's findings for a (file, global) we did not already report."""
    mine = list(ours)
    known = {(f.location.path, props.get("global", "")) for f in mine for props in [dict(f.properties)]}
    return mine + [f for f in theirs if (f.location.path, dict(f.properties).get("global", "")) not in known]
