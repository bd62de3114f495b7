"""A tool's version from the Python distribution that installed it (no `--version` process) only when the
program about to run is one of that distribution's files: bandit's module, gitleaks's pinned launcher. The
versions agree with what the real tools print; an override (`MLSEC_<NAME>_BIN`) or a program the distribution
does not own is asked with `--version`, as before."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from mlsec_actions.tools import bandit, base, gitleaks


def _asked(spec: base.ToolSpec) -> str | None:
    """What `--version` of the tool prints (the process path)."""
    prefix = base.command_prefix(spec)
    assert prefix is not None, f"{spec.name} is installed by the project's set-up"
    return base._version(prefix, spec.version_args, spec.version_pattern, tuple(sorted(base.child_env(spec).items())))


@pytest.mark.parametrize("spec", [bandit.SPEC, gitleaks.SPEC], ids=lambda s: s.name)
def test_the_installed_version_is_the_one_the_tool_prints(spec: base.ToolSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(f"MLSEC_{spec.name.upper()}_BIN", raising=False)
    spawned: list[tuple[str, ...]] = []
    real = base._version

    def counting(prefix: tuple[str, ...], *rest: object) -> str | None:
        spawned.append(prefix)
        return real(prefix, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(base, "_version", counting)
    got = base.version(spec)
    assert spawned == []  # read from the distribution, no process
    monkeypatch.setattr(base, "_version", real)
    assert got is not None and got == _asked(spec)


def _fake(tmp_path: Path, name: str, printed: str) -> Path:
    fake = tmp_path / name
    fake.write_text(f"#!/bin/sh\necho '{printed}'\n")
    fake.chmod(0o755)
    return fake


def test_an_override_is_asked_not_assumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSEC_GITLEAKS_BIN", str(_fake(tmp_path, "gitleaks", "gitleaks version 9.9.9")))
    assert base.version(gitleaks.SPEC) == "9.9.9"


def test_a_program_the_distribution_does_not_own_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `gitleaks` found on PATH (not beside this Python): the pinned wheel's version says nothing about it."""
    _fake(tmp_path, "otherleaks", "gitleaks version 7.7.7")
    monkeypatch.setenv("PATH", str(tmp_path))
    spec = replace(gitleaks.SPEC, name="otherleaks", executable="otherleaks")
    assert base.locate(spec) == str(tmp_path / "otherleaks")
    assert not (Path(sys.executable).parent / "otherleaks").exists()
    assert base.version(spec) == "7.7.7"
