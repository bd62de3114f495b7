"""`mlsec sbom`: CycloneDX 1.6 that validates and carries model hashes, the model card and dependencies."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from mlsec_actions import cli
from mlsec_actions.digests import DigestCache
from mlsec_actions.sbom import depfiles, modelcard

CARD = """\
version: 1.2.0
description: Iris species classifier
task: classification
approach: supervised
architecture_family: random-forest
datasets: [data/train.csv]
inputs: [tabular]
outputs: [label]
metrics: {accuracy: 0.95}
considerations:
  users: [data scientists]
  use_cases: [flower triage]
  technical_limitations: [three species only]
  ethical_considerations: [{name: none known, mitigation: review yearly}]
  fairness_assessments: [{group_at_risk: rare species, harms: misclassification, mitigation: reweighting}]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "model" / "tokenizer").mkdir(parents=True)
    (tmp_path / "model" / "weights.safetensors").write_bytes(b"\x00" * 1024)
    (tmp_path / "model" / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("x,y\n1,2\n")
    (tmp_path / "requirements.txt").write_text(
        "# pinned\nNumPy==1.26.4\nscikit_learn==1.4.2 ; python_version >= '3.9'\nrequests>=2\n"
        "-r requirements-dev.txt\n-e .\nhttps://example.com/x.whl\n")
    (tmp_path / "requirements-dev.txt").write_text("pytest==8.0.0 \\\n    --hash=sha256:abc\n")
    (tmp_path / "uv.lock").write_text(
        'version = 1\n[[package]]\nname = "demo"\nversion = "0.1.0"\nsource = { editable = "." }\n'
        '[[package]]\nname = "requests"\nversion = "2.32.3"\nsource = { registry = "https://pypi.org/simple" }\n')
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\ndependencies = ["pyyaml==6.0.2", "click"]\n')
    (tmp_path / "card.yml").write_text(CARD)
    (tmp_path / "metrics.json").write_text(json.dumps({"metrics": {"f1": 0.91, "auc": {"value": 0.97,
                                                                                       "slice": "test"}}}))
    (tmp_path / "verdict.json").write_text(json.dumps({
        "verdict": "pass", "policy": {"path": "policies/default.yml", "sha256": "ab" * 32}, "inputs": [],
        "violations": [], "counts": {"high": 0},
        "tools": [{"stage": "model-scan", "name": "modelscan", "version": "0.8.8", "status": "ok"}]}))
    return tmp_path


def _sbom(project: Path) -> dict[str, object]:
    out = project / "out" / "sbom.cdx.json"
    rc = cli.main(["sbom", str(project), "--model", str(project / "model"), "--dataset", str(project / "data"),
                   "--model-card", str(project / "card.yml"), "--metrics", str(project / "metrics.json"),
                   "--verdict", str(project / "verdict.json"), "--out", str(out),
                   "--digest-cache", str(project / "out" / "digests.json")])
    assert rc == 0
    return dict(json.loads(out.read_text()))


def test_sbom_validates_against_cyclonedx_1_6(project: Path) -> None:
    doc = _sbom(project)
    assert doc["specVersion"] == "1.6"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc)) is None


def test_model_component_has_per_file_hashes_and_card(project: Path) -> None:
    doc = _sbom(project)
    model = next(c for c in doc["components"] if c["type"] == "machine-learning-model")  # type: ignore[attr-defined]
    files = {c["name"]: c["hashes"][0]["content"] for c in model["components"]}
    assert files == {"weights.safetensors": hashlib.sha256(b"\x00" * 1024).hexdigest(),
                     "tokenizer/vocab.txt": hashlib.sha256(b"a\nb\n").hexdigest()}
    card = model["modelCard"]
    assert model["version"] == "1.2.0"
    assert card["modelParameters"]["task"] == "classification"
    assert card["modelParameters"]["datasets"] == [{"type": "dataset", "name": "data/train.csv"}, {"ref": "data:data"}]
    metrics = {m["type"]: m for m in card["quantitativeAnalysis"]["performanceMetrics"]}
    assert metrics["accuracy"]["value"] == "0.95" and metrics["f1"]["value"] == "0.91"
    assert metrics["auc"]["slice"] == "test"
    assert card["considerations"]["fairnessAssessments"][0]["groupAtRisk"] == "rare species"


