"""modelscan through its adapter: only regular files inside the root, hostile names kept out of its
output, honest status on per-file errors, bounded on huge archives (issue 8 seen 4, issue 9 seen 6, 8)."""

from __future__ import annotations

import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import pytest

from mlsec_actions.cli import main
from mlsec_actions.findings import GapKind, ToolRun, ToolStatus
from mlsec_actions.stages.model_scan import walk
from mlsec_actions.tools import modelscan
from tests import model_corpus as corpus

OBJECT_NPY = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"


def _files(root: Path) -> list[tuple[str, Path]]:
    return [(e.rel, e.path) for e in walk(root, root) if e.path is not None]


def _sarif_run(sarif: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(sarif.read_text())["runs"][0]  # type: ignore[no-any-return]


def test_supported_extensions_match_modelscans_own_settings() -> None:
    from modelscan.settings import DEFAULT_SETTINGS

    theirs = set(DEFAULT_SETTINGS["supported_zip_extensions"])
    for scanner in DEFAULT_SETTINGS["scanners"].values():
        theirs |= set(scanner.get("supported_extensions", []))
    assert theirs == modelscan.SUPPORTED


@pytest.mark.integration
def test_modelscan_reads_npy_with_the_pinned_numpy(tmp_path: Path) -> None:
    """modelscan 0.8.8 fails on every .npy with numpy 2: this fails when the installed pair disagrees."""
    (tmp_path / "evil.npy").write_bytes(corpus.npy_bytes(OBJECT_NPY, corpus.call("os", "system", "x")))
    (tmp_path / "plain.npy").write_bytes(corpus.npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                                                          b"\x00" * 8))
    theirs, run = modelscan.scan(_files(tmp_path), timeout=120)
    assert run.status is ToolStatus.OK and run.gaps == (), run
    assert [(f.location.path, dict(f.properties)["global"]) for f in theirs] == [("evil.npy", "os.system")]


@pytest.mark.integration
def test_symlink_out_of_the_root_is_never_given_to_modelscan(tmp_path: Path) -> None:
    outside = tmp_path / "outside.pkl"
    outside.write_bytes(corpus.call("os", "system", "SHADOW-BYTES-OUTSIDE"))
    root = tmp_path / "repo"
    root.mkdir()
    (root / "model.pkl").symlink_to(outside)
    (root / "shadow.pkl").symlink_to("/etc/shadow")
    theirs, run = modelscan.scan(_files(root), timeout=120)
    assert theirs == [] and run.status is ToolStatus.SKIPPED and run.gaps == ()
    sarif = tmp_path / "link.sarif"
    assert main(["model-scan", str(root), "--sarif", str(sarif), "--source-root", str(root)]) == 0
    text = sarif.read_text()
    assert "SHADOW-BYTES" not in text and "modelscan/unsafe-operator" not in text
    assert {r["ruleId"] for r in _sarif_run(sarif)["results"]} == {"archive/symlink-escape"}


@pytest.mark.integration
def test_hostile_file_name_never_reaches_the_log_as_a_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    hostile = "sub/p\n::error title=pwned::X\n.pkl"  # in a folder: a first URI segment with ':' is sarif.py's
    (root / hostile).write_bytes(b"\x80\x02not a pickle at all")
    (root / "ok.pkl").write_bytes(corpus.call("os", "system", "x"))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    sarif = tmp_path / "names.sarif"
    main(["model-scan", str(root), "--sarif", str(sarif), "--source-root", str(root)])
    out = capsys.readouterr()
    lines = (out.out + out.err).splitlines() + (tmp_path / "summary.md").read_text().splitlines()
    assert not [ln for ln in lines if ln.lstrip().startswith("::error title=pwned")]
    gaps = _sarif_run(sarif)["properties"]["mlsec-coverage"]["gaps"]
    assert [(g["tool"], g["kind"], g["path"]) for g in gaps] == [("modelscan", "tool-error", hostile)]


def _report_run(errors: list[dict[str, str]], names: dict[str, str]) -> ToolRun:
    report = {"summary": {"modelscan_version": "0.8.8"}, "issues": [], "errors": errors}
    return modelscan._read(report, names, "/farm", ToolRun("modelscan", ToolStatus.OK))[1]


def test_per_file_error_is_a_tool_error_gap_on_an_ok_run() -> None:
    names = {"000000.npy": "a.npy", "000001.pkl": "b.pkl"}
    run = _report_run([{"category": "MODEL_SCAN", "description": "invalid load key, 'S'.", "source": "000000.npy"}],
                      names)
    assert run.status is ToolStatus.OK
    assert [(g.kind, g.path) for g in run.gaps] == [(GapKind.TOOL_ERROR, "a.npy")]
    assert "'S'" not in run.gaps[0].detail  # a byte of the file is not repeated
    assert run.notes and "1 file" in run.notes[0]


def test_modelscan_failing_on_every_file_is_failed() -> None:
    names = {"000000.npy": "a.npy", "000001.npy": "b.npy"}
    broken = "module 'numpy.lib.format' has no attribute '_check_version'"
    run = _report_run([{"description": broken, "source": n} for n in names], names)
    assert run.status is ToolStatus.FAILED and "all 2 files" in run.message
    assert {g.path for g in run.gaps} == {"a.npy", "b.npy"}


def test_python_start_up_hooks_do_not_reach_modelscan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = tmp_path / "hooks"
    (hooks / "click").mkdir(parents=True)
    canary = tmp_path / "CANARY"
    (hooks / "click" / "__init__.py").write_text(f"open({str(canary)!r}, 'w').write('ran')\n")
    (hooks / "sitecustomize.py").write_text(f"open({str(canary)!r}, 'w').write('ran')\n")
    monkeypatch.setenv("PYTHONPATH", str(hooks))
    monkeypatch.delenv("MLSEC_MODELSCAN_BIN", raising=False)
    (tmp_path / "m.pkl").write_bytes(corpus.call("os", "system", "x"))
    theirs, run = modelscan.scan([("m.pkl", tmp_path / "m.pkl")], timeout=120)
    assert run.status is ToolStatus.OK and len(theirs) == 1
    assert not canary.exists()
    assert os.environ["PYTHONPATH"] == str(hooks)


def _many_entries_zip(path: Path, entries: int) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(entries):
            info = zipfile.ZipInfo(f"d/{i}.pkl", date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, b"")
    path.write_bytes(buf.getvalue())


@pytest.mark.integration
def test_huge_zip_cannot_hang_the_stage(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    _many_entries_zip(root / "weights.zip", 200_000)
    started = time.monotonic()
    theirs, run = modelscan.scan(_files(root), timeout=600)
    assert theirs == []
    assert run.status is ToolStatus.SKIPPED and time.monotonic() - started < 5
    assert [(g.kind, g.path) for g in run.gaps] == [(GapKind.LIMIT_REACHED, "weights.zip")]
    sarif = tmp_path / "zip.sarif"
    assert main(["model-scan", str(root), "--sarif", str(sarif), "--source-root", str(root)]) == 0
    coverage = _sarif_run(sarif)["properties"]["mlsec-coverage"]["gaps"]
    want = {"tool": "modelscan", "kind": "limit-reached", "path": "weights.zip"}.items()
    assert any(want <= gap.items() for gap in coverage), coverage  # the in-house scan records its own gap too


def test_timeout_grows_with_the_input_and_is_capped() -> None:
    assert modelscan.budget(0, 600) == modelscan.BASE_SECONDS
    assert modelscan.budget(2 * 1024**3, 600) > 100
    assert modelscan.budget(100 * 1024**3, 600) == 600
    assert modelscan.budget(0, 3) == 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
