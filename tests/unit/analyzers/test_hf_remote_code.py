"""Hugging Face folders: auto_map entries, dangerous calls in remote code, chat templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions.analyzers import hf_remote_code
from mlsec_actions.findings import Finding, Severity
from tests.model_corpus_formats import LIPSUM_TEMPLATE, assert_documented, hf_folder


def _ids(found: list[Finding]) -> list[str]:
    return sorted(f.rule.id for f in found)


def test_plain_folder_is_clean(tmp_path: Path) -> None:
    hf_folder(tmp_path / "models" / "tiny", remote_code=False)
    assert hf_remote_code.analyze_folder(tmp_path, "models/tiny") == []


def test_auto_map_entries_are_reported(tmp_path: Path) -> None:
    hf_folder(tmp_path / "m", remote_code=True)
    found = hf_remote_code.analyze_folder(tmp_path, "m")
    assert _ids(found) == ["hf/auto-map", "hf/auto-map"]
    by_class = {f.location.logical: f for f in found}
    model = by_class["auto_map.AutoModel"]
    assert model.severity is Severity.HIGH
    assert "`TinyModel`" in model.message and "`modeling_tiny.py` in this folder" in model.message
    assert model.location.path == "m/config.json" and model.location.start_line is not None


def test_dangerous_calls_in_reachable_modules(tmp_path: Path) -> None:
    # configuration_tiny is reachable twice: from auto_map and by modeling_tiny's relative import.
    hf_folder(tmp_path, remote_code=True, malicious=True)
    found = hf_remote_code.analyze_folder(tmp_path, ".")
    calls = {(f.rule.id, f.location.logical, f.severity) for f in found if f.rule.id != "hf/auto-map"}
    assert calls == {("hf/dangerous-call", "os.system", Severity.CRITICAL),
                     ("hf/dangerous-call", "subprocess.Popen", Severity.CRITICAL),
                     ("hf/network-call", "urllib.request.urlopen", Severity.HIGH)}
    assert {f.location.path for f in found if f.rule.id == "hf/dangerous-call"} == {"configuration_tiny.py"}
    # helper_script.py calls os.system too, but no auto_map entry reaches it
    assert all(f.location.path != "helper_script.py" for f in found)
    assert not (tmp_path / "EXECUTED").exists()  # the module was read, never imported


def test_relative_import_makes_a_module_reachable(tmp_path: Path) -> None:
    hf_folder(tmp_path, remote_code=True)
    (tmp_path / "configuration_tiny.py").write_text("from .utils_evil import x\n")
    (tmp_path / "utils_evil.py").write_text("import builtins\nbuiltins.exec('print(1)')\n")
    found = hf_remote_code.analyze_folder(tmp_path, "")
    assert ("hf/dangerous-call", "utils_evil.py") in {(f.rule.id, f.location.path) for f in found}


def test_other_repository_and_missing_module(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"auto_map": {
        "AutoModel": "someone/other-repo--modeling_x.XModel",
        "AutoTokenizer": ["tokenization_x.XTokenizer", None]}}))
    found = hf_remote_code.analyze_folder(tmp_path, ".")
    messages = " ".join(f.message for f in found)
    assert _ids(found) == ["hf/auto-map", "hf/auto-map"]
    assert "another Hub repository `someone/other-repo`" in messages
    assert "`tokenization_x.py`, missing here" in messages


def test_unparsable_module(tmp_path: Path) -> None:
    hf_folder(tmp_path, remote_code=True)
    (tmp_path / "modeling_tiny.py").write_text("def broken(:\n")
    assert "hf/unparsable-code" in _ids(hf_remote_code.analyze_folder(tmp_path, "."))


def test_chat_template_escape_in_tokenizer_config(tmp_path: Path) -> None:
    hf_folder(tmp_path, remote_code=False, template=LIPSUM_TEMPLATE)
    found = hf_remote_code.analyze_folder(tmp_path, ".")
    assert [(f.rule.id, f.severity) for f in found] == [("hf/chat-template-injection", Severity.CRITICAL)]
    assert found[0].location.path == "tokenizer_config.json"


def test_named_chat_templates(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": [
        {"name": "default", "template": "{{ messages }}"}, {"name": "rag", "template": LIPSUM_TEMPLATE}]}))
    found = hf_remote_code.analyze_folder(tmp_path, ".")
    assert [f.location.logical for f in found] == ["chat_template.rag"]


def test_malformed_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{broken")
    assert _ids(hf_remote_code.analyze_folder(tmp_path, ".")) == ["hf/malformed-config"]


def test_symlinked_module_outside_folder_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("import os\nos.system('x')\n")
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "modeling.M"}}))
    (folder / "modeling.py").symlink_to(outside)
    assert _ids(hf_remote_code.analyze_folder(tmp_path, "m")) == ["hf/auto-map"]


def test_method_calls_named_like_builtins_are_not_flagged(tmp_path: Path) -> None:
    hf_folder(tmp_path, remote_code=True)
    (tmp_path / "modeling_tiny.py").write_text("import re\nmodel.eval()\nre.compile('x')\nself.exec = 1\n")
    assert _ids(hf_remote_code.analyze_folder(tmp_path, ".")) == ["hf/auto-map", "hf/auto-map"]


def test_rules_are_documented() -> None:
    assert_documented(hf_remote_code.RULES)


def test_symlinked_folder_outside_root_is_not_followed(tmp_path: Path) -> None:
    outside = hf_folder(tmp_path / "outside", remote_code=True, malicious=True)
    root = tmp_path / "repo"
    root.mkdir()
    (root / "model").symlink_to(outside, target_is_directory=True)
    assert hf_remote_code.analyze_folder(root, "model") == []
    assert hf_remote_code.analyze_folder(tmp_path, "outside") != []


def test_custom_pipeline_implementation(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"custom_pipelines": {
        "pair-classification": {"impl": "custom_pipeline.PairClassificationPipeline", "pt": ["AutoModel"]}}}))
    (tmp_path / "custom_pipeline.py").write_text("import subprocess\nsubprocess.run(['id'])\n")
    found = hf_remote_code.analyze_folder(tmp_path, ".")
    assert {(f.rule.id, f.location.logical) for f in found} == {
        ("hf/auto-map", "custom_pipelines.pair-classification"), ("hf/dangerous-call", "subprocess.run")}


def _stage(root: Path, out: Path) -> dict[str, set[str]]:
    """model-scan on `root` (the stage finds the folders): rule ids by file."""
    from mlsec_actions.cli import main

    sarif = out / "hf.sarif"
    assert main(["model-scan", str(root), "--sarif", str(sarif), "--source-root", str(root), "--no-modelscan"]) == 0
    found: dict[str, set[str]] = {}
    for r in json.loads(sarif.read_text())["runs"][0]["results"]:
        found.setdefault(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], set()).add(r["ruleId"])
    return found


def test_auto_map_in_tokenizer_config_without_config_json(tmp_path: Path) -> None:
    # AutoTokenizer.from_pretrained(..., trust_remote_code=True) imports tokenization_evil.py: no config.json needed.
    root = tmp_path / "repo"
    folder = root / "tok"
    folder.mkdir(parents=True)
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"auto_map": {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}, "model_max_length": 8}))
    (folder / "tokenization_evil.py").write_text("import os\nos.system('id')\n")
    found = _stage(root, tmp_path)
    assert found == {"tok/tokenizer_config.json": {"hf/auto-map"}, "tok/tokenization_evil.py": {"hf/dangerous-call"}}


@pytest.mark.parametrize("name", ["preprocessor_config.json", "processor_config.json", "adapter_config.json",
                                  "image_processor_config.json", "my_custom_config.json"])
def test_auto_map_in_any_config_file(tmp_path: Path, name: str) -> None:
    root = tmp_path / "repo"
    (root / "m").mkdir(parents=True)
    (root / "m" / name).write_text(json.dumps({"auto_map": {"AutoProcessor": "processing_x.XProcessor"}}))
    assert _stage(root, tmp_path) == {f"m/{name}": {"hf/auto-map"}}


def test_config_files_without_auto_map_are_clean(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "m").mkdir(parents=True)
    (root / "m" / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 8, "auto_map": {}}))
    (root / "m" / "generation_config.json").write_text(json.dumps({"max_new_tokens": 5}))
    (root / "m" / "_config.json").write_text(json.dumps({"auto_map": {"AutoModel": "x.Y"}}))  # not a config name
    assert _stage(root, tmp_path) == {}


def test_config_symlink_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"auto_map": {"AutoModel": "m.M"}}))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "tokenizer_config.json").symlink_to(outside)
    assert hf_remote_code.config_files(tmp_path / "m") == []