def test_datasets_dependencies_tools_and_verdict(project: Path) -> None:
    doc = _sbom(project)
    comps = {c["name"]: c for c in doc["components"]}  # type: ignore[attr-defined]
    assert comps["data"]["type"] == "data"
    assert comps["data"]["components"][0]["hashes"][0]["alg"] == "SHA-256"
    purls = {c["purl"] for c in comps.values() if "purl" in c}
    assert {"pkg:pypi/numpy@1.26.4", "pkg:pypi/scikit-learn@1.4.2", "pkg:pypi/requests@2.32.3",
            "pkg:pypi/pytest@8.0.0", "pkg:pypi/pyyaml@6.0.2", "pkg:pypi/click"} <= purls
    assert "demo" not in comps  # the project itself is not its own dependency
    meta = doc["metadata"]
    tools = {t["name"]: t.get("version") for t in meta["tools"]["components"]}  # type: ignore[index]
    assert tools["modelscan"] == "0.8.8" and "mlsec-actions" in tools
    props = {p["name"]: p["value"] for p in meta["properties"]}  # type: ignore[index]
    assert props["mlsec:gate:verdict"] == "pass"
    assert props["mlsec:gate:policy:sha256"] == "ab" * 32


def test_sbom_reuses_the_digest_cache(project: Path) -> None:
    _sbom(project)
    cache = DigestCache(project / "out" / "digests.json")
    cache.tree(project / "model")
    assert cache.hashed == 0


