"""Every rule's help link lands on a section of our docs (zizmor's rule: a check's id is its docs anchor)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlsec_actions.analyzers import (
    archive_rules,
    gguf,
    hf_remote_code,
    keras,
    numpy_file,
    onnx_model,
    pickle_scan,
    prompts,
    safetensors,
    saved_model,
)
from mlsec_actions.findings import Rule
from mlsec_actions.tools import modelscan

REPO = Path(__file__).resolve().parents[2]
PREFIX = "https://github.com/mlsec-actions/mlsec-actions/blob/main/"
ANALYZERS = (archive_rules, gguf, hf_remote_code, keras, numpy_file, onnx_model, pickle_scan, prompts, safetensors,
             saved_model)


def _anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    return {_anchor(m) for m in re.findall(r"^#{1,6} (.+)$", doc.read_text(encoding="utf-8"), flags=re.M)}


def _rules() -> list[Rule]:
    rules = [r for mod in ANALYZERS for r in mod.RULES]
    rules += [v for v in vars(modelscan).values() if isinstance(v, Rule)]
    return rules


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.id)
def test_help_uri_points_at_a_docs_section(rule: Rule) -> None:
    assert rule.help_uri and rule.help_uri.startswith(PREFIX), rule.help_uri
    page, _, fragment = rule.help_uri.removeprefix(PREFIX).partition("#")
    doc = REPO / page
    assert doc.is_file(), f"{rule.id}: {page} does not exist"
    assert fragment in _anchors(doc), f"{rule.id}: no heading with anchor #{fragment} in {page}"
