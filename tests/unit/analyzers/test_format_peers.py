"""modelaudit's own format samples (Jinja templates, Keras HDF5, SavedModel, archives) with their upstream labels.

The files are copied as bytes from the repository and commit in `manifest.json`; nothing is loaded.
Malicious samples must be a finding at HIGH or above with the expected rule; benign ones no finding at
MEDIUM or above; upstream edge cases (malformed, empty, oversized templates) nothing above MEDIUM.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions.analyzers import archive, hf_remote_code
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.dispatch import Dispatcher
from mlsec_actions.findings import Finding, Severity

ROOT = Path(__file__).resolve().parents[2] / "corpus" / "formats" / "peers" / "modelaudit"
SAMPLES: list[dict[str, Any]] = json.loads((ROOT / "manifest.json").read_text())["samples"]


def _scan(sample: dict[str, Any], tmp_path: Path) -> list[Finding]:
    path = ROOT / sample["file"]
    if sample["file"].startswith("jinja2/"):  # tokenizer configs: the folder check reads them by name
        shutil.copy(path, tmp_path / "tokenizer_config.json")
        return hf_remote_code.analyze_folder(tmp_path, ".")
    data = path.read_bytes()
    return Dispatcher(limits=archive.Limits()).scan_file(Blob(path.name, None, len(data), lambda: io.BytesIO(data)))


def test_manifest_lists_every_file_with_its_source() -> None:
    on_disk = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert on_disk == {s["file"] for s in SAMPLES}
    assert all(s["repo"] == "promptfoo/modelaudit" and len(s["commit"]) == 40 for s in SAMPLES)
    assert sum(s["label"] == "malicious" for s in SAMPLES) >= 20


@pytest.mark.parametrize("sample", SAMPLES, ids=[s["file"] for s in SAMPLES])
def test_upstream_label_holds(sample: dict[str, Any], tmp_path: Path) -> None:
    findings = _scan(sample, tmp_path)
    if sample["label"] == "malicious":
        assert any(f.rule.id == sample["expect"] and f.severity >= Severity.HIGH for f in findings), findings
    elif sample["label"] == "benign":
        assert [f for f in findings if f.severity >= Severity.MEDIUM] == []
    else:
        assert [f for f in findings if f.severity >= Severity.HIGH] == []
