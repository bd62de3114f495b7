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
from collections.abc import Iterator
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


# What each fault proves, and so where it is needed (a stage with several external tools pays per case):
# - missing, exits-1, garbage go through each adapter's own code: the exit codes it accepts (gitleaks, bandit
#   and checkov take 1 as "findings"), the report it parses, and its early return on a status that is not OK
#   (a MISSING left to the parser would turn into a FAILED "not a report"). So: every tool.
# - hangs and killed are decided in `tools/base.execute` and `tools/process.run` alike for every adapter
#   (the process group killed at the tool's own timeout; a death by signal read from the exit status) before
#   the adapter sees anything, and the adapter's non-OK return is already proven by `missing`. So: once per
#   stage, through its first tool.
# - `mlsec run` sees a stage process, its exit code and its SARIF, never which tool inside failed: the runner's
#   cases take one tool per stage; which tool failed is the stage matrix's business.
SHARED_PATH_FAULTS = frozenset({"hangs", "killed"})
"""Faults handled before any adapter code runs, the same for every tool (see above)."""


def stage_cases(stage: catalog.StageInfo) -> list[tuple[str, Fault]]:
    """(tool, fault) pairs of the stage matrix: every fault for the first tool, the adapter-specific ones for
    the others."""
    tools = external_tools(stage)
    return [(t, f) for i, t in enumerate(tools) for f in SCANNER_FAULTS if i == 0 or f.name not in SHARED_PATH_FAULTS]


def runner_tools(stage: catalog.StageInfo) -> tuple[str, ...]:
    """The tools the `mlsec run` cases fault: the stage's first one (the runner cannot tell them apart)."""
    return external_tools(stage)[:1]


TOOL_INPUTS = {"checkov": ("Dockerfile", "FROM python:3.11-slim\n")}
"""A file a tool needs before it starts at all (code-scan runs checkov only on a tree with IaC files); written
into the project only for that tool's fault cases, so the other cases do not pay for starting it."""


def give_input(project: Path, tool: str) -> None:
    name, text = TOOL_INPUTS.get(tool, ("", ""))
    if name:
        (project / name).write_text(text)


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


STAGE_OPTIONS: dict[str, dict[str, object]] = {}
"""Options a stage needs to have anything to check, by stage id (dast scans a URL, not the tree); filled by
`stage_targets` for the session. `stage_args` gives them as command-line arguments, `stage_config` as the
stage's section of an mlsec config file."""


@pytest.fixture(scope="session", autouse=True)
def stage_targets() -> Iterator[None]:
    """The fixed web app on loopback, the target of dast's runs (a shallow, headers-only wapiti scan)."""
    from tests.vulnerable_app import vulnerable_app

    with vulnerable_app(fixed=True) as app:
        STAGE_OPTIONS["dast"] = {"target": [app.url + "/"], "wapiti-modules": "http_headers", "depth": 0}
        yield
        STAGE_OPTIONS.clear()


def stage_args(stage_id: str) -> list[str]:
    out: list[str] = []
    for key, value in STAGE_OPTIONS.get(stage_id, {}).items():
        for v in value if isinstance(value, list) else [value]:
            out += [f"--{key}", str(v)]
    return out


def stage_config(stage_id: str) -> str:
    """YAML lines (indented) for the stage's config section."""
    return "".join(f"  {k}: {json.dumps(v)}\n" for k, v in STAGE_OPTIONS.get(stage_id, {}).items())


def stage_inputs(stage_id: str, folder: Path) -> tuple[list[str], str]:
    """What a stage needs besides the project so that each of its external tools runs: (command-line options,
    lines of its `--config` section). Most scan the project and need nothing; dast scans a URL
    (`STAGE_OPTIONS`). infra-scan contacts only a host
    that the caller and its policy both list (here a closed port on loopback, allowed by a policy of its own)
    and evaluates OpenSCAP only on a root it is given (here a tiny Debian 11 root, one file rule)."""
    if stage_id != "infra-scan":
        return stage_args(stage_id), stage_config(stage_id)
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
