"""Gate evaluation: a policy over every stage's SARIF -> a verdict with every violation.

Fails closed: a malformed or truncated SARIF file, a required stage that is absent, a tool that did
not run, no input at all, are violations. Everything found is counted and reported; thresholds
only count findings that are neither waived nor (with a baseline) already known.
Rendering the verdict (JSON, markdown, SARIF) is `gate/report.py`; the CLI is `stages/gate.py`.
"""

from __future__ import annotations

import datetime as dt
import gc
import heapq
import operator
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsec_actions import compliance
from mlsec_actions.errors import InputError
from mlsec_actions.findings import Severity, ToolRun
from mlsec_actions.gate import provenance as prov
from mlsec_actions.gate.coverage import CoverageTally, StageCoverage
from mlsec_actions.gate.input import Hit, InputFile, RunInput, iter_dir
from mlsec_actions.gate.model import Policy, Waiver
from mlsec_actions.gate.provenance import NOTHING_EXPECTED, DigestCheck, Expectations
from mlsec_actions.gate.rules import (
    KINDS,
    UNKNOWN_RULE,
    Tally,
    Violation,
    Waivers,
    coverage_violations,
    metric,
    threshold,
    waiver_violations,
)

__all__ = ["KINDS", "Expectations", "Verdict", "Violation", "WaiverUse", "run_gate"]

