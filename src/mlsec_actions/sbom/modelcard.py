"""CycloneDX 1.6 `modelCard` objects from a model-card YAML and/or the `evaluate` metrics JSON.

cyclonedx-python-lib 11.12.0 has no model-card type, so the card is built as schema-shaped JSON
here and attached to the serialized BOM; the whole document is then schema-validated.

Model-card YAML (all keys optional; `docs/sbom.md` has an example):
`name, version, description, task, approach, architecture_family, model_architecture,
datasets: [name], inputs: [format], outputs: [format], metrics: {name: value} | [{type, value, slice}],
considerations: {users, use_cases, technical_limitations, performance_tradeoffs: [text],
ethical_considerations: [{name, mitigation}], fairness_assessments: [{group_at_risk, benefits, harms,
mitigation}]}`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlsec_actions.errors import InputError
from mlsec_actions.inputs import load_json

APPROACHES = ("supervised", "unsupervised", "reinforcement-learning", "semi-supervised", "self-supervised")
_TEXT_LISTS = {"users": "users", "use_cases": "useCases", "technical_limitations": "technicalLimitations",
               "performance_tradeoffs": "performanceTradeoffs"}


def load_card(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(path, f"cannot read model card: {e.strerror or e}") from None
    except yaml.YAMLError:
        raise InputError(path, "model card is not valid YAML") from None
    if not isinstance(doc, dict):
        raise InputError(path, "model card must be a mapping")
    return doc


def load_metrics(path: Path) -> list[dict[str, Any]]:
    """Metrics as `[{type, value, slice?}]` from `{name: number}`, `{"metrics": ...}` or a list."""
    doc = load_json(path, "metrics")
    if isinstance(doc, dict) and isinstance(doc.get("metrics"), dict | list):
        doc = doc["metrics"]
    return _metrics(doc, path)


def _metrics(doc: object, where: object) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(doc, dict):
        for name, value in doc.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out.append({"type": str(name), "value": str(value)})
            elif isinstance(value, dict) and isinstance(value.get("value"), int | float):
                out.append(_metric({"type": name, **value}))
    elif isinstance(doc, list):
        for item in doc:
            if isinstance(item, dict) and (item.get("type") or item.get("name")) and "value" in item:
                out.append(_metric(item))
    else:
        raise InputError(where, "metrics must be a mapping of name to number, or a list of {type, value}")
    return out


def _metric(item: dict[str, Any]) -> dict[str, Any]:
    m: dict[str, Any] = {"type": str(item.get("type") or item.get("name")), "value": str(item["value"])}
    if item.get("slice"):
        m["slice"] = str(item["slice"])
    lo, hi = item.get("lower_bound", item.get("lowerBound")), item.get("upper_bound", item.get("upperBound"))
    if lo is not None and hi is not None:
        m["confidenceInterval"] = {"lowerBound": str(lo), "upperBound": str(hi)}
    return m


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def build(card: dict[str, Any], metrics: list[dict[str, Any]], dataset_refs: dict[str, str],
          where: object) -> dict[str, Any]:
    """The `modelCard` JSON. `dataset_refs` maps dataset names/paths to their components' bom-refs."""
    params: dict[str, Any] = {}
    if card.get("approach"):
        if card["approach"] not in APPROACHES:
            raise InputError(where, f"approach must be one of {', '.join(APPROACHES)}")
        params["approach"] = {"type": card["approach"]}
    for key, field in (("task", "task"), ("architecture_family", "architectureFamily"),
                       ("model_architecture", "modelArchitecture")):
        if card.get(key):
            params[field] = str(card[key])
    names = _strings(card.get("datasets"))
    datasets = [{"ref": dataset_refs[n]} if n in dataset_refs else {"type": "dataset", "name": n} for n in names]
    datasets += [{"ref": ref} for n, ref in dataset_refs.items() if n not in names and ref not in
                 {d.get("ref") for d in datasets}]
    if datasets:
        params["datasets"] = datasets
    for key in ("inputs", "outputs"):
        if card.get(key):
            params[key] = [{"format": f} for f in _strings(card[key])]
    out: dict[str, Any] = {}
    if params:
        out["modelParameters"] = params
    all_metrics = _metrics(card.get("metrics") or {}, where) + metrics
    if all_metrics:
        out["quantitativeAnalysis"] = {"performanceMetrics": all_metrics}
    cons = _considerations(card.get("considerations") or {})
    if cons:
        out["considerations"] = cons
    return out


def _considerations(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    for key, field in _TEXT_LISTS.items():
        if raw.get(key):
            out[field] = _strings(raw[key])
    ethical = [{"name": str(e.get("name", "")), "mitigationStrategy": str(e.get("mitigation", ""))}
               for e in raw.get("ethical_considerations") or [] if isinstance(e, dict)]
    if ethical:
        out["ethicalConsiderations"] = ethical
    fairness = [{k2: str(f[k1]) for k1, k2 in (("group_at_risk", "groupAtRisk"), ("benefits", "benefits"),
                                               ("harms", "harms"), ("mitigation", "mitigationStrategy")) if k1 in f}
                for f in raw.get("fairness_assessments") or [] if isinstance(f, dict)]
    if fairness:
        out["fairnessAssessments"] = fairness
    return out
