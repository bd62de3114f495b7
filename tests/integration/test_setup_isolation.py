"""actions/_setup/install.sh in a hostile workspace (issue 9, seen 1): nothing in it runs or steers the install.

The workspace is the scanned repository. It holds the reproduction from the issue (`pip/__main__.py` and
`venv/__main__.py` that write a canary when imported) plus every configuration pip, uv and Python read from
the current folder or the environment, each pointing at a trap index (a local HTTP server that records
every request). The real install script must succeed from the real index, create no canary, and send the
trap nothing. A control first shows each trap is live: the naive commands the script used to run do fire it.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "actions" / "_setup" / "install.sh"
CANARY_CODE = "import pathlib; pathlib.Path({path!r}).write_text('x')\n"


class _Trap(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def trap() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("Trap", (_Trap,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def _hostile_workspace(ws: Path, canary: Path, url: str) -> dict[str, str]:
    """Write the hostile tree into `ws`; return the hostile environment that goes with it."""
    for module in ("pip", "venv", "ensurepip", "uv"):
        (ws / module).mkdir(parents=True)
        (ws / module / "__init__.py").write_text("", encoding="utf-8")
        (ws / module / "__main__.py").write_text(CANARY_CODE.format(path=str(canary)), encoding="utf-8")
    for name in ("sitecustomize.py", "usercustomize.py", "startup.py"):
        (ws / name).write_text(CANARY_CODE.format(path=str(canary)), encoding="utf-8")
    (ws / "uv.toml").write_text(f'index-url = "{url}/uv-toml/simple"\nfind-links = ["{url}/uv-toml/links"]\n',
                                encoding="utf-8")
    (ws / "pyproject.toml").write_text(
        f'[project]\nname = "victim"\nversion = "0"\n\n[tool.uv]\nindex-url = "{url}/pyproject/simple"\n'
        f'extra-index-url = ["{url}/pyproject/extra"]\n', encoding="utf-8")
    (ws / "pip.conf").write_text(f"[global]\nindex-url = {url}/pip-conf/simple\n", encoding="utf-8")
    return {
        "PYTHONPATH": str(ws), "PYTHONSTARTUP": str(ws / "startup.py"), "PYTHONUSERBASE": str(ws),
        "PIP_CONFIG_FILE": str(ws / "pip.conf"), "PIP_INDEX_URL": f"{url}/pip-env/simple",
        "PIP_EXTRA_INDEX_URL": f"{url}/pip-env/extra", "PIP_FIND_LINKS": f"{url}/pip-env/links",
        "UV_INDEX_URL": f"{url}/uv-env/simple", "UV_DEFAULT_INDEX": f"{url}/uv-env/default",
        "UV_EXTRA_INDEX_URL": f"{url}/uv-env/extra", "UV_FIND_LINKS": f"{url}/uv-env/links",
        "UV_CONFIG_FILE": str(ws / "uv.toml"),
    }


def _base_env(runner_temp: Path) -> dict[str, str]:
    # What a runner gives every step: no MLSEC_/GITHUB_ settings of the developer's shell, no pip or uv ones.
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("MLSEC_", "GITHUB_", "PIP_", "UV_", "PYTHON", "VIRTUAL_ENV"))}
    cache = Path.home() / ".cache" / "mlsec-setup-test"  # kept between test runs: quick after the first
    return {**keep, "RUNNER_TEMP": str(runner_temp), "MLSEC_SETUP_EXTRAS": "", "MLSEC_SETUP_CACHE_DIR": str(cache)}


def test_the_traps_are_live(tmp_path: Path, trap: tuple[str, list[str]]) -> None:
    # The commands install.sh used to run, in this workspace, with this environment: the canary is written
    # and the trap index is asked. So a clean result below means the script defeats them, not that they are dead.
    url, hits = trap
    ws, canary = tmp_path / "ws", tmp_path / "PWNED"
    hostile = _hostile_workspace(ws, canary, url)
    got = subprocess.run(["python3", "-m", "pip", "--version"], cwd=ws, env={**_base_env(tmp_path), **hostile},
                         capture_output=True, text=True, timeout=120, check=False)
    assert canary.exists(), got.stdout + got.stderr
    canary.unlink()
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp_path / "dl"),
                          "pyyaml"], cwd=tmp_path, env={**_base_env(tmp_path), **hostile,
                                                        "PYTHONPATH": "", "PYTHONSTARTUP": ""},
                         capture_output=True, text=True, timeout=120, check=False)
    assert any(h.startswith("/pip-") for h in hits), (hits, got.stderr)


def test_install_in_a_hostile_workspace_runs_nothing_from_it(tmp_path: Path, trap: tuple[str, list[str]]) -> None:
    url, hits = trap
    ws, canary = tmp_path / "ws", tmp_path / "PWNED"
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    hostile = _hostile_workspace(ws, canary, url)
    github_path, github_output = tmp_path / "github_path", tmp_path / "github_output"
    env = {**_base_env(runner_temp), **hostile, "GITHUB_PATH": str(github_path), "GITHUB_OUTPUT": str(github_output)}
    got = subprocess.run(["bash", str(INSTALL)], cwd=ws, env=env, capture_output=True, text=True, timeout=600,
                         check=False)
    assert got.returncode == 0, got.stdout + got.stderr
    assert not canary.exists(), "code from the workspace ran during the install"
    assert hits == [], f"the install asked the workspace's index: {hits}"
    assert not list(ws.rglob("PWNED")) and not (ws / ".venv").exists()
    venv_bin = runner_temp / "mlsec-venv" / "bin"
    assert github_path.read_text(encoding="utf-8") == f"{venv_bin}\n"
    assert f"bin-dir={venv_bin}" in github_output.read_text(encoding="utf-8")
    # The package in the venv is this checkout's, and the venv's Python does not pick up the workspace either.
    probe = "import mlsec_actions; print(mlsec_actions.__file__)"
    check = subprocess.run([str(venv_bin / "python"), "-I", "-c", probe],
                           cwd=ws, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0 and "site-packages" in check.stdout, check.stdout + check.stderr
    assert not canary.exists()


def test_install_rejects_an_index_that_is_not_https(tmp_path: Path) -> None:
    env = {**_base_env(tmp_path), "MLSEC_SETUP_INDEX_URL": "http://example.invalid/simple"}
    got = subprocess.run(["bash", str(INSTALL)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert got.returncode == 2
    assert "MLSEC_SETUP_INDEX_URL must be an https:// or file:// URL" in got.stderr
    assert not (tmp_path / "mlsec-venv").exists()