GATE_STAGE = "gate"
GATE_UNKNOWN_TOOL = "unknown"  # the tool of a truncated run's dropped findings, when the run had several
TOP_FINDINGS = 10
Baseline = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class WaiverUse:
    """What a waiver did in this evaluation."""

    waiver: Waiver
    """The waiver."""
    status: str
    """`used` (matched findings), `unused` (matched nothing: reported, not a failure) or `expired`."""
    matched: int
    """Findings it matched (for an expired waiver: findings it would have matched; they count)."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one evaluation."""

    passed: bool
    """No violations."""
    violations: tuple[Violation, ...]
    """Every reason to fail."""
    policy: Policy
    """The policy applied."""
    inputs: tuple[InputFile, ...]
    """SARIF files read, with digests (baseline files follow, see `baseline_inputs`)."""
    baseline_inputs: tuple[InputFile, ...]
    """Baseline SARIF files read."""
    counts: dict[str, dict[Severity, int]] = field(hash=False)
    """All findings by stage and severity (waived and baseline ones included)."""
    counted: dict[str, dict[Severity, int]] = field(hash=False)
    """Findings that count toward thresholds: not waived, not in the baseline."""
    waived: int
    """Findings hidden by an active waiver."""
    in_baseline: int
    """Findings hidden because the baseline had them."""
    waivers: tuple[WaiverUse, ...]
    """Every waiver of the policy and what it did."""
    tools: tuple[tuple[str, ToolRun], ...]
    """(stage, tool record) for every tool of every stage present."""
    top: tuple[tuple[str, Hit], ...]
    """The most severe counted findings, (stage, finding)."""
    warnings: tuple[str, ...]
    """Notes that do not fail the gate (policy warnings, tool errors under `tool-errors: warn`...)."""
    expectations: Expectations = NOTHING_EXPECTED
    """The run id, expected stages and recorded digests the inputs were checked against."""
    digests: tuple[DigestCheck, ...] = ()
    """Each recorded digest and what was found."""
    coverage: tuple[StageCoverage, ...] = ()
    """Per stage with gaps: what its tools could not check."""
    controls: dict[str, int] = field(default_factory=dict, hash=False)
    """Counted findings by framework control (`owasp-llm:LLM01`), in the catalogue's order; docs/compliance.md."""


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Reading builds ~10 objects per finding, none in a cycle; collection passes over them only cost time."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Evaluation:
    """Takes runs one at a time, keeping only counts, the top findings and small per-run facts, so memory
    does not grow with the number of findings (a million findings need no more than the largest file)."""

    def __init__(self, policy: Policy, baseline: Baseline | None, today: dt.date,
                 expect: Expectations = NOTHING_EXPECTED) -> None:
        self.policy, self.baseline, self.today, self.expect = policy, baseline, today, expect
        self.fresh: set[str] = set()  # stages with a run of this run
        self.seen: dict[str, list[str]] = {}  # stage -> files with a run of it
        self.stages_of: dict[str, list[str]] = {}  # file -> its runs' stages
        self.stale: list[Violation] = []
        self.waivers = Waivers(policy.waivers, today)
        self.hidden: Counter[tuple[str, Severity]] = Counter()  # waived or in the baseline
        self.stages: dict[str, None] = {}
        self.agg: Tally = Counter()
        self.waived = self.in_baseline = 0
        self.top: list[tuple[Severity, float, int, str, Hit]] = []
        self.tools: list[tuple[str, ToolRun, str]] = []
        self.properties: list[tuple[str, str, dict[str, Any]]] = []
        self.warnings = list(policy.warnings)
        self.coverage = CoverageTally()

    def add(self, run: RunInput) -> None:
        if run.stage == GATE_STAGE:
            self.warnings.append(f"{run.source}: a gate's own SARIF; not counted")
            return
        self.stages.setdefault(run.stage)
        self.seen.setdefault(run.stage, []).append(run.source)
        self.stages_of.setdefault(run.source, []).append(run.stage)
        if prov.is_fresh(run.properties, self.expect.run_id):
            self.fresh.add(run.stage)
        else:
            assert self.expect.run_id is not None  # is_fresh holds whenever no id is checked
            self.stale.append(prov.stale(run, self.expect.run_id))
        keep, waived = self._counted(run) if (self.policy.waivers or self.baseline) else (run.hits, 0)
        self.waived += waived
        self.in_baseline += len(run.hits) - len(keep) - waived
        # One pass over the findings: per-stage counts are derived from this tally at the end.
        self.agg.update((run.stage, h.tool, h.rule, h.severity, h.score) for h in keep)
        if run.dropped:
            # Counted by the stage, not in the file (truncated): they count with their severity, the run's
            # tool when it has one and that severity's default score; no waiver or baseline can match them.
            tool = run.tools[0].name if len(run.tools) == 1 else GATE_UNKNOWN_TOOL
            for sev, n in run.dropped.items():
                self.agg[(run.stage, tool, UNKNOWN_RULE, sev, sev.default_score)] += n
            self.warnings.append(f"{run.source}: stage {run.stage}: {sum(run.dropped.values())} finding(s) the "
                                 "stage counted are not in the file (truncated); they count by severity")
        self.coverage.add(run.stage, run.gaps, run.gap_total)
        order = -len(self.properties)  # earlier runs first among equals
        self.top.extend((h.severity, h.score, order, run.stage, h)
                        for h in heapq.nlargest(TOP_FINDINGS, keep, key=operator.itemgetter(2, 3)))
        self.top = heapq.nlargest(TOP_FINDINGS, self.top, key=operator.itemgetter(0, 1, 2))
        self.tools.extend((run.stage, t, run.source) for t in run.tools)
        self.properties.append((run.stage, run.source, run.properties))

    def _counted(self, run: RunInput) -> tuple[list[Hit], int]:
        """The run's findings that count, and how many an active waiver hid."""
        keep = []
        waived = 0
        stage, baseline = run.stage, self.baseline
        match = self.waivers.waived if self.policy.waivers else None
        hidden = self.hidden
        for h in run.hits:
            if match is not None and match(stage, h):
                waived += 1
            elif baseline is None or h.fingerprint is None or (h.rule, h.fingerprint) not in baseline:
                keep.append(h)
                continue
            hidden[(stage, h.severity)] += 1
        return keep, waived

    def verdict(self, files: tuple[InputFile, ...], errors: Iterable[InputError],
                baseline_files: tuple[InputFile, ...], label: str) -> Verdict:
        pol, violations = self.policy, []
        for err in errors:
            violations.append(Violation("sarif-malformed", f"{err.diagnostics()}; the gate fails closed",
                                        path=str(err.path)))
        if not files:
            violations.append(Violation("no-inputs", f"no *.sarif files under {label}: nothing was checked",
                                        path=pol.path, line=1))
        violations += self.stale
        violations += prov.missing_stages(self.expect.stages, self.fresh, self.seen, self.expect.run_id)
        digests, tampered = prov.check_digests(self.expect.digests, label, files, self.stages_of)
        violations += tampered
        violations += [v for t in pol.thresholds if (v := threshold(t, self.agg, pol.path)) is not None]
        # With a run id, only a run of this run makes a required stage present.
        violations += [Violation("required-stage-missing", f"required stage {stage} produced no SARIF"
                                 + (" in this run" if stage in self.stages else ""),
                                 "required-stages", stage, pol.path, pol.required_line or 1)
                       for stage in pol.required_stages if stage not in self.fresh]
        for stage, tool, source in self.tools:
            if not tool.status.succeeded:
                text = f"{stage}: {tool.name} {tool.status.value}" + (f": {tool.message}" if tool.message else "")
                if pol.tool_errors_fail:
                    violations.append(Violation("tool-failed", text + "; its findings are incomplete",
                                                "tool-errors", stage, source))
                else:
                    self.warnings.append(text)
        coverage = self.coverage.result()
        cov_violations, cov_warnings = coverage_violations(coverage, pol.coverage_gaps_fail, pol.coverage_required,
                                                           pol.path, pol.coverage_line or 1)
        violations += cov_violations
        self.warnings += cov_warnings
        for m in pol.metrics:
            runs = [(source, props) for stage, source, props in self.properties if stage == m.stage]
            violations.extend(metric(m, runs, pol.path))
        if pol.licenses is not None:
            from mlsec_actions.gate import licenses  # only policies that judge licences

            lic_violations, lic_warnings = licenses.evaluate(pol.licenses, self.properties, pol.path)
            violations += lic_violations
            self.warnings += lic_warnings
        uses = []
        for w, active, matched in zip(pol.waivers, self.waivers.active, self.waivers.matched, strict=True):
            uses.append(WaiverUse(w, "expired" if not active else "used" if matched else "unused", matched))
            violations.extend(waiver_violations(w, active, self.today, pol.waiver_max_days, pol.path))
        counted = {s: dict.fromkeys(Severity, 0) for s in sorted(self.stages)}
        for (stage, _, _, sev, _), n in self.agg.items():
            counted[stage][sev] += n
        counts = {s: {sev: n + self.hidden[(s, sev)] for sev, n in c.items()} for s, c in counted.items()}
        by_control: Counter[str] = Counter()
        for (_, _, rule, _, _), n in self.agg.items():
            for control in compliance.controls_for(rule):
                by_control[control] += n
        order = {c: i for i, c in enumerate(compliance.catalog().controls())}
        return Verdict(
            passed=not violations, violations=tuple(violations), policy=pol, inputs=files,
            baseline_inputs=baseline_files,
            counts=counts, counted=counted,
            waived=self.waived, in_baseline=self.in_baseline, waivers=tuple(uses),
            tools=tuple((stage, tool) for stage, tool, _ in self.tools),
            top=tuple((e[3], e[4]) for e in self.top), warnings=tuple(self.warnings),
            expectations=self.expect, digests=tuple(digests), coverage=coverage,
            controls={c: by_control[c] for c in sorted(by_control, key=order.__getitem__)})


