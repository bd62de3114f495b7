"""The fault-injection matrix's parts, generated from the stage catalog: every implemented scan stage, every
external tool behind it (faked through `MLSEC_<TOOL>_BIN`, the override `tools/base.py` honours) and every
fault. A new stage or tool in the catalog is in the matrix without a line here.

Fake scanners are small real executables (shell scripts): they exit 1, print garbage, hang, kill themselves
or kill the stage process that started them. They answer `--version` normally, because the fault under test
is the scan, not the version query.
"""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlsec_actions import catalog

SCAN_STAGES = tuple(s for s in catalog.CATALOG if s.implemented and s.kind is catalog.Kind.SCAN)
IN_HOUSE = "in-house"


def external_tools(stage: catalog.StageInfo) -> tuple[str, ...]:
    return tuple(t for t in stage.tools if t != IN_HOUSE)


def tool_env(tool: str) -> str:
    return f"MLSEC_{tool.upper().replace('-', '_')}_BIN"


@dataclass(frozen=True)
class Fault:
    """One way a scanner goes wrong."""

    name: str
    """Test id."""
    body: str | None
    """Shell script body after the --version answer; None: the scanner is missing."""
    causes: tuple[str, ...]
    """Words one of which the verdict's violation for the stage must contain (the cause, in the gate's words)."""


SCANNER_FAULTS = (
    Fault("missing", None, ("missing", "not found")),
    Fault("exits-1", 'echo "fake scanner: internal failure" >&2\nexit 1\n', ("failed", "exited 1", "exit")),
    Fault("garbage", "echo 'this is {not a report'\necho '::error::nope' >&2\nexit 0\n",
          ("failed", "not", "report", "json", "JSON", "parse", "output")),
    Fault("hangs", "exec sleep 120\n", ("timeout", "timed out")),
    Fault("killed", "kill -9 $$\n", ("failed", "-9", "signal", "killed")),
)
# Scanner bodies that take the stage process down with them (the stage cannot write its SARIF).
STAGE_KILLED = "kill -9 $PPID\nexit 0\n"
STAGE_HANGS = "exec sleep 120\n"


def make_fake(folder: Path, tool: str, body: str | None) -> Path:
    path = folder / f"fake-{tool}"
    if body is None:
        return path  # never created: the scanner is missing
    path.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Version: 0.0.0"; exit 0; fi\n' + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_"))}
    env.update(extra)
    return env


def mlsec(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "mlsec")
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def violations_for(verdict_file: Path, stage: str) -> list[dict[str, object]]:
    doc = json.loads(verdict_file.read_text())
    assert doc["verdict"] == "fail", doc
    return [v for v in doc["violations"] if v.get("stage") == stage or stage in str(v.get("message", ""))]


def assert_names_stage_and_cause(verdict_file: Path, stage: str, causes: tuple[str, ...]) -> None:
    found = violations_for(verdict_file, stage)
    assert found, f"no violation names {stage}: {verdict_file.read_text()}"
    text = " ".join(str(v.get("message", "")) for v in found)
    assert any(c in text for c in causes), f"{stage}: no cause among {causes} in: {text}"


def stage_inputs(stage_id: str, folder: Path) -> tuple[list[str], str]:
    """What a stage needs besides the project so that each of its external tools runs: (command-line options,
    lines of its `--config` section). Most scan the project and need nothing. infra-scan contacts only a host
    that the caller and its policy both list (here a closed port on loopback, allowed by a policy of its own)
    and evaluates OpenSCAP only on a root it is given (here a tiny Debian 11 root, one file rule)."""
    if stage_id != "infra-scan":
        return [], ""
    root = folder / "infra-root"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="11"\n')
    (root / "etc" / "debian_version").write_text("11.7\n")
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    policy = folder / "infra-policy.yml"
    policy.write_text("version: 1\nthresholds: []\ninfra-scan:\n  hosts:\n    - host: 127.0.0.1\n"
                      "      allow:\n        - ports: 1-65535\n  openscap:\n"
                      "    profile: xccdf_org.ssgproject.content_profile_anssi_np_nt28_minimal\n"
                      "    rules: [xccdf_org.ssgproject.content_rule_file_permissions_etc_passwd]\n")
    return (["--target", "127.0.0.1:9", "--policy", str(policy), "--oscap-root", str(root)],
            f"  target: ['127.0.0.1:9']\n  policy: {policy}\n  oscap-root: {root}\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A tiny clean project: every stage passes on it when its scanners behave, and every scanner has an input
    (modelscan is only given files of a format it reads, so the project holds a benign pickle)."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "app.py").write_text("print('hello')\n")
    (proj / "weights.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))  # built here, never loaded
    return proj


@pytest.fixture
def lenient_policy(tmp_path: Path) -> Path:
    """No thresholds: only a failed, missing or stale stage can make the gate fail."""
    path = tmp_path / "policy.yml"
    path.write_text("version: 1\nthresholds: []\n")
    return path