def test_invalid_bom_is_not_written(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A metric value the schema forbids (an object where a string must be) must stop the write.
    monkeypatch.setattr(modelcard, "load_metrics", lambda path: [{"type": "f1", "value": {"bad": 1}}])
    out = project / "bad.cdx.json"
    rc = cli.main(["sbom", str(project), "--model", str(project / "model"), "--metrics",
                   str(project / "metrics.json"), "--out", str(out), "--digest-cache", str(project / "d.json")])
    assert rc == 1
    assert not out.exists()


def test_bad_model_card_is_an_input_error(project: Path) -> None:
    (project / "card.yml").write_text("approach: guessing\n")
    rc = cli.main(["sbom", str(project), "--model", str(project / "model"), "--model-card",
                   str(project / "card.yml"), "--out", str(project / "x.json"),
                   "--digest-cache", str(project / "d.json")])
    assert rc == 2


def test_poetry_lock_and_poetry_pyproject(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text('[[package]]\nname = "Torch"\nversion = "2.3.0"\n')
    (tmp_path / "pyproject.toml").write_text(
        '[tool.poetry.dependencies]\npython = "^3.11"\ntorch = "^2.3"\npandas = "2.2.2"\n')
    deps = {d.name: d for d in depfiles.collect(tmp_path)}
    assert deps["torch"].version == "2.3.0" and deps["torch"].source == "poetry.lock"
    assert deps["pandas"].purl == "pkg:pypi/pandas@2.2.2"
    assert "python" not in deps


def test_requirements_include_cannot_leave_the_project(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "outside.txt").write_text("evil==1.0\n")
    (tmp_path / "p" / "requirements.txt").write_text("-r ../outside.txt\nok==1.0\n")
    assert [d.name for d in depfiles.collect(tmp_path / "p")] == ["ok"]


def test_a_fifo_requirements_file_is_noted_not_read(tmp_path: Path) -> None:
    """A FIFO named like a requirements file would block a read forever: it is skipped with a note."""
    os.mkfifo(tmp_path / "requirements-dev.txt")
    (tmp_path / "requirements.txt").write_text("ok==1.0\n-r requirements-dev.txt\n")
    notes: list[str] = []
    assert [d.name for d in depfiles.collect(tmp_path, notes)] == ["ok"]
    assert notes == [f"{tmp_path / 'requirements-dev.txt'}: not a regular file (a link, FIFO or folder), "
                     "dependencies not read"]
    rc, doc = _run_sbom(tmp_path)
    assert rc == 0
    assert {"name": "mlsec:sbom:not-read", "value": notes[0]} in doc["metadata"]["properties"]


def test_dependency_files_are_never_read_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "p" / "sub").mkdir(parents=True)
    (tmp_path / "p" / "sub" / "real.txt").write_text("inlink==1.0\n")
    (tmp_path / "p" / "linked").symlink_to(tmp_path / "p" / "sub")
    (tmp_path / "p" / "requirements-link.txt").symlink_to(tmp_path / "p" / "sub" / "real.txt")
    (tmp_path / "p" / "requirements-loop.txt").symlink_to(tmp_path / "p" / "requirements-loop.txt")
    (tmp_path / "p" / "requirements.txt").write_text("-r linked/real.txt\n-r requirements-loop.txt\nok==1.0\n")
    notes: list[str] = []
    assert [d.name for d in depfiles.collect(tmp_path / "p", notes)] == ["ok"]
    assert sorted(n.split(":")[0] for n in notes) == [str(tmp_path / "p" / "requirements-link.txt"),
                                                     str(tmp_path / "p" / "requirements-loop.txt")]


def test_a_symlink_loop_in_the_tree_is_noted_not_followed(tmp_path: Path) -> None:
    (tmp_path / "p" / "links").mkdir(parents=True)
    (tmp_path / "p" / "links" / "a").symlink_to("b")
    (tmp_path / "p" / "links" / "b").symlink_to("a")
    (tmp_path / "p" / "links" / "m.pkl").symlink_to(tmp_path / "p" / "m.pkl")
    (tmp_path / "p" / "m.pkl").write_bytes(b"\x80\x04K\x01.")
    rc, doc = _run_sbom(tmp_path / "p")
    assert rc == 0
    assert list(_by_type(doc, "machine-learning-model")) == ["m.pkl"]
    notes = {p["value"] for p in doc["metadata"]["properties"] if p["name"] == "mlsec:sbom:not-searched"}
    assert notes == {f"{tmp_path / 'p' / 'links' / n}: a symbolic link, not followed" for n in ("a", "b", "m.pkl")}


def _run_sbom(root: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    out = root.parent / f"{root.name}-sbom.cdx.json"
    rc = cli.main(["sbom", str(root), "--out", str(out), "--digest-cache", str(root.parent / "digests.json"), *extra])
    return rc, (json.loads(out.read_text()) if rc == 0 else {})


def _by_type(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    return {c["name"]: c for c in doc.get("components", []) if c["type"] == kind}


def test_the_examples_model_is_found_by_content_without_model(example_project: Path) -> None:
    rc, doc = _run_sbom(example_project, "--model-card", str(example_project / "model-card.yml"))
    assert rc == 0
    models = _by_type(doc, "machine-learning-model")
    assert list(models) == ["models/linear.safetensors"]
    model = models["models/linear.safetensors"]
    digest = hashlib.sha256((example_project / "models" / "linear.safetensors").read_bytes()).hexdigest()
    assert model["hashes"] == [{"alg": "SHA-256", "content": digest}]
    assert {"name": "mlsec:found-by", "value": "content"} in model["properties"]
    assert model["version"] == "0.1.0"
    assert model["modelCard"]["considerations"]["technicalLimitations"][0] == "a toy: two parameters"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc)) is None


def test_discovery_trusts_bytes_not_names(tmp_path: Path) -> None:
    import pickle
    import struct

    root = tmp_path / "p"
    (root / "src").mkdir(parents=True)
    (root / "src" / "weights.txt").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))  # a pickle named .txt
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    (root / "model.bin").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    (root / "table.dat").write_bytes(b"PAR1" + b"\0" * 32 + b"PAR1")
    (root / "arr").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }")
    (root / "notes.safetensors").write_text("just text, whatever the name says\n")
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "lib" / "m.pkl").write_bytes(pickle.dumps(1, protocol=4))
    (tmp_path / "outside.pkl").write_bytes(pickle.dumps(1, protocol=4))
    (root / "link.pkl").symlink_to(tmp_path / "outside.pkl")
    os.mkfifo(root / "fifo.pkl")
    rc, doc = _run_sbom(root)
    assert rc == 0
    assert sorted(_by_type(doc, "machine-learning-model")) == ["model.bin", "src/weights.txt"]
    assert sorted(_by_type(doc, "data")) == ["arr", "table.dat"]
    rc, doc = _run_sbom(root, "--no-discover")
    assert rc == 0
    assert not _by_type(doc, "machine-learning-model")


def test_an_explicit_model_folder_is_not_listed_twice(tmp_path: Path) -> None:
    import pickle

    root = tmp_path / "p"
    (root / "m").mkdir(parents=True)
    (root / "m" / "a.pkl").write_bytes(pickle.dumps(1, protocol=4))
    (root / "other.pkl").write_bytes(pickle.dumps(2, protocol=4))
    rc, doc = _run_sbom(root, "--model", str(root / "m"))
    assert rc == 0
    models = _by_type(doc, "machine-learning-model")
    assert sorted(models) == ["m", "other.pkl"]
    assert {"name": "mlsec:found-by", "value": "--model"} in models["m"]["properties"]


