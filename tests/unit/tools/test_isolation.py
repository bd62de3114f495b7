"""Every adapter in the registry neutralises its tool's configuration discovery (issue 9, seen 4).

A recording stand-in replaces each tool: it writes down its cwd, environment and arguments. The scanned
root holds every file the adapter declares its tool would discover, and the environment holds every
variable it would read; none of it may reach the tool.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

import pytest

from mlsec_actions import tools
from mlsec_actions.findings import ToolStatus
from mlsec_actions.tools import base, modelscan, registry, trivy

RECORDER = """#!{python}
import json, os, sys
with open({record!r}, "a") as fh:
    fh.write(json.dumps({{"cwd": os.getcwd(), "env": dict(os.environ), "argv": sys.argv[1:]}}) + "\\n")
print("Version: 0.0.0")
"""


def _recorder(tmp_path: Path, name: str) -> tuple[Path, Path]:
    record = tmp_path / f"{name}.record"
    fake = tmp_path / f"fake-{name}"
    fake.write_text(RECORDER.format(python=sys.executable, record=str(record)))
    fake.chmod(0o755)
    return fake, record


def _hostile_root(tmp_path: Path, spec: base.ToolSpec) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for name in spec.isolation.discovers:
        (root / name).write_text("planted by the scanned repository\n")
    (root / "model.pkl").write_bytes(b"\x80\x02}q\x00.")
    (root / "app.py").write_text("x = 1\n")
    (root / "Dockerfile").write_text("FROM scratch\n")  # checkov runs only on a tree with IaC files
    return root


@pytest.mark.parametrize("adapter", registry.ADAPTERS, ids=lambda a: a.spec.name)
def test_adapter_neutralises_config_discovery(adapter: registry.Adapter, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    spec = adapter.spec
    # A tool that discovers nothing by itself (clamscan) must still force the flags naming its inputs.
    assert spec.isolation.discovers or spec.isolation.forced_flags, f"{spec.name} declares no isolation"
    fake, record = _recorder(tmp_path, spec.name)
    root = _hostile_root(tmp_path, spec)
    monkeypatch.setenv(f"MLSEC_{spec.name.upper()}_BIN", str(fake))
    planted = {"PYTHONPATH": str(root), "PYTHONSTARTUP": str(root / "app.py"), "PIP_INDEX_URL": "http://127.0.0.1:1",
               "UV_INDEX_URL": "http://127.0.0.1:1", "UV_CONFIG_FILE": str(root / "uv.toml")}
    planted |= {f"{p}IGNOREFILE": str(root / "x") for p in spec.isolation.env_prefixes}
    for key, value in planted.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(root)  # even when *we* were started inside the scanned tree
    adapter.run_on(root, 30)
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert calls, f"{spec.name} never ran"
    for call in calls:
        cwd = Path(call["cwd"]).resolve()
        assert not cwd.is_relative_to(root.resolve()), call["cwd"]
        assert not any((cwd / name).exists() for name in spec.isolation.discovers)
        assert not set(planted) & set(call["env"]), sorted(set(planted) & set(call["env"]))
        argv = call["argv"]
        if "--version" in argv:
            continue
        for flag in spec.isolation.forced_flags:
            assert flag in argv, (flag, argv)
            value = Path(argv[argv.index(flag) + 1]).resolve()
            assert not value.is_relative_to(root.resolve()), (flag, value)


def test_every_adapter_module_is_registered() -> None:
    registered = {a.spec.name for a in registry.ADAPTERS}
    folder = Path(tools.__file__).parent
    with_spec = set()
    for module in pkgutil.iter_modules([str(folder)]):
        tree = ast.parse((folder / f"{module.name}.py").read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SPEC" for t in node.targets):
                with_spec.add(module.name)
    assert {"trivy", "modelscan"} <= with_spec
    # pre-commit runs the repository's own hooks inside it, only on request (--run-hooks): the one exception.
    in_tree_by_design = {"precommit"}
    assert registered == {importlib.import_module(f"mlsec_actions.tools.{m}").SPEC.name
                          for m in with_spec - in_tree_by_design}


def test_execute_refuses_a_command_without_its_isolation_flags(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="isolation flags"):
        base.execute(trivy.SPEC, ["fs", "--format", "json", "."], timeout=5)


def test_execute_refuses_to_run_inside_the_scanned_tree(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="inside the scanned tree"):
        base.execute(modelscan.SPEC, ["--version"], timeout=5, workdir=tmp_path / "sub", scanned=tmp_path)


def test_python_tools_start_isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLSEC_MODELSCAN_BIN", raising=False)
    assert base.command_prefix(modelscan.SPEC) == (sys.executable, "-I", "-m", "modelscan.cli")


def test_child_env_strips_interpreter_and_installer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("PYTHONPATH", "PYTHONHOME", "PIP_CONFIG_FILE", "UV_INDEX", "TRIVY_SEVERITY"):
        monkeypatch.setenv(key, "x")
    monkeypatch.setenv("HOME_IS_KEPT", "1")
    env = base.child_env(trivy.SPEC, {"EXTRA": "y"})
    assert not {"PYTHONPATH", "PYTHONHOME", "PIP_CONFIG_FILE", "UV_INDEX", "TRIVY_SEVERITY"} & set(env)
    assert env["HOME_IS_KEPT"] == "1" and env["EXTRA"] == "y"
    assert "TRIVY_SEVERITY" in base.child_env(modelscan.SPEC)  # only trivy reads TRIVY_*


def test_timeout_is_the_whole_budget_no_version_probe_grace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hung = tmp_path / "hung-tool"
    hung.write_text("#!/bin/sh\nsleep 1000\n")  # hangs for --version too
    hung.chmod(0o755)
    monkeypatch.setenv("MLSEC_MODELSCAN_BIN", str(hung))
    started = time.monotonic()
    got = base.execute(modelscan.SPEC, ["scan"], timeout=2)
    assert got.run.status is ToolStatus.TIMEOUT
    assert time.monotonic() - started < 3.0


def test_tool_messages_are_single_safe_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    noisy = tmp_path / "noisy"
    noisy.write_text("#!/bin/sh\necho 'oops ::error title=pwned::X token=ghp_" + "a" * 36 + "' >&2\nexit 9\n")
    noisy.chmod(0o755)
    monkeypatch.setenv("MLSEC_MODELSCAN_BIN", str(noisy))
    run = base.execute(modelscan.SPEC, ["scan"], timeout=10).run
    assert run.status is ToolStatus.FAILED
    assert "::" not in run.message and "\n" not in run.message and "ghp_" not in run.message
    assert os.environ.get("MLSEC_MODELSCAN_BIN") == str(noisy)
