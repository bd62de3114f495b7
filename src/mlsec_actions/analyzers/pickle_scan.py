"""Pickle analyzer: judge every callable a load would import, without loading.

The walk (`pickle_walk.py`) names each import and the calls of watched helpers; `pickle_policy.py` judges
them. Helpers allowed only with checked arguments are verified here (`pickle_nested.py`): the byte string
given to `torch.storage._load_from_bytes` must be a literal (or built from literals) and is scanned in
turn. One finding per distinct global per blob (first offset, with a count). Joblib files are pickles
with raw numpy array bytes between opcodes: the BUILD hook skips exactly those bytes, or walks the
nested pickle of arrays holding objects.
"""

from __future__ import annotations

import mmap
import re
from typing import BinaryIO

from mlsec_actions.analyzers import pickle_joblib, pickle_nested
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.pickle_policy import Verdict, judge
from mlsec_actions.analyzers.pickle_rules import (
    BUILD_GLOBAL,
    COMPUTED,
    DANGEROUS,
    DYNAMIC,
    EXTENSION,
    FRAME,
    INDIRECT,
    LIMIT,
    MALFORMED,
    RISKY,
    RULES,
    UNKNOWN,
)
from mlsec_actions.analyzers.pickle_walk import Call, Global, Report, Source, walk_region
from mlsec_actions.findings import Finding, Severity

__all__ = ["MALFORMED", "RULES", "analyze", "findings", "scan_stream"]

_SEVERITY = {Verdict.CRITICAL: (DANGEROUS, Severity.CRITICAL), Verdict.HIGH: (RISKY, Severity.HIGH),
             Verdict.UNKNOWN: (UNKNOWN, Severity.HIGH)}
_WRAPPERS = frozenset({("functools", "partial"), ("_functools", "partial"), ("functools", "reduce"),
                       ("builtins", "map"), ("builtins", "filter"), ("builtins", "apply")})
WATCH = frozenset(pickle_joblib.WRAPPERS | _WRAPPERS | pickle_nested.watched())
_MAX_ERRORS = 5


def analyze(blob: Blob) -> list[Finding]:
    """The registry entry: a whole blob that is a pickle (or a joblib file)."""
    with blob.open() as stream:
        return findings(blob, scan_stream(stream))


def scan_stream(stream: BinaryIO) -> Report:
    """Walk every pickle stream from the current position; checked helpers and nested payloads are resolved."""
    src = Source(stream)
    try:
        report = walk_region(src.data, src.start, src.end, on_build=pickle_joblib.on_build, watch=WATCH)
        pickle_nested.resolve(report, src.data, 0, _rewalk)
        return report
    finally:
        src.close()


def _rewalk(data: bytes | mmap.mmap, start: int, end: int, depth: int) -> Report:
    """Walk a nested payload in place and resolve its own nested payloads."""
    report = walk_region(data, start, end, on_build=pickle_joblib.on_build, watch=WATCH)
    pickle_nested.resolve(report, data, depth, _rewalk)
    return report


def findings(blob: Blob, report: Report) -> list[Finding]:
    """Turn a walk into findings: one per distinct global, then calls, structure, errors, nested payloads."""
    out: list[Finding] = []
    wrapped = _wrapped(report.calls)
    for g in report.globals:
        verdict = judge(g.module, g.name)
        if verdict is Verdict.ALLOWED:
            continue
        rule, severity = _SEVERITY[verdict]
        count = report.counts.get((g.module, g.name), 1)
        message = f"Pickle imports {g.qualname} at byte {g.offset}{f' ({count} times)' if count > 1 else ''}"
        inner = wrapped.get((g.module, g.name))
        if inner:
            rule, severity = DANGEROUS, Severity.CRITICAL
            message += f", wrapping {inner}"
        message += "; it is not on the allowlist." if verdict is Verdict.UNKNOWN else "."
        out.append(Finding(rule=rule, severity=severity, message=message,
                           location=blob.location(f"offset {g.offset}::{g.qualname}", "function"),
                           properties=(("global", g.qualname), ("module", g.module), ("name", g.name),
                                       ("opcode", g.opcode), ("offset", str(g.offset)))))
    for offset, helper, problem in report.unchecked:
        out.append(Finding(rule=COMPUTED, severity=Severity.CRITICAL, location=blob.location(f"offset {offset}"),
                           message=f"{helper} at byte {offset} {problem}.", properties=(("global", helper),)))
    out.extend(_structure(blob, report))
    for label, nested in report.nested:
        member = f"{blob.member}!{label}" if blob.member else label
        out.extend(findings(Blob(blob.path, member, 0, blob.open), nested))
    return out


def _structure(blob: Blob, report: Report) -> list[Finding]:
    out: list[Finding] = []
    for offset in report.indirect[:1]:
        out.append(Finding(rule=INDIRECT, severity=Severity.HIGH, location=blob.location(f"offset {offset}"),
                           message=f"Pickle calls the result of another call at byte {offset} "
                                   f"({len(report.indirect)} such calls)."))
    for offset, qualname in report.patched[:1]:
        out.append(Finding(rule=BUILD_GLOBAL, severity=Severity.HIGH, location=blob.location(f"offset {offset}"),
                           message=f"BUILD at byte {offset} sets attributes on the imported {qualname} itself "
                                   f"({len(report.patched)} such BUILDs)."))
    for offset, frame_end in report.frames[:1]:
        out.append(Finding(rule=FRAME, severity=Severity.HIGH, location=blob.location(f"offset {offset}"),
                           message=f"Opcode at byte {offset} runs past the end of the frame ending at byte "
                                   f"{frame_end} ({len(report.frames)} such violations)."))
    for offset in report.dynamic[:1]:
        out.append(Finding(rule=DYNAMIC, severity=Severity.HIGH, location=blob.location(f"offset {offset}"),
                           message=f"STACK_GLOBAL at byte {offset} imports a name computed at load time "
                                   f"({len(report.dynamic)} such imports)."))
    for offset, code in report.extensions[:1]:
        out.append(Finding(rule=EXTENSION, severity=Severity.MEDIUM, location=blob.location(f"offset {offset}"),
                           message=f"Extension code {code} at byte {offset} imports an unknown callable."))
    if report.limits:
        out.append(Finding(rule=LIMIT, severity=Severity.LOW, location=blob.location(),
                           message=f"Pickle exceeds the walker's modelling limits ({', '.join(report.limits)}); "
                                   "the walk went on with less precision."))
    for offset, problem in report.errors[:_MAX_ERRORS]:
        out.append(Finding(rule=MALFORMED, severity=Severity.MEDIUM, location=blob.location(f"offset {offset}"),
                           message=f"Pickle does not parse at byte {offset}: {_clip(problem)}."))
    if report.ops == 0 and not report.errors:
        out.append(Finding(rule=MALFORMED, severity=Severity.LOW, location=blob.location(),
                           message="Pickle is empty."))
    return out


def _wrapped(calls: list[Call]) -> dict[tuple[str, str], str]:
    """functools.partial(f, ...) and friends: which wrapper wraps a critical callable."""
    out: dict[tuple[str, str], str] = {}
    for call in calls:
        func = call.func
        if not isinstance(func, Global) or (func.module, func.name) not in _WRAPPERS:
            continue
        for arg in call.args if isinstance(call.args, tuple) else ():
            if isinstance(arg, Global) and judge(arg.module, arg.name) is Verdict.CRITICAL:
                out[(func.module, func.name)] = arg.qualname
    return out


def _clip(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(".")[:200]