@pytest.mark.parametrize(("card", "problem"), [
    ("task: regression\ncolour: blue\n", ":2: colour: unknown key"),
    ("task: [a, b]\n", ":1: task: ['a', 'b'] is not of type 'string'"),
    ("considerations:\n  users:\n    - ok\n    - a: b\n",
     ":4: considerations.users[1]: a mapping where text is expected"),
    ("considerations:\n  mood: sunny\n", ":2: considerations.mood: unknown key"),
    ("datasets:\n  - {url: https://x}\n", ":2: datasets[0]: {'url': 'https://x'} is not one of the allowed shapes"),
    ("approach: guessing\n", ":1: approach: 'guessing' is not one of"),
    ("a: &x [1]\nb: *x\n", ":1: (top): YAML aliases are not allowed"),
    ("task: a\ntask: b\n", ":2: task: duplicate key"),
    ("task: [\n", "not valid YAML"),
    ("users:\n" + "".join("  " * i + "- \n" for i in range(1, 70)), ":65: (top): nested deeper than 64 levels"),
])
def test_model_card_schema_errors_name_the_line(tmp_path: Path, card: str, problem: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p").mkdir()
    path = tmp_path / "card.yml"
    path.write_text(card)
    rc, _ = _run_sbom(tmp_path / "p", "--model-card", str(path))
    assert rc == 2
    err = capsys.readouterr().err
    assert f"{path}{problem}" in err or (problem == "not valid YAML" and problem in err), err


@pytest.mark.parametrize("bomb", ["[" * 100_000, "{a: " * 50_000, "a: &x [1]\n" + "b: *x\n" * 10_000])
def test_model_card_bombs_never_reach_pyyaml_s_unbounded_scanner(tmp_path: Path, bomb: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """PyYAML's scanner and composer are quadratic in flow nesting (200 KB of `[` takes minutes): the
    bounded `yaml_lines.compose` must refuse the card before either ever sees it."""
    import yaml

    def unbounded(*_: object, **__: object) -> None:
        raise AssertionError("PyYAML's unbounded scan/compose was called on a model card")

    monkeypatch.setattr(yaml, "scan", unbounded)
    monkeypatch.setattr(yaml, "compose", unbounded)
    path = tmp_path / "card.yml"
    path.write_text(bomb)
    with pytest.raises(modelcard.ModelCardError) as refused:
        modelcard.load_card(path)
    assert refused.value.diagnostics().startswith(f"{path}:")
    assert "\n" not in refused.value.diagnostics()


def test_model_card_structures_and_versions_are_kept(tmp_path: Path) -> None:
    import pickle

    root = tmp_path / "p"
    root.mkdir()
    (root / "m.pkl").write_bytes(pickle.dumps(1, protocol=4))
    card = tmp_path / "card.yml"
    for written, kept in (("1.10", "1.10"), ("1.0", "1.0"), ("2", "2"), ("'3.0.1'", "3.0.1")):
        card.write_text(f"version: {written}\ndatasets:\n  - name: iris\n    url: https://example.com/iris.csv\n"
                        "    classification: public\n  - plain-name\n"
                        "inputs: [{format: tabular}]\nmetrics: [{type: f1, value: 0.9, slice: test}]\n")
        rc, doc = _run_sbom(root, "--model-card", str(card))
        assert rc == 0
        model = _by_type(doc, "machine-learning-model")["m.pkl"]
        assert model["version"] == kept
        params = model["modelCard"]["modelParameters"]
        assert params["datasets"] == [
            {"type": "dataset", "name": "iris", "contents": {"url": "https://example.com/iris.csv"},
             "classification": "public"},
            {"type": "dataset", "name": "plain-name"}]
        assert params["inputs"] == [{"format": "tabular"}]
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc)) is None


def test_a_fifo_model_card_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p").mkdir()
    os.mkfifo(tmp_path / "card.yml")
    rc, _ = _run_sbom(tmp_path / "p", "--model-card", str(tmp_path / "card.yml"))
    assert rc == 2
    assert "model card is not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("seed", range(2))
