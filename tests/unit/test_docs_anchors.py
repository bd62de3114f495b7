"""Every rule's help link lands on a section of our docs (zizmor's rule: a check's id is its docs anchor).

Rules are collected by walking the analyzer and tool packages, so a new module is covered without
being listed here.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

from mlsec_actions import analyzers, tools
from mlsec_actions.findings import Rule

REPO = Path(__file__).resolve().parents[2]
PREFIX = "https://github.com/mlsec-actions/mlsec-actions/blob/main/"


def _anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    return {_anchor(m) for m in re.findall(r"^#{1,6} (.+)$", doc.read_text(encoding="utf-8"), flags=re.M)}


def _rules() -> list[Rule]:
    found: dict[str, Rule] = {}
    for package in (analyzers, tools):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                candidates = value if isinstance(value, tuple) else (value,)
                found.update((r.id, r) for r in candidates if isinstance(r, Rule))
    return sorted(found.values(), key=lambda r: r.id)


def test_every_analyzer_module_is_covered() -> None:
    prefixes = {r.id.split("/")[0] for r in _rules()}
    assert {"pickle", "archive", "numpy", "tf", "keras", "onnx", "safetensors", "gguf", "hf", "prompt",
            "modelscan"} <= prefixes


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.id)
def test_help_uri_points_at_a_docs_section(rule: Rule) -> None:
    assert rule.help_uri and rule.help_uri.startswith(PREFIX), rule.help_uri
    page, _, fragment = rule.help_uri.removeprefix(PREFIX).partition("#")
    doc = REPO / page
    assert doc.is_file(), f"{rule.id}: {page} does not exist"
    assert fragment in _anchors(doc), f"{rule.id}: no heading with anchor #{fragment} in {page}"
