"""Per-global allows from the policy (`model-scan: allow-globals:`): exact `(module, name)` pairs with a reason.

A project whose pickles import its own class (`mypkg.layers.Custom`) may accept that one import after
review. Only an exact pair is ever matched, and only for `pickle/unknown-global`: a name that is a
code-execution primitive or reaches one through its attribute chain (`os.system`, `torch.os.system`), a
call-chaining helper (`functools.partial`), a dunder step, or anything with a wildcard is refused when
the policy is loaded, so no entry can allow what the denylist names. Each allow that applied is a
coverage gap (`allow-rule`), so an accepted import is never silent.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from mlsec_actions.analyzers.pickle_policy import Verdict, judge
from mlsec_actions.analyzers.pickle_rules import UNKNOWN
from mlsec_actions.findings import CoverageGap, Finding, GapKind

_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MIN_REASON = 10


@dataclass(frozen=True)
class Allow:
    """One accepted import."""

    module: str
    """The module, exactly as the pickle names it (`mypkg.layers`)."""
    name: str
    """The attribute (qualname, possibly dotted: `Outer.Inner`)."""
    reason: str
    """Why it is inert (a reviewed sentence)."""

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


def problems(module: object, name: object, reason: object) -> list[str]:
    """Why an entry cannot be accepted (empty: it can)."""
    if not isinstance(module, str) or not isinstance(name, str) or not isinstance(reason, str):
        return ["module, name and reason must be strings"]
    out = []
    for label, value in (("module", module), ("name", name)):
        parts = value.split(".")
        if not all(_PART.fullmatch(p) for p in parts):
            out.append(f"{label} {value!r} is not an exact dotted name (no wildcards, prefixes or empty parts)")
        elif any(p.startswith("__") and p.endswith("__") for p in parts):
            out.append(f"{label} {value!r} has a dunder step, which reaches anything")
    if len(reason.strip()) < MIN_REASON:
        out.append(f"reason is too short: say why {module}.{name} is inert (at least {MIN_REASON} characters)")
    if out:
        return out
    verdict = judge(module, name)
    # `torch.os`: an attribute that is itself a denied module gives every attribute of it to the next import.
    if verdict is Verdict.CRITICAL or judge(f"{module}.{name}", "_") is Verdict.CRITICAL:
        out.append(f"{module}.{name} runs code or reaches files or the network (or passes through a module that "
                   "does): it can never be allowed")
    elif verdict is Verdict.HIGH:
        out.append(f"{module}.{name} chains other calls (partial, map, operator...): it can never be allowed")
    return out


def apply(findings: Iterable[Finding], allows: Iterable[Allow]) -> tuple[list[Finding], list[CoverageGap]]:
    """Drop the `pickle/unknown-global` findings of exactly the allowed imports; one gap per allow that applied."""
    table = {(a.module, a.name): a for a in allows}
    if not table:
        return list(findings), []
    kept: list[Finding] = []
    used: Counter[tuple[str, str]] = Counter()
    for f in findings:
        props = dict(f.properties)
        key = (props.get("module", ""), props.get("name", ""))
        if f.rule is UNKNOWN and key in table:
            used[key] += 1
            continue
        kept.append(f)
    gaps = [CoverageGap(GapKind.ALLOW_RULE, f"policy allows the pickle import {table[k].qualname} "
                                            f"({table[k].reason.strip()}): {n} finding(s) not reported")
            for k, n in sorted(used.items())]
    return kept, gaps