def test_mangled_model_cards_fail_with_one_line_or_load(tmp_path: Path, seed: int) -> None:
    """Seeded mutation fuzzing (a property test without a library): YAML punctuation, aliases, tags, odd
    scalars spliced into a valid card either load and build or raise a one-line input error."""
    import random

    from mlsec_actions.errors import InputError

    rng = random.Random(seed)  # noqa: S311 - a reproducible fuzzer, not a secret
    pieces = [":", "- ", "[", "]", "{", "}", "&a ", "*a", "!!python/object:os.system ", "1.10", "~", "'", '"',
              "\n  ", "\n", "#", "? ", "\t", "0x1F", "2026-13-01", "yes", ".inf", "<<: ", "|", ">"]
    path = tmp_path / "card.yml"
    outcomes = {"built": 0, "refused": 0}
    for _ in range(250):
        text = CARD
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text))
            text = (text[:at] + rng.choice(pieces) + text[at:] if rng.random() < 0.5
                    else text[:at] + text[at + rng.randint(1, 8):])
        path.write_text(text)
        try:
            card = modelcard.load_card(path)
        except InputError as e:
            assert "\n" not in e.diagnostics() and str(path) in e.diagnostics()
            outcomes["refused"] += 1
            continue
        json.dumps(modelcard.build(card, [], {}, path))
        outcomes["built"] += 1
    assert outcomes["built"] > 10 and outcomes["refused"] > 100, outcomes


def _inventory_sarif(tmp_path: Path, complete: bool = True) -> Path:
    from mlsec_actions.findings import StageResult, ToolRun, ToolStatus
    from mlsec_actions.licenses import PackageLicense
    from mlsec_actions.sarif import write_sarif
    from mlsec_actions.stages.code_scan import _license_inventory

    pkgs = (PackageLicense("pip", "NumPy", "1.26.4", ("BSD-3-Clause",), "requirements.txt"),
            PackageLicense("pip", "requests", "2.32.3", ("Apache 2.0",), "requirements.txt"),
            PackageLicense("npm", "dual", "1.0.0", ("MIT OR GPL-3.0-only",), "web/package-lock.json"),
            PackageLicense("npm", "two", "2.0.0", ("MIT", "(Apache-2.0 OR BSD-2-Clause)"), "web/package-lock.json"),
            PackageLicense("npm", "none", "0.1.0", (), "web/package-lock.json"),
            PackageLicense("pip", "pytest", "7.0.0", ("MIT",), "sub/requirements.txt"))
    runs = (ToolRun("trivy", ToolStatus.OK if complete else ToolStatus.FAILED, version="0.76.0", licenses=pkgs),)
    out = tmp_path / "results" / "code-scan.sarif"
    write_sarif(StageResult("code-scan", (), runs, extra=_license_inventory(runs)), out)
    return out


def test_licences_from_code_scan_sarif_are_in_the_bom(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "lic.cdx.json"
    sarif = _inventory_sarif(tmp_path)
    assert cli.main(["sbom", str(project), "--no-discover", "--licenses-from", str(sarif), "--out", str(out),
                     "--digest-cache", str(tmp_path / "dc.json")]) == 0
    doc = json.loads(out.read_text())
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc)) is None
    assert {"name": "mlsec:sbom:licenses-from", "value": str(sarif)} in doc["metadata"]["properties"]
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    assert by_ref["pypi:numpy"]["licenses"] == [{"license": {"id": "BSD-3-Clause"}}]
    assert by_ref["pypi:requests"]["licenses"] == [{"license": {"name": "Apache 2.0"}}]  # not an SPDX id
    assert by_ref["npm:dual@1.0.0"]["licenses"] == [{"expression": "MIT OR GPL-3.0-only"}]
    assert by_ref["npm:dual@1.0.0"]["purl"] == "pkg:npm/dual@1.0.0"
    assert by_ref["npm:two@2.0.0"]["licenses"] == [{"expression": "MIT AND ((Apache-2.0 OR BSD-2-Clause))"}]
    assert "licenses" not in by_ref["npm:none@0.1.0"]
    # Another version than the one declared: not its licence; a component of its own.
    assert "licenses" not in by_ref["pypi:pytest"]
    assert by_ref["pypi:pytest@7.0.0"]["licenses"] == [{"license": {"id": "MIT"}}]


def test_incomplete_or_missing_licence_inventories(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "lic.cdx.json"
    sarif = _inventory_sarif(tmp_path, complete=False)
    assert cli.main(["sbom", str(project), "--no-discover", "--licenses-from", str(sarif), "--out", str(out),
                     "--digest-cache", str(tmp_path / "dc.json")]) == 0
    notes = [p["value"] for p in json.loads(out.read_text())["metadata"]["properties"]
             if p["name"] == "mlsec:sbom:not-read"]
    assert any("licence inventory is incomplete" in n for n in notes)
    (tmp_path / "other.sarif.bad").write_text(json.dumps({"version": "2.1.0", "runs": [{"properties": {}}]}))
    assert cli.main(["sbom", str(project), "--licenses-from", str(tmp_path / "other.sarif.bad"),
                     "--out", str(out)]) == 2