def read_baseline(root: Path) -> tuple[Baseline, tuple[InputFile, ...], list[InputError]]:
    """(rule id, fingerprint) of every finding in a baseline SARIF set, the files read, the malformed ones."""
    keys: set[tuple[str, str]] = set()
    files, errors = [], []
    with _gc_paused():
        for file, runs, error in iter_dir(root):
            files.append(file)
            if error is not None:
                errors.append(error)
            keys.update((h.rule, h.fingerprint) for r in runs for h in r.hits if h.fingerprint)
    return frozenset(keys), tuple(files), errors


def run_gate(policy: Policy, sarif_dir: Path, baseline_dir: Path | None = None,
             today: dt.date | None = None, exclude: frozenset[Path] = frozenset(),
             expect: Expectations = NOTHING_EXPECTED) -> Verdict:
    """Read the folders file by file and evaluate. A missing folder is an `InputError` (exit 2); a malformed
    file is a violation (the gate fails closed and still reports everything else). `exclude`: resolved
    paths not to read, i.e. the gate's own output (re-written after reading, it would not match its digest).
    `expect`: this run's id, expected stages and recorded digests (baseline files are not checked)."""
    baseline, base_files, base_errors = read_baseline(baseline_dir) if baseline_dir is not None else (None, (), [])
    ev = _Evaluation(policy, baseline, today or dt.datetime.now(dt.UTC).date(), expect)
    files, errors = [], []
    with _gc_paused():
        for file, runs, error in iter_dir(sarif_dir, exclude):
            files.append(file)
            if error is not None:
                errors.append(error)
            for run in runs:
                ev.add(run)
    return ev.verdict(tuple(files), errors + base_errors, base_files, str(sarif_dir))
