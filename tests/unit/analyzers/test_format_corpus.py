"""The adversarial container/format corpus through the real stage: full recall at HIGH, benign twins clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlsec_actions.cli import main
from tests import format_corpus

COMMITTED = Path(__file__).resolve().parents[2] / "corpus" / "formats"


def _results(root: Path, out: Path) -> list[dict[str, Any]]:
    sarif = out / "formats.sarif"
    assert main(["model-scan", str(root), "--sarif", str(sarif), "--source-root", str(root), "--no-modelscan"]) == 0
    run = json.loads(sarif.read_text())["runs"][0]
    assert all(inv["executionSuccessful"] for inv in run["invocations"])
    return list(run["results"])


def test_every_malicious_sample_is_high_and_every_benign_twin_is_clean(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    format_corpus.write(root)
    results = _results(root, tmp_path)
    by_file: dict[str, set[tuple[str, str]]] = {}
    for r in results:
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        by_file.setdefault(uri, set()).add((r["ruleId"], r["level"]))
    missed, noisy = [], []
    for sample in format_corpus.samples():
        found = {rule for rule, level in _under(by_file, sample.name) if level == "error"}
        if sample.expect and sample.expect not in found:
            missed.append((sample.name, sorted(_under(by_file, sample.name))))
        if not sample.expect and any(level != "note" for _, level in _under(by_file, sample.name)):
            noisy.append((sample.name, sorted(_under(by_file, sample.name))))
    assert missed == [] and noisy == []


def _under(by_file: dict[str, set[tuple[str, str]]], name: str) -> set[tuple[str, str]]:
    """Results on the file, or for an HF folder sample on any file of its folder."""
    folder = name.rsplit("/", 1)[0] + "/"
    return set().union(*(v for k, v in by_file.items() if k == name or (name.startswith("hf/") and
                                                                         k.startswith(folder))))


def test_committed_copy_matches_the_generator() -> None:
    labels = json.loads((COMMITTED / "labels.json").read_text())
    assert set(labels) == {s.name for s in format_corpus.samples()}
    on_disk = {p.relative_to(COMMITTED).as_posix() for p in COMMITTED.rglob("*")
               if p.is_file() and not p.relative_to(COMMITTED).as_posix().startswith("peers/")}
    assert on_disk == set(labels) | {"labels.json"}
    for s in format_corpus.samples():
        assert labels[s.name]["expect"] == s.expect
        if not s.name.startswith("7z/"):  # 7z stores the time it was written
            assert (COMMITTED / s.name).read_bytes() == s.data, s.name
