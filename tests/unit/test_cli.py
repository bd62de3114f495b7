from __future__ import annotations

from pathlib import Path

import pytest

from mlsec_actions import __version__, catalog, cli, outputs
from mlsec_actions.stages import PLANNED, STAGES


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_stages_lists_the_catalog_implemented_rows_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["stages"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == [s.id for s in catalog.CATALOG if s.implemented]
    assert [ln.split()[0] for ln in lines] == [s.id for s in STAGES if s.listed]
    assert all(catalog.by_id(ln.split()[0]).summary in ln for ln in lines)  # type: ignore[union-attr]
    assert cli.main(["stages", "--all"]) == 0
    every = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in every] == [s.id for s in catalog.CATALOG]
    assert sum("not built yet" in ln for ln in every) == len(PLANNED)


def test_registry_and_planned_are_disjoint() -> None:
    ids = [s.id for s in STAGES]
    assert len(ids) == len(set(ids))
    assert not set(ids) & set(PLANNED)


_LOADED = ("import sys; from mlsec_actions import cli; code = cli.main(sys.argv[1:]);"
           "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('mlsec_actions.stages.')))")


@pytest.mark.parametrize(("argv", "modules"), [
    (["--help"], []), (["stages"], []), (["--version"], []),
    (["gate", "--help"], ["base", "gate"]),
])
def test_a_command_imports_only_its_own_stage(argv: list[str], modules: list[str]) -> None:
    # A fresh interpreter: this test process has imported every stage already.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-I", "-c", _LOADED, *argv], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == repr(modules)
    if argv == ["--help"]:  # and the help still lists every sub-command, from the catalog
        assert all(s in done.stdout for s in ("code-scan", "model-scan", "run", "policy"))


