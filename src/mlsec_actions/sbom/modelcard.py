"""CycloneDX 1.6 `modelCard` objects from a model-card YAML and/or the `evaluate` metrics JSON.

cyclonedx-python-lib 11.12.0 has no model-card type, so the card is built as schema-shaped JSON
here and attached to the serialized BOM; the whole document is then schema-validated.

Model-card YAML: validated against `modelcard.schema.json` (shipped in this package); every key is
optional, an unknown key or a wrong type is an error naming its line (`file:line: key: problem`,
exit 2). `docs/sbom.md` has an example. A `version` written as a number keeps its text (`1.10`).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mlsec_actions.errors import InputError
from mlsec_actions.inputs import load_json, read_regular
from mlsec_actions.yaml_lines import DuplicateKey, LimitExceeded, Limits, Lines, compose, key_name, line_of

APPROACHES = ("supervised", "unsupervised", "reinforcement-learning", "semi-supervised", "self-supervised")
_TEXT_LISTS = {"users": "users", "use_cases": "useCases", "technical_limitations": "technicalLimitations",
               "performance_tradeoffs": "performanceTradeoffs"}


class ModelCardError(InputError):
    """A model card that breaks its schema; `problems` holds every `file:line: key: problem` line (exit 2)."""

    def __init__(self, path: object, problems: list[str]) -> None:
        super().__init__(path, f"{len(problems)} problem(s)")
        self.problems = problems

    def diagnostics(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0]
        return f"{self.problems[0]} (and {len(self.problems) - 1} more: {'; '.join(self.problems[1:4])})"


MAX_CARD_BYTES = 1024 * 1024
"""A model card is a page of text."""
CARD_LIMITS = Limits(max_aliases=0)
"""`yaml_lines`' bounded depth and size, and no alias at all. Composed before anything else touches the
text: PyYAML's own scanner is quadratic in flow nesting (200 KB of `[` takes minutes)."""


def schema() -> dict[str, Any]:
    """The model card's JSON Schema, shipped beside this module."""
    text = resources.files("mlsec_actions.sbom").joinpath("modelcard.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def load_card(path: Path) -> dict[str, Any]:
    """The model card, validated against `modelcard.schema.json`; errors name the line."""
    label = str(path)
    try:
        text = read_regular(path, "model card", MAX_CARD_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise ModelCardError(label, [f"{label}:1: not UTF-8 text"]) from None
    try:
        doc, lines = compose(text, CARD_LIMITS)
    except LimitExceeded as e:
        if "aliases" in str(e.problem):
            raise ModelCardError(label, [f"{label}:1: (top): YAML aliases are not allowed in a model card"]) from None
        mark = e.problem_mark
        raise ModelCardError(label, [f"{label}:{mark.line + 1 if mark else 1}: (top): {e.problem}"]) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ModelCardError(label, [f"{label}:{mark.line + 1 if mark else 1}: not valid YAML: "
                                     f"{e.problem or e}"]) from None
    except DuplicateKey as e:
        raise ModelCardError(label, [f"{label}:{e.line}: {e.key}: duplicate key"]) from None
    except RecursionError:
        raise ModelCardError(label, [f"{label}:1: (top): nested too deeply"]) from None
    if doc is None:
        return {}
    problems = _schema_problems(doc, lines, label)
    if problems:
        raise ModelCardError(label, problems)
    if isinstance(doc.get("version"), int | float):
        doc["version"] = _raw_top_scalar(text, "version") or str(doc["version"])
    return dict(doc)


def _schema_problems(doc: Any, lines: Lines, label: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema())
    out = []
    for e in sorted(validator.iter_errors(doc), key=lambda e: (line_of(lines, tuple(e.absolute_path)), e.message)):
        at = tuple(e.absolute_path)
        message = e.message
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            allowed = e.schema.get("properties", {}) if isinstance(e.schema, dict) else {}
            extra = sorted(str(k) for k in e.instance if k not in allowed)
            at = (*at, extra[0]) if extra else at
            message = "unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        elif e.validator == "type" and isinstance(e.instance, dict) and "string" in str(e.validator_value):
            message = ("a mapping where text is expected: YAML reads `a: b` inside a list as a mapping; "
                       "quote the text")
        elif e.validator == "anyOf":
            message = f"{_short(e.instance)} is not one of the allowed shapes (see docs/sbom.md#sbom-model-card)"
        out.append(f"{label}:{line_of(lines, at)}: {key_name(at)}: {message}")
    return out


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _raw_top_scalar(text: str, key: str) -> str | None:
    """A top-level scalar exactly as written (`1.10`, not the float 1.1). Only called on a card that
    `compose` accepted (depth bounded), so PyYAML's composer is linear here."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key and isinstance(v, yaml.ScalarNode):
                return str(v.value)
    return None


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
            elif isinstance(value, dict) and isinstance(value.get("value"), int | float | str):
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
    entries = [d if isinstance(d, dict) else {"name": str(d)} for d in card.get("datasets") or []]
    datasets = [_dataset(d, dataset_refs) for d in entries]
    named = {str(d.get("ref") or d["name"]) for d in entries}
    datasets += [{"ref": ref} for n, ref in dataset_refs.items() if n not in named and ref not in
                 {d.get("ref") for d in datasets}]
    if datasets:
        params["datasets"] = datasets
    for key in ("inputs", "outputs"):
        if card.get(key):
            params[key] = [{"format": str(f["format"]) if isinstance(f, dict) else str(f)} for f in card[key]]
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


def _dataset(entry: dict[str, Any], dataset_refs: dict[str, str]) -> dict[str, Any]:
    """A model-card dataset: a reference to a `--dataset`/discovered component, else CycloneDX componentData."""
    for key in ("ref", "name"):
        if str(entry.get(key)) in dataset_refs:
            return {"ref": dataset_refs[str(entry[key])]}
    out: dict[str, Any] = {"type": str(entry.get("type") or "dataset"), "name": str(entry["name"])}
    if entry.get("url"):
        out["contents"] = {"url": str(entry["url"])}
    for key in ("classification", "description"):
        if entry.get(key):
            out[key] = str(entry[key])
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
