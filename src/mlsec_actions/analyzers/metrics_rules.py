"""The evaluate stage's checks: one rule per threshold kind, its id the docs anchor (docs/evaluate.md).

The thresholds themselves come from the policy's `evaluate` section (never from the scanned tree); each failed
check is one SARIF result whose message carries the numbers.
"""

from __future__ import annotations

from mlsec_actions.findings import Rule

EVALUATE_DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/evaluate.md"


def _rule(slug: str, name: str, short: str, full: str, fix: str, *tags: str) -> Rule:
    return Rule(id=f"evaluate/{slug}", name=name, short_description=short, full_description=full, help_text=fix,
                help_uri=f"{EVALUATE_DOCS}#evaluate{slug}", tags=("ml", "evaluation", *tags))


BELOW_MIN = _rule("metric-below-min", "MetricBelowMin", "A model metric is below the policy's floor",
                  "A metric (accuracy, F1, AUC...) is lower than the policy's `evaluate.metrics.<name>.min`.",
                  "Improve the model or its data, or change the floor in a reviewed policy change.", "quality")
ABOVE_MAX = _rule("metric-above-max", "MetricAboveMax", "A model metric is above the policy's ceiling",
                  "A metric (RMSE, loss, error rate...) is higher than the policy's `evaluate.metrics.<name>.max`.",
                  "Improve the model or its data, or change the ceiling in a reviewed policy change.", "quality")
REGRESSION = _rule("regression", "MetricRegression", "A model metric regressed against the baseline",
                   "Against the baseline model's metrics, a metric got worse by more than the policy's "
                   "`evaluate.metrics.<name>.max-drop` (absolute; the direction is the metric's better side).",
                   "Find what made the model worse, or accept the new baseline in a reviewed policy change.",
                   "quality", "regression")
MISSING = _rule("metric-missing", "MetricMissing", "A metric the policy bounds was not provided",
                "The policy bounds a metric that no metrics file, predictions file or baseline gave: the check "
                "cannot pass unchecked.", "Emit the metric from training or evaluation, or drop its bound.",
                "quality")
INVALID = _rule("metric-invalid", "MetricInvalid", "A metric value is not a finite number",
                "A metrics file gives a value that is NaN, infinite, not a number, or a name that is not a "
                "plain metric name. It is never compared (NaN would pass every bound).",
                "Fix the evaluation code that writes the metrics.", "integrity")
DEMOGRAPHIC_PARITY = _rule(
    "demographic-parity", "DemographicParity", "Selection rates differ across a sensitive attribute",
    "fairlearn's demographic parity difference (the largest gap in selection rate between groups of the "
    "policy's sensitive column) is over `evaluate.fairness.max-demographic-parity-difference`.",
    "Rebalance the training data, use a fairness-constrained estimator, or post-process the decision "
    "thresholds per group.", "fairness")
EQUALIZED_ODDS = _rule(
    "equalized-odds", "EqualizedOdds", "Error rates differ across a sensitive attribute",
    "fairlearn's equalized odds difference (the larger of the gaps in true- and false-positive rates between "
    "groups) is over `evaluate.fairness.max-equalized-odds-difference`.",
    "Rebalance the training data or use a fairness-constrained estimator (fairlearn's reductions).", "fairness")
ROBUSTNESS = _rule(
    "robustness", "Robustness", "Accuracy under attack is below the policy's minimum",
    "Accuracy on inputs perturbed by the policy's attack (Gaussian noise, or ART's HopSkipJump evasion "
    "attack) within its budget is below `evaluate.robustness.min-accuracy`.",
    "Train with noise or adversarial examples, or regularise the model.", "robustness", "adversarial")
MODEL_REFUSED = _rule(
    "model-refused", "ModelRefused", "The model for the robustness check was not loaded",
    "The robustness check loads only skops files whose every type is on skops' default trusted list (no code "
    "runs at load); this one is another format or names other types, so it was not loaded.",
    "Save the model with `skops.io.dump`, or leave the robustness check out of the policy.", "robustness")

RULES = (BELOW_MIN, ABOVE_MAX, REGRESSION, MISSING, INVALID, DEMOGRAPHIC_PARITY, EQUALIZED_ODDS, ROBUSTNESS,
         MODEL_REFUSED)
