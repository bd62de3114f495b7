"""Org-wide audits (docs/audit.md): a list of repositories becomes a matrix (`plan`), and each repository's
`mlsec run` results become one verdict, one summary and one page with a row per repository (`merge`).

Everything here is hostile input: repository names come from a workflow input, results from artifacts that the
scanned repositories' runs produced. Names are checked against GitHub's own rules before they reach a matrix; a
repository with no result, or an unreadable one, fails the audit (fail closed), and no text from a verdict
reaches the summary or the page unescaped.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mlsec_actions import inputs, sanitize
from mlsec_actions.audit_models import ModelTarget
from mlsec_actions.errors import InputError, UsageError

MAX_JOBS = 256
"""GitHub's limit on the jobs one matrix may start."""
ARTIFACT_PREFIX = "mlsec-audit-"
"""A scan job's artifact is `mlsec-audit-<slot>`; download-artifact puts it in a folder of that name."""
SEVERITIES = ("critical", "high", "medium", "low", "info")
_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
_REF = re.compile(r"[A-Za-z0-9._/-]{1,200}")
_SPLIT = re.compile(r"[\s,]+")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Target:
    """One repository of the audit."""

    repository: str
    """`owner/name`."""
    ref: str = ""
    """Branch, tag or commit; empty: the default branch."""

    @property
    def slot(self) -> str:
        """The artifact-safe name of its results: lowercase owner and name, `--` between them."""
        owner, name = self.repository.lower().split("/")
        return f"{owner}--{name}" + (f"--{re.sub(r'[^a-z0-9._-]', '-', self.ref.lower())}" if self.ref else "")

    @property
    def artifact(self) -> str:
        return ARTIFACT_PREFIX + self.slot

    @property
    def label(self) -> str:
        return self.repository + (f"@{self.ref}" if self.ref else "")


def is_repository(text: str) -> bool:
    """`owner/name` by GitHub's rules: an owner of 1-39 letters, digits and single inner dashes, a name of 1-100
    of `[A-Za-z0-9._-]` other than `.` and `..`. Nothing else (no ref, space, `$(`, `::`) passes."""
    owner, slash, name = text.partition("/")
    return bool(slash and _OWNER.fullmatch(owner) and _NAME.fullmatch(name)) and name not in (".", "..")


def parse_targets(text: str, allow_empty: bool = False) -> list[Target]:
    """`owner/name` or `owner/name@ref`, separated by commas, spaces or lines; duplicates dropped in order.
    Anything else is a UsageError naming the entry (nothing is checked out for a list with one bad entry)."""
    out: dict[Target, None] = {}
    for entry in (e for e in _SPLIT.split(text) if e):
        repo, _, ref = entry.partition("@")
        if not is_repository(repo):
            raise UsageError(f"--repositories: {sanitize.log_line(entry, 120)!r} is not owner/name[@ref]")
        owner, _, name = repo.partition("/")
        if "@" in entry and not (_REF.fullmatch(ref) and ".." not in ref and not ref.startswith(("/", "-"))
                                 and not ref.endswith("/")):
            raise UsageError(f"--repositories: {sanitize.log_line(entry, 120)!r}: not a branch, tag or commit")
        out.setdefault(Target(f"{owner}/{name}", ref))
    if not out and not allow_empty:
        raise UsageError("--repositories: no repository given")
    slots = [t.slot for t in out]
    clash = next((s for s in slots if slots.count(s) > 1), None)
    if clash is not None:
        raise UsageError(f"--repositories: two entries share the results name {clash} (they differ only in case)")
    return list(out)


