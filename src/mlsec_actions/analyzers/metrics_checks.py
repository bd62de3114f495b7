"""The policy's `evaluate` section as data, and the checks it asks for: bounds, regression, fairness, robustness.

Every threshold comes from the trusted policy; every number compared is finite (`metrics.py`). A failed check is
one finding (severity high, so the default gate fails on it) whose message carries the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlsec_actions.analyzers import metrics_rules as rules
from mlsec_actions.analyzers.metrics import better_is_lower
from mlsec_actions.analyzers.metrics_robustness import Budget
from mlsec_actions.errors import InputError
from mlsec_actions.findings import Finding, Location, Severity


@dataclass(frozen=True)
class Bound:
    """`evaluate.metrics.<name>`."""

    min: float | None = None
    """Floor."""
    max: float | None = None
    """Ceiling."""
    max_drop: float | None = None
    """Largest worsening against the baseline."""
    direction: str | None = None
    """higher or lower is better (None: from the name)."""


@dataclass(frozen=True)
class EvaluatePolicy:
    """What evaluate checks."""

    source: str = ""
    """The policy file (for messages)."""
    bounds: dict[str, Bound] = field(default_factory=dict)
    """Metric name -> its bounds."""
    missing_fails: bool = True
    """A bounded metric nobody provided is a finding (else a note)."""
    fairness_column: str | None = None
    """The sensitive column; None: no fairness check."""
    max_demographic_parity: float | None = None
    """Bound on fairlearn's demographic parity difference."""
    max_equalized_odds: float | None = None
    """Bound on fairlearn's equalized odds difference."""
    robustness: Budget | None = None
    """The attack and its budget; None: no robustness check."""
    min_robust_accuracy: float = 0.0
    """Accuracy under attack that must be reached."""


def _finite(value: Any, where: str, label: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise InputError(label, f"{where}: must be a finite number, not {value!r}")
    return number


def from_section(section: dict[str, Any] | None, label: str) -> EvaluatePolicy:
    """The (schema-checked) `evaluate` section; NaN or infinite bounds are refused (exit 2)."""
    if not section:
        return EvaluatePolicy(source=label)
    bounds = {}
    for name, spec in (section.get("metrics") or {}).items():
        at = f"evaluate.metrics.{name}"
        num = {k: _finite(v, f"{at}.{k}", label) for k, v in spec.items() if k != "direction"}
        bounds[name] = Bound(min=num.get("min"), max=num.get("max"), max_drop=num.get("max-drop"),
                             direction=spec.get("direction"))
    fair = section.get("fairness") or {}
    rob = section.get("robustness")
    budget = None
    if rob:
        budget = Budget(attack=rob.get("attack", "noise"), epsilon=_finite(rob.get("epsilon", 0.1),
                        "evaluate.robustness.epsilon", label), samples=int(rob.get("samples", 50)),
                        max_iter=int(rob.get("max-iter", 10)))
    return EvaluatePolicy(
        source=label, bounds=bounds, missing_fails=section.get("missing", "fail") == "fail",
        fairness_column=fair.get("sensitive-column"),
        max_demographic_parity=fair.get("max-demographic-parity-difference"),
        max_equalized_odds=fair.get("max-equalized-odds-difference"), robustness=budget,
        min_robust_accuracy=float(rob["min-accuracy"]) if rob else 0.0)


_TOLERANCE = 1e-9  # 0.90 - 0.85 is 0.05000000000000004: a drop of exactly the allowance passes


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def bounds(policy: EvaluatePolicy, values: dict[str, float], baseline: dict[str, float], where: dict[str, str],
           notes: list[str]) -> list[Finding]:
    """Floors, ceilings and regression; `where`: metric -> the file it came from (the finding's location)."""
    out = []
    for name, b in sorted(policy.bounds.items()):
        value = values.get(name)
        loc = Location(where.get(name, ""))
        if value is None:
            text = f"The policy ({policy.source}) bounds metric {name}, but no metrics file or predictions gave it."
            if policy.missing_fails:
                out.append(Finding(rules.MISSING, text, Severity.HIGH, loc))
            else:
                notes.append(text)
            continue
        if b.min is not None and value < b.min:
            out.append(Finding(rules.BELOW_MIN, f"{name} = {_fmt(value)}, below the policy's minimum {_fmt(b.min)}.",
                               Severity.HIGH, loc, properties=(("metric", name), ("value", _fmt(value)))))
        if b.max is not None and value > b.max:
            out.append(Finding(rules.ABOVE_MAX, f"{name} = {_fmt(value)}, above the policy's maximum {_fmt(b.max)}.",
                               Severity.HIGH, loc, properties=(("metric", name), ("value", _fmt(value)))))
        if b.max_drop is None:
            continue
        base = baseline.get(name)
        if base is None:
            text = f"The policy limits {name}'s regression, but the baseline metrics do not give {name}."
            if policy.missing_fails:
                out.append(Finding(rules.MISSING, text, Severity.HIGH, loc))
            else:
                notes.append(text)
            continue
        drop = (value - base) if better_is_lower(name, b.direction) else (base - value)
        if drop - b.max_drop > _TOLERANCE:
            out.append(Finding(rules.REGRESSION, f"{name} = {_fmt(value)} against the baseline's {_fmt(base)}: worse "
                               f"by {_fmt(drop)}, the policy allows {_fmt(b.max_drop)}.", Severity.HIGH, loc,
                               properties=(("metric", name), ("value", _fmt(value)), ("baseline", _fmt(base)))))
    return out


def fairness(policy: EvaluatePolicy, dp: float, eo: float, location: str) -> list[Finding]:
    out = []
    col = policy.fairness_column
    if policy.max_demographic_parity is not None and dp > policy.max_demographic_parity:
        out.append(Finding(rules.DEMOGRAPHIC_PARITY, f"Demographic parity difference over {col} = {_fmt(dp)}, the "
                           f"policy allows {_fmt(policy.max_demographic_parity)}.", Severity.HIGH, Location(location)))
    if policy.max_equalized_odds is not None and eo > policy.max_equalized_odds:
        out.append(Finding(rules.EQUALIZED_ODDS, f"Equalized odds difference over {col} = {_fmt(eo)}, the policy "
                           f"allows {_fmt(policy.max_equalized_odds)}.", Severity.HIGH, Location(location)))
    return out


def robustness(policy: EvaluatePolicy, result: dict[str, Any], location: str) -> list[Finding]:
    if "refused" in result:
        return [Finding(rules.MODEL_REFUSED, f"The model was not loaded: {str(result['refused'])[:300]}.",
                        Severity.HIGH, Location(location))]
    got = result.get("attacked_accuracy")
    if not isinstance(got, float) or not math.isfinite(got):
        return [Finding(rules.INVALID, "The robustness check gave no finite accuracy.", Severity.HIGH,
                        Location(location))]
    if got < policy.min_robust_accuracy:
        return [Finding(rules.ROBUSTNESS, f"Accuracy under {result.get('attack')} (epsilon {result.get('epsilon')}, "
                        f"{result.get('samples')} samples) = {_fmt(got)} (clean {_fmt(result['clean_accuracy'])}), "
                        f"the policy needs at least {_fmt(policy.min_robust_accuracy)}.", Severity.HIGH,
                        Location(location))]
    return []