def test_planned_stage_is_a_clear_error(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Every stage of the map is built now; a row added before its module stands in for the next one.
    planned = PLANNED[0] if PLANNED else "future-stage"
    monkeypatch.setattr(cli, "PLANNED", (*PLANNED, planned))
    assert cli.main([planned, "."]) == 2
    err = capsys.readouterr().err
    assert f"stage '{planned}' is not implemented yet" in err
    assert err.count("\n") == 1


def test_unknown_command_is_usage_error() -> None:
    assert cli.main(["no-such-stage"]) == 2


def test_missing_path_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert cli.main(["code-scan", str(missing), "--sarif", str(tmp_path / "x.sarif")]) == 2
    err = capsys.readouterr().err
    assert err == f"mlsec: error: {missing}: no such file or folder\n"
    assert not (tmp_path / "x.sarif").exists()


def test_config_file_errors_name_file_and_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "mlsec.yml"
    bad.write_text("code-scan:\n  no-such-option: 1\n")
    assert cli.main(["code-scan", str(tmp_path), "--config", str(bad)]) == 2
    assert f"{bad}:2: code-scan.no-such-option: unknown option" in capsys.readouterr().err
    bad.write_text("code-scan: [unclosed\n")
    assert cli.main(["code-scan", str(tmp_path), "--config", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_env_and_config_defaults_with_cli_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake_execute(args):  # type: ignore[no-untyped-def]
        seen.update(vars(args))
        return 0

    # Stages are frozen: swap a copy with a recording `execute` into the registry the CLI reads.
    patched = tuple(type(s)(s.id, s.summary, s.configure, fake_execute) if s.id == "code-scan" else s for s in STAGES)
    monkeypatch.setattr("mlsec_actions.cli.by_id", lambda sid: next((s for s in patched if s.id == sid), None))
    config = tmp_path / "c.yml"
    config.write_text("code-scan:\n  vuln-db: skip\n  timeout: 5\n")
    monkeypatch.setenv("MLSEC_TIMEOUT", "7")
    monkeypatch.setenv("MLSEC_PATHS", "a\nb\n")
    assert cli.main(["code-scan", "--config", str(config)]) == 0
    assert seen["vuln_db"] == "skip"      # from the config file
    assert seen["timeout"] == 7.0          # env beats config
    assert seen["paths"] == ["a", "b"]     # newline-separated list from env
    assert cli.main(["code-scan", "--config", str(config), "--timeout", "9", "x"]) == 0
    assert seen["timeout"] == 9.0 and seen["paths"] == ["x"]  # command line beats both


def test_bad_env_value_is_usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLSEC_TIMEOUT", "soon")
    assert cli.main(["code-scan", "."]) == 2
    assert capsys.readouterr().err == "mlsec: error: MLSEC_TIMEOUT: 'soon': not a number\n"


def test_env_list_values_get_the_option_type(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    action = parser.add_argument("--model", type=Path, action="append", default=[])
    assert cli._env_value(action, "a.pt\n\n models/b \n") == [Path("a.pt"), Path("models/b")]


# Issue 8, seen 8: options from the config file and the environment skipped validation.
@pytest.mark.parametrize(("doc", "error"), [
    ("# comment\ncode-scan:\n  vuln-db: skp\n",
     "mlsec.yml:3: code-scan.vuln-db: invalid choice 'skp' (choose from auto, download, skip)"),
    ("model-scan:\n  max-depth: -5\n", "mlsec.yml:2: model-scan.max-depth: '-5': must not be negative"),
    ("model-scan:\n  max-entries: 0\n", "mlsec.yml:2: model-scan.max-entries: '0': must be at least 1"),
    ("model-scan:\n  max-member-mb: 1.5\n", "mlsec.yml:2: model-scan.max-member-mb: '1.5': not a whole number"),
    ("code-scan:\n  timeout: .nan\n", "mlsec.yml:2: code-scan.timeout: 'nan': must be a finite number above 0"),
    ("model-scan:\n  no-modelscan: maybe\n", "mlsec.yml:2: model-scan.no-modelscan: expected true or false"),
    ("model-scan:\n  canary: {a: 1}\n", "mlsec.yml:2: model-scan.canary: expected a single value"),
    ("code-scann:\n  timeout: 3\n", "mlsec.yml:1: code-scann: not a stage id"),
    ("code-scan: 3\n", "mlsec.yml:1: 'code-scan' must be a mapping"),
    ("code-scan: {timeout: 1}\ncode-scan: {timeout: 2}\n", "mlsec.yml:2: code-scan: duplicate key"),
])
def test_config_values_are_checked_like_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str], doc: str,
                                                         error: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("mlsec.yml").write_text(doc)
    stage = next(ln.split(":")[0].strip() for ln in doc.splitlines() if not ln.startswith("#"))
    stage = stage if stage in ("code-scan", "model-scan") else "code-scan"
    assert cli.main([stage, ".", "--config", "mlsec.yml", "--sarif", "out.sarif"]) == 2
    err = capsys.readouterr().err
    assert error in err and err.count("\n") == 1, err
    assert not Path("out.sarif").exists()  # nothing ran


@pytest.mark.parametrize(("var", "value", "error"), [
    ("MLSEC_VULN_DB", "skp", "MLSEC_VULN_DB: invalid choice 'skp'"),
    ("MLSEC_MAX_DEPTH", "-5", "MLSEC_MAX_DEPTH: '-5': must not be negative"),
    ("MLSEC_TIMEOUT", "inf", "MLSEC_TIMEOUT: 'inf': must be a finite number above 0"),
    ("MLSEC_NO_MODELSCAN", "sometimes", "MLSEC_NO_MODELSCAN: expected true or false"),
])
def test_env_values_are_checked_like_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], var: str, value: str,
                                                      error: str) -> None:
    monkeypatch.setenv(var, value)
    stage = "code-scan" if var == "MLSEC_VULN_DB" else "model-scan"
    assert cli.main([stage, str(tmp_path), "--sarif", str(tmp_path / "o.sarif")]) == 2
    err = capsys.readouterr().err
    assert error in err and err.count("\n") == 1
    assert not (tmp_path / "o.sarif").exists()


@pytest.mark.parametrize("argv", [
    ["model-scan", ".", "--max-depth", "-5"],
    ["model-scan", ".", "--max-entries", "0"],
    ["code-scan", ".", "--timeout", "-1"],
    ["code-scan", ".", "--vuln-db", "skp\n::error title=x::y"],
])
def test_bad_command_line_values_are_one_sanitised_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mlsec: error: mlsec {argv[0]}: argument ") and err.count("\n") == 1
    assert "::error" not in err


def test_config_that_is_not_a_regular_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)
    assert cli.main(["code-scan", str(tmp_path), "--config", str(fifo)]) == 2  # would hang if opened blocking
    assert "not a regular file" in capsys.readouterr().err


