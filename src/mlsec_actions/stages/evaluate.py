"""evaluate (ML stage 6): the trained model held to the policy's metric, regression, fairness and robustness bounds.

Reads metrics the caller names (`--metrics`: JSON/YAML from training or evaluation, k-fold lists averaged),
computes them from a predictions CSV with scikit-learn (`--predictions`), compares with a baseline
(`--baseline-metrics`), measures fairness gaps with fairlearn over the policy's sensitive column, and accuracy
under attack with ART on a skops model (`--model`, `--data`). Thresholds come only from the policy's `evaluate`
section (`--policy`, the trusted policy), never from the scanned tree. Every failed check is one SARIF result
with its numbers; the metrics are the SARIF run's `metrics` property (the gate's metric rules read them).
Reference: docs/evaluate.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlsec_actions import outputs
from mlsec_actions.findings import Finding, StageResult, ToolRun, ToolStatus, sort_findings
from mlsec_actions.stages.base import ScanContext, Stage, add_scan_arguments, processing, run_scan

STAGE_ID = "evaluate"
TOOL = "mlsec-evaluate"


def configure(parser: argparse.ArgumentParser) -> None:
    add_scan_arguments(parser, STAGE_ID)
    parser.add_argument("--policy", default="default",
                        help="policy whose `evaluate` section holds the thresholds (default: %(default)s)")
    parser.add_argument("--metrics", action="append", type=Path, default=[], metavar="FILE",
                        help="metrics JSON or YAML the training or evaluation wrote (repeatable)")
    parser.add_argument("--training-log", type=Path, default=None, metavar="JSONL",
                        help="early-stopping log (JSON lines): the kept epoch's metrics count (docs/evaluate.md)")
    parser.add_argument("--predictions", type=Path, default=None, metavar="CSV",
                        help="held-out predictions: y_true, y_pred, optional y_score and sensitive columns")
    parser.add_argument("--task", choices=("classification", "regression"), default="classification",
                        help="which metrics --predictions gives (default: %(default)s)")
    parser.add_argument("--baseline-metrics", action="append", type=Path, default=[], metavar="FILE",
                        help="the baseline model's metrics, for the policy's max-drop bounds (repeatable)")
    parser.add_argument("--model", type=Path, default=None,
                        help="robustness: the model as a skops file (never a pickle)")
    parser.add_argument("--data", type=Path, default=None, metavar="CSV",
                        help="robustness: held-out features and the label column")
    parser.add_argument("--label-column", default="y_true", help="the label column of --data (default: %(default)s)")
    parser.add_argument("--metrics-out", type=outputs.output_file, default=None,
                        help="also write the metrics as JSON (for `mlsec sbom --metrics`)")


def _where(path: Path, root: Path) -> str:
    full = path.resolve()
    return full.relative_to(root).as_posix() if full.is_relative_to(root) else path.name


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def scan(ctx: ScanContext) -> StageResult:
    if Path(ctx.args.paths[0]).resolve() != ctx.target:  # the inputs are options: judged once
        return StageResult(STAGE_ID)
    from mlsec_actions.analyzers import metrics as mx
    from mlsec_actions.analyzers import metrics_checks as checks
    from mlsec_actions.analyzers import metrics_rules as rules
    from mlsec_actions.findings import Location, Severity
    from mlsec_actions.gate.policy import load_document

    args, root = ctx.args, ctx.root
    doc, label = load_document(args.policy)
    policy = checks.from_section(doc.get("evaluate"), label)
    named = [Path(p) for p in (*args.metrics, args.training_log, args.predictions, args.model) if p is not None]
    # A finding about something absent still needs a file: the first input, else the policy.
    fallback = _where(named[0], root) if named else _where(Path(label), root)
    findings: list[Finding] = []
    notes: list[str] = []
    tools: list[ToolRun] = []
    values: dict[str, float] = {}
    where: dict[str, str] = {}
    folds: dict[str, list[float]] = {}

    def take(got: mx.Metrics, shown: str) -> None:
        for name, why in got.invalid:
            findings.append(Finding(rules.INVALID, f"Metric {name} in {shown} is not usable: {why}.", Severity.HIGH,
                                    Location(shown)))
        values.update(got.values)
        where.update(dict.fromkeys(got.values, shown))
        folds.update({k: list(v) for k, v in got.folds.items()})

    for path in [Path(p) for p in args.metrics]:
        processing(path)
        take(mx.load(path), _where(path, root))
    extra: dict[str, Any] = {}
    if args.training_log is not None:
        extra["training_log"] = _training_log(Path(args.training_log), root, take)
    if args.predictions is not None:
        findings += _predictions(ctx, policy, take, tools, extra)
    baseline: dict[str, float] = {}
    for path in [Path(p) for p in args.baseline_metrics]:
        processing(path)
        baseline.update(mx.load(path).values)  # an unusable baseline value is simply not a baseline
    findings += checks.bounds(policy, values, baseline, {n: where.get(n, fallback) for n in policy.bounds}, notes)
    findings += _robustness(ctx, policy, tools, extra, notes, fallback)
    if policy.fairness_column and args.predictions is None:
        findings.append(Finding(rules.MISSING, f"The policy asks for fairness over {policy.fairness_column}, but no "
                                "--predictions file was given.", Severity.HIGH, Location(fallback)))
    if not (args.metrics or args.training_log or args.predictions or args.model):
        notes.append("nothing to evaluate: no --metrics, --training-log, --predictions or --model given")
    extra.update({"metrics": dict(sorted(values.items())), "policy": {"path": label}})
    if folds:
        extra["folds"] = folds
    if baseline:
        extra["baseline"] = dict(sorted(baseline.items()))
    if args.metrics_out is not None:
        outputs.write_text(args.metrics_out, json.dumps({"metrics": extra["metrics"]}, indent=2) + "\n")
    tools.insert(0, ToolRun(TOOL, ToolStatus.OK, notes=tuple(notes)))
    return StageResult(STAGE_ID, sort_findings(findings), tuple(tools), extra=extra)


def _training_log(path: Path, root: Path, take: Any) -> dict[str, Any]:
    from mlsec_actions.analyzers import metrics as mx
    from mlsec_actions.analyzers import training_log

    processing(path)
    shown = _where(path, root)
    log = training_log.load(path)
    take(mx.Metrics(log.values), shown)
    return {"file": shown, "epoch": log.epoch, "epochs": log.epochs, "best_epoch": log.best_epoch,
            "restored": log.restored, "monitor": log.monitor}


def _predictions(ctx: ScanContext, policy: Any, take: Any, tools: list[ToolRun],
                 extra: dict[str, Any]) -> list[Finding]:
    from mlsec_actions.analyzers import metrics as mx
    from mlsec_actions.analyzers import metrics_checks as checks
    from mlsec_actions.analyzers import metrics_predictions as mp

    path = Path(ctx.args.predictions)
    processing(path)
    shown = _where(path, ctx.root)
    table = mp.read(path)
    cols = mp.Columns()
    computed = mp.classification(table, cols, str(path)) if ctx.args.task == "classification" else \
        mp.regression(table, cols, str(path))
    take(mx.Metrics(computed), shown)
    tools.append(ToolRun("scikit-learn", ToolStatus.OK, version=_version("scikit-learn")))
    if not policy.fairness_column:
        return []
    try:
        fair = mp.fairness(table, cols, policy.fairness_column, str(path))
    except (ValueError, ZeroDivisionError) as e:
        if type(e).__name__ == "InputError":
            raise
        tools.append(ToolRun("fairlearn", ToolStatus.FAILED, message=f"{type(e).__name__}: {e}"))
        return []
    tools.append(ToolRun("fairlearn", ToolStatus.OK, version=_version("fairlearn")))
    extra["fairness"] = {"column": fair.column, "demographic_parity_difference": fair.demographic_parity_difference,
                         "equalized_odds_difference": fair.equalized_odds_difference, "groups": fair.groups}
    return checks.fairness(policy, fair.demographic_parity_difference, fair.equalized_odds_difference, shown)


def _robustness(ctx: ScanContext, policy: Any, tools: list[ToolRun], extra: dict[str, Any],
                notes: list[str], fallback: str) -> list[Finding]:
    from mlsec_actions.analyzers import metrics_checks as checks
    from mlsec_actions.analyzers import metrics_robustness as mr
    from mlsec_actions.analyzers import metrics_rules as rules
    from mlsec_actions.findings import Location, Severity

    args = ctx.args
    if policy.robustness is None:
        if args.model is not None:
            notes.append("--model given but the policy has no evaluate.robustness section: not attacked")
        return []
    if args.model is None or args.data is None:
        return [Finding(rules.MISSING, "The policy asks for a robustness check, but --model and --data were not "
                        "both given.", Severity.HIGH, Location(fallback))]
    from mlsec_actions.errors import InputError

    model, data = Path(args.model), Path(args.data)
    for p in (model, data):
        if p.is_symlink() or not p.is_file():
            raise InputError(p, "missing, a link or not a regular file")
    result, run = mr.run(model, data, args.label_column, policy.robustness, args.timeout)
    tools.append(run)
    if result is None:
        return []
    extra["robustness"] = result
    return checks.robustness(policy, result, _where(model, ctx.root))


def execute(args: argparse.Namespace) -> int:
    return run_scan(args, STAGE_ID, scan)


STAGE = Stage(id=STAGE_ID, summary="metric thresholds, regression, fairness (fairlearn) and robustness (ART) "
                                   "checks from the policy", configure=configure, execute=execute)