def chunk(targets: list[_T], index: int, count: int, max_jobs: int = MAX_JOBS, what: str = "repositories") -> list[_T]:
    """The `index`-th (1-based) of `count` even slices; one slice may hold at most `max_jobs` repositories."""
    if not 1 <= index <= count:
        raise UsageError(f"--chunk {index} of {count}: the chunk must be between 1 and {count}")
    size = -(-len(targets) // count)
    part = targets[(index - 1) * size:index * size]
    if len(part) > max_jobs:
        need = -(-len(targets) // max_jobs)
        raise UsageError(f"{len(part)} {what} in one matrix: GitHub starts at most {max_jobs} jobs per matrix; "
                         f"split the list over at least {need} runs (--chunks {need}, --chunk 1..{need})")
    return part


def matrix(targets: list[Target]) -> dict[str, Any]:
    return {"include": [{"repository": t.repository, "ref": t.ref, "slot": t.slot, "artifact": t.artifact}
                        for t in targets]}


@dataclass(frozen=True)
class Row:
    """One repository's (or model's) outcome."""

    target: Target | ModelTarget
    verdict: str
    """`pass`, `fail`, or `missing` (no readable result: counts as a failure)."""
    violations: int = 0
    counts: tuple[int, ...] = (0,) * len(SEVERITIES)
    gaps: int = 0
    problem: str = ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def read_row(target: Target | ModelTarget, folder: Path) -> Row:
    """The row of one repository from its results folder (`verdict.json` as `mlsec run` writes it)."""
    path = folder / "verdict.json"
    if not folder.is_dir() or not (path.exists() or path.is_symlink()):
        return Row(target, "missing", problem="no results (the scan job failed before writing a verdict?)")
    try:
        doc = inputs.load_json(path, "verdict", 32 * 1024 * 1024)
    except InputError as e:
        return Row(target, "missing", problem=sanitize.log_line(e.diagnostics(), 300))
    verdict = doc.get("verdict") if isinstance(doc, dict) else None
    if verdict not in ("pass", "fail"):
        return Row(target, "missing", problem=f"{path.name}: no verdict in it")
    counts = doc.get("counts")
    per = [0] * len(SEVERITIES)
    if isinstance(counts, dict):
        for stage in counts.values():
            if isinstance(stage, dict):
                for i, sev in enumerate(SEVERITIES):
                    per[i] += _count(stage.get(sev))
    coverage = doc.get("coverage")
    gaps = _count(coverage.get("total")) if isinstance(coverage, dict) else 0
    violations = doc.get("violations")
    return Row(target, str(verdict), len(violations) if isinstance(violations, list) else 0, tuple(per), gaps)


def merge(targets: list[Target] | list[ModelTarget], results: Path) -> list[Row]:
    """A row per planned repository (or model), in the plan's order; results of ones not planned are ignored."""
    return [read_row(t, results / t.artifact) for t in targets]


def passed(rows: list[Row]) -> bool:
    return bool(rows) and all(r.verdict == "pass" for r in rows)


def to_json(rows: list[Row]) -> dict[str, Any]:
    def outcome(r: Row) -> dict[str, Any]:
        return {"verdict": r.verdict, "violations": r.violations,
                "counts": dict(zip(SEVERITIES, r.counts, strict=True)), "coverage_gaps": r.gaps, "problem": r.problem}

    return {"verdict": "pass" if passed(rows) else "fail",
            "repositories": [{"repository": r.target.repository, "ref": r.target.ref, **outcome(r)}
                             for r in rows if isinstance(r.target, Target)],
            "models": [{"model": r.target.label, "sha256": r.target.sha256, "slot": r.target.slot, **outcome(r)}
                       for r in rows if isinstance(r.target, ModelTarget)]}


def markdown(rows: list[Row]) -> str:
    bad = sum(r.verdict != "pass" for r in rows)
    head = "✅ **PASS**" if passed(rows) else f"❌ **FAIL** ({bad} of {len(rows)} {_what(rows)})"
    out = [f"## mlsec audit: {head}", "", "| repository or model | verdict | violations | " + " | ".join(SEVERITIES)
           + " | coverage gaps | note |", "|---|---|---:|" + "---:|" * len(SEVERITIES) + "---:|---|"]
    for r in rows:
        # A repository name is [A-Za-z0-9._/@-] (parse_targets); a model's URL is escaped as any text.
        name = f"`{r.target.label}`" if isinstance(r.target, Target) else sanitize.md_text(r.target.label, 300)
        out.append(f"| {name} | {r.verdict} | {r.violations} | " + " | ".join(str(n) for n in r.counts)
                   + f" | {r.gaps} | {sanitize.md_text(r.problem, 300)} |")
    return "\n".join(out) + "\n"


def _what(rows: list[Row]) -> str:
    models = sum(isinstance(r.target, ModelTarget) for r in rows)
    return "models" if models == len(rows) else "repositories" if not models else "repositories and models"


_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'"


def page(rows: list[Row]) -> str:
    """One self-contained page, a row per repository; every value escaped, no script, nothing fetched."""
    e = html.escape
    verdict = "pass" if passed(rows) else "fail"
    body = "".join(
        f'<tr class="{e(r.verdict)}"><td>{e(r.target.label)}'
        f"</td><td>{e(r.verdict.upper())}</td><td>{r.violations}</td>"
        + "".join(f"<td>{n}</td>" for n in r.counts) + f"<td>{r.gaps}</td><td>{e(r.problem)}</td></tr>"
        for r in rows)
    heads = "".join(f"<th>{h}</th>" for h in ("repository or model", "verdict", "violations", *SEVERITIES,
                                                "coverage gaps", "note"))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}"><meta name="referrer" content="no-referrer">'
            f"<title>mlsec audit: {verdict.upper()}</title><style>body{{font-family:sans-serif;margin:2em}}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
            ".fail td:nth-child(2),.missing td:nth-child(2){color:#b00;font-weight:bold}"
            ".pass td:nth-child(2){color:#070}</style></head><body>"
            f'<h1 id="verdict">Audit: {verdict.upper()}</h1><p>{len(rows)} {_what(rows)}, '
            f'{sum(r.verdict != "pass" for r in rows)} not passing.</p>'
            f'<table id="repositories"><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table></body></html>\n')