# Issue 8, seen 7: output paths gave tracebacks and left *.tmp behind.
@pytest.mark.parametrize(("make", "option", "problem"), [
    (lambda t: "/proc/mlsec.sarif", "--sarif", "is under /proc"),
    (lambda t: (t / "adir").mkdir() or str(t / "adir"), "--sarif", "is a folder"),
    (lambda t: (t / "afile").write_text("x") and str(t / "afile" / "v.sarif"), "--sarif", "is not a folder"),
    (lambda t: str(t / ("n" * 300 + ".sarif")), "--sarif", "longer than 255 bytes"),
])
def test_bad_output_path_is_exit_2_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   make, option: str, problem: str) -> None:  # type: ignore[no-untyped-def]
    target = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli.main(["model-scan", str(tmp_path), option, target, "--no-modelscan"]) == 2
    err = capsys.readouterr().err
    assert problem in err and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("argv", [
    ["gate", "--sarif-dir", "{t}", "--verdict", "{t}/afile/v.json"],
    ["gate", "--sarif-dir", "{t}", "--summary", "{t}/adir"],
    ["sbom", "{t}", "--out", "{t}/adir"],
    ["run", "{t}", "--out", "{t}/afile"],
    ["sign", "--backend", "key", "--attestation-out", "/sys/x.json", "x"],
])
def test_bad_output_paths_of_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           argv: list[str]) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli.main([a.format(t=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no adir.tmp, no lock file, nothing


def test_second_writer_into_a_locked_folder_fails_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    with outputs.lock(results):
        assert cli.main(["gate", "--sarif-dir", str(tmp_path), "--verdict", str(results / "v.json"),
                         "--summary", str(results / "s.md"), "--sarif", str(results / "g.sarif")]) == 2
        err = capsys.readouterr().err
        assert "another mlsec run, gate or sign is writing into this folder" in err and err.count("\n") == 1
        assert not (results / "v.json").exists()
    # Released: the same command now runs.
    assert cli.main(["gate", "--sarif-dir", str(tmp_path / "none"), "--verdict", str(results / "v.json"),
                     "--summary", str(results / "s.md"), "--sarif", str(results / "g.sarif")]) in (0, 2, 3)
    assert "another mlsec" not in capsys.readouterr().err


# Issue 8, "What to build" 2: any uncaught exception becomes exit 1 with one line naming the stage and file.
def test_stage_crash_is_one_line_exit_1_and_a_failed_sarif(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from mlsec_actions.stages import model_scan

    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "weights.bin").write_bytes(b"\x80\x04K\x01.")

    def boom(dispatcher, rel, path):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("analyzer bug")

    monkeypatch.setattr(model_scan, "_scan_file", boom)
    out = tmp_path / "crash.sarif"
    assert cli.main(["model-scan", str(tmp_path / "proj"), "--sarif", str(out), "--no-modelscan"]) == 1
    err = capsys.readouterr().err
    assert err == ("mlsec: error: model-scan: internal error while processing weights.bin: "
                   "ZeroDivisionError: analyzer bug\n")
    run = json.loads(out.read_text())["runs"][0]
    mine = [i for i in run["invocations"] if i["properties"]["tool"] == "mlsec"]
    assert mine and mine[0]["executionSuccessful"] is False
    assert "ZeroDivisionError: analyzer bug" in mine[0]["toolExecutionNotifications"][0]["message"]["text"]


def test_crash_while_writing_sarif_still_leaves_a_failed_sarif(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from mlsec_actions import sarif

    real = sarif.fingerprints
    calls = []

    def flaky(findings, root):  # type: ignore[no-untyped-def]
        calls.append(len(findings))
        if findings:
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
        return real(findings, root)

    monkeypatch.setattr(sarif, "fingerprints", flaky)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "m.pkl").write_bytes(b"\x80\x04cos\nsystem\n.")
    out = tmp_path / "w.sarif"
    assert cli.main(["model-scan", str(tmp_path / "p"), "--sarif", str(out), "--no-modelscan"]) == 1
    assert capsys.readouterr().err.startswith("mlsec: error: model-scan: internal error: UnicodeEncodeError")
    run = json.loads(out.read_text())["runs"][0]
    assert run["results"] == []  # the findings were what crashed; the failure is what is left
    assert any(not i["executionSuccessful"] for i in run["invocations"])


def test_non_scan_command_crash_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import mlsec_actions.gate.engine

    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise KeyError("line1\n::error::x")

    monkeypatch.setattr(mlsec_actions.gate.engine, "run_gate", boom)
    r = tmp_path / "r"
    assert cli.main(["gate", "--sarif-dir", str(tmp_path), "--verdict", str(r / "v.json"), "--summary",
                     str(r / "s.md"), "--sarif", str(r / "g.sarif")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mlsec: error: gate: internal error: KeyError") and err.count("\n") == 1
    assert "::error" not in err


def test_summary_says_what_was_not_covered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # Issue 8, seen 2: with no vulnerability DB the step summary said "all tools ran".
    from mlsec_actions.findings import CoverageGap, GapKind, StageResult, ToolRun, ToolStatus
    from mlsec_actions.stages import code_scan

    gap = CoverageGap(GapKind.VULNERABILITIES_NOT_SCANNED, "no vulnerability DB [x](https://evil)")
    monkeypatch.setattr(code_scan, "scan", lambda ctx: StageResult(
        "code-scan", (), (ToolRun("trivy", ToolStatus.OK, gaps=(gap,)),)))
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert cli.main(["code-scan", str(tmp_path), "--sarif", str(tmp_path / "c.sarif")]) == 0
    text = summary.read_text()
    assert "all tools ran" not in text and "1 coverage gap" in text and "not everything was checked" in text
    assert "no vulnerability DB" in text and "[x](https://evil)" not in text  # Markdown defused
    assert "not covered: 1 gap(s)" in capsys.readouterr().err
