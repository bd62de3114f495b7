"""`mlsec model-scan` end to end on the in-code corpus, with the real modelscan beside it."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions.cli import main
from mlsec_actions.tools import modelscan
from tests import model_corpus as corpus


def _results(sarif: Path) -> list[dict[str, Any]]:
    return list(json.loads(sarif.read_text())["runs"][0]["results"])


def _by_file(results: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in results:
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        out.setdefault(uri, set()).add(r["ruleId"])
    return out


@pytest.fixture
def corpus_tree(tmp_path: Path) -> tuple[Path, Path, list[corpus.Case]]:
    root = tmp_path / "models"
    canary = tmp_path / "CANARY"
    cases = corpus.cases(canary)
    corpus.write(root, cases)
    return root, canary, cases


@pytest.mark.integration
def test_corpus_full_recall_no_false_positives(corpus_tree: tuple[Path, Path, list[corpus.Case]],
                                               tmp_path: Path) -> None:
    root, canary, cases = corpus_tree
    sarif = tmp_path / "out" / "model-scan.sarif"
    assert main(["model-scan", str(root), "--sarif", str(sarif), "--source-root", str(root)]) == 0
    found = _by_file(_results(sarif))
    for case in cases:
        if case.malicious:
            assert case.expect in found.get(case.name, set()), case.name
        else:
            assert case.name not in found, (case.name, found.get(case.name))
    assert not canary.exists()
    run = json.loads(sarif.read_text())["runs"][0]
    assert all(inv["executionSuccessful"] for inv in run["invocations"])


@pytest.mark.integration
def test_modelscan_runs_and_is_deduplicated(tmp_path: Path) -> None:
    (tmp_path / "evil.pkl").write_bytes(corpus.call("os", "system", "touch /nonexistent/x"))
    theirs, run = modelscan.scan([("evil.pkl", tmp_path / "evil.pkl")], timeout=120)
    assert run.status.value == "ok" and run.version == "0.8.8"
    assert [(f.location.path, dict(f.properties)["global"]) for f in theirs] == [("evil.pkl", "os.system")]
    sarif = tmp_path / "out.sarif"
    assert main(["model-scan", str(tmp_path / "evil.pkl"), "--sarif", str(sarif), "--source-root", str(tmp_path)]) == 0
    assert [r["ruleId"] for r in _results(sarif)] == ["pickle/dangerous-global"]


def test_modelscan_failure_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "fake-modelscan"
    fake.write_text(f"#!{sys.executable}\nimport sys\nprint('boom', file=sys.stderr)\nsys.exit(7)\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MLSEC_MODELSCAN_BIN", str(fake))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "evil.pkl").write_bytes(corpus.call("os", "system", "x"))
    sarif = tmp_path / "out.sarif"
    assert main(["model-scan", str(tmp_path / "m"), "--sarif", str(sarif), "--source-root", str(tmp_path)]) == 1
    run = json.loads(sarif.read_text())["runs"][0]
    assert [r["ruleId"] for r in run["results"]] == ["pickle/dangerous-global"]  # findings kept
    assert not all(inv["executionSuccessful"] for inv in run["invocations"])


def test_bad_inputs_are_findings_not_crashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "empty.pt").write_bytes(b"")
    (root / "truncated.pkl").write_bytes(corpus.call("os", "system", "x")[:9])
    (root / "truncated.zip").write_bytes(corpus.torch_zip("a", b"\x80\x02}.")[:50])
    (root / "locked.bin").write_bytes(b"\x80\x02}.")
    (root / "escape").symlink_to("/etc/passwd")
    (root / "inside").symlink_to(root / "empty.pt")
    real_open = Path.open

    def deny(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "locked.bin":
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    sarif = tmp_path / "bad.sarif"
    assert main(["model-scan", str(root), "--sarif", str(sarif), "--source-root", str(root), "--no-modelscan"]) == 0
    found = _by_file(_results(sarif))
    # An empty file holds nothing a loader could run: not a finding (issue 8: empty __init__.py files).
    assert found == {"truncated.pkl": {"pickle/malformed"},
                     "truncated.zip": {"archive/malformed"}, "locked.bin": {"model/unreadable"},
                     "escape": {"archive/symlink-escape"}}


def test_sparse_10gb_safetensors_reads_only_the_header(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2684354560], "data_offsets": [0, 10737418240]}}).encode()
    path = tmp_path / "big.safetensors"
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + 10737418240)
    assert path.stat().st_blocks * 512 < 1024 * 1024  # sparse: nothing to read but the header
    sarif = tmp_path / "st.sarif"
    assert main(["model-scan", str(path), "--sarif", str(sarif), "--no-modelscan"]) == 0
    assert _results(sarif) == []


def test_merge_keeps_ours_for_the_same_global() -> None:
    from mlsec_actions.analyzers.base import Blob
    from mlsec_actions.analyzers.pickle_scan import analyze

    data = corpus.call("os", "system", "x")
    ours = analyze(Blob("a.pkl", None, len(data), lambda: __import__("io").BytesIO(data)))
    names = {"000000.pkl": "a.pkl", "000001.pt": "sub/b.pt"}
    theirs = [modelscan._issue({"source": "000000.pkl", "module": "os", "operator": "system",
                                "severity": "CRITICAL"}, names, "/farm"),
              modelscan._issue({"source": "000001.pt:archive/data.pkl", "module": "os", "operator": "popen",
                                "severity": "HIGH"}, names, "/farm")]
    merged = modelscan.merge(ours, theirs)
    assert [f.rule.id for f in merged] == ["pickle/dangerous-global", "modelscan/unsafe-operator"]
    assert merged[1].location.path == "sub/b.pt" and merged[1].location.logical == "archive/data.pkl::os.popen"


def test_other_formats_are_dispatched_by_content(tmp_path: Path) -> None:
    """The formats helper's analyzers, reached through detection (names are misleading on purpose)."""
    from tests import model_corpus_formats as fc

    root = tmp_path / "repo"
    files = {
        "bad/weights.bin": fc.keras_h5(fc.keras_sequential([fc.keras_lambda_layer_v2()])),
        "bad/model.zip": corpus.zip_bytes({"config.json": json.dumps(
            fc.keras_sequential([fc.keras_lambda_layer_v3()])).encode(), "metadata.json": b"{}"}),
        "bad/model.dat": fc.onnx_model(nodes=[fc.onnx_node("MatMul")],
                                       initializers=[fc.onnx_tensor("w", location="/etc/passwd")]),
        "bad/chat.bin": fc.gguf_llm(fc.LIPSUM_TEMPLATE),
        "good/weights.bin": fc.keras_h5(fc.keras_sequential()),
        "good/model.zip": corpus.zip_bytes({"config.json": json.dumps(fc.keras_sequential()).encode(),
                                            "metadata.json": b"{}"}),
        "good/model.dat": fc.onnx_plain(),
        "good/chat.bin": fc.gguf_llm(fc.CHATML_TEMPLATE),
        "good/model.safetensors": fc.safetensors_valid(),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    sarif = tmp_path / "formats.sarif"
    assert main(["model-scan", str(root), "--sarif", str(sarif), "--source-root", str(root), "--no-modelscan"]) == 0
    found = _by_file(_results(sarif))
    assert {n for n in found if n.startswith("good/")} == set()
    assert "keras/lambda-layer" in found["bad/weights.bin"]
    assert "keras/lambda-layer" in found["bad/model.zip"]
    assert any(r.startswith("onnx/") for r in found["bad/model.dat"])
    assert any(r.startswith("gguf/") for r in found["bad/chat.bin"])


def test_hf_remote_code_folder_is_checked(tmp_path: Path) -> None:
    from tests import model_corpus_formats as fc

    root = tmp_path / "repo"
    fc.hf_folder(root / "evil-model", remote_code=True, malicious=True)
    fc.hf_folder(root / "plain-model", remote_code=False)
    sarif = tmp_path / "hf.sarif"
    assert main(["model-scan", str(root), "--sarif", str(sarif), "--source-root", str(root), "--no-modelscan"]) == 0
    found = _by_file(_results(sarif))
    assert found and all(n.startswith("evil-model/") for n in found)
    assert not (root / "evil-model" / "EXECUTED").exists()
