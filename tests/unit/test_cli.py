from __future__ import annotations

from pathlib import Path

import pytest

from mlsec_actions import __version__, cli
from mlsec_actions.stages import PLANNED, STAGES


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_stages_lists_every_listed_stage_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["stages"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == [s.id for s in STAGES if s.listed]


def test_registry_and_planned_are_disjoint() -> None:
    ids = [s.id for s in STAGES]
    assert len(ids) == len(set(ids))
    assert not set(ids) & set(PLANNED)


def test_planned_stage_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    planned = PLANNED[0]
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
    assert f"{bad}: code-scan.no-such-option: unknown option" in capsys.readouterr().err
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
    monkeypatch.setattr(cli, "STAGES", patched)
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
    assert "MLSEC_TIMEOUT='soon'" in capsys.readouterr().err


def test_env_list_values_get_the_option_type(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    action = parser.add_argument("--model", type=Path, action="append", default=[])
    assert cli._env_value(action, "a.pt\n\n models/b \n") == [Path("a.pt"), Path("models/b")]
