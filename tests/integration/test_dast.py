"""dast with the real wapiti (scripts/install-wapiti) against the vulnerable app and its fixed twin on loopback:
XSS, SQL injection, missing headers and the directory listing found on the first, fewer on the second; a host
outside the allowlist gets no packet; a target that does not answer, or a scanner that crawls nothing, fails
closed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.vulnerable_app import Running, fixed, vulnerable

pytestmark = pytest.mark.integration
__all__ = ["fixed", "vulnerable"]  # session fixtures used by name
MLSEC = str(Path(sys.executable).parent / "mlsec")
# Kept short (issue 18 item 5): the modules that find the app's holes, a shallow crawl, a time budget.
MODULES = "xss,sql,file,http_headers,csp"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dast"


def _dast(tmp_path: Path, *args: str, timeout: float = 240) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    sarif = tmp_path / "dast.sarif"
    proc = subprocess.run([MLSEC, "dast", "--sarif", str(sarif), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert "Traceback" not in proc.stderr
    run: dict[str, Any] = json.loads(sarif.read_text())["runs"][0] if sarif.is_file() else {}
    return proc, run


def _rules(run: dict[str, Any]) -> set[str]:
    return {r["ruleId"] for r in run["results"]}


def test_wapiti_finds_the_apps_holes_and_fewer_on_the_fixed_app(vulnerable: Running, fixed: Running,
                                                                tmp_path: Path) -> None:
    # One test (not two sharing a module fixture): under xdist a shared fixture would run on both workers.
    # The two scans run side by side: each is mostly wapiti waiting on its own start-up and on the app.
    procs = {}
    for name, app in (("vulnerable", vulnerable), ("fixed", fixed)):
        sarif = tmp_path / f"{name}.sarif"
        procs[name] = (sarif, subprocess.Popen(
            [MLSEC, "dast", "--sarif", str(sarif), "--target", app.url + "/", "--wapiti-modules", MODULES,
             "--depth", "2", "--timeout", "150"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    runs = {}
    for name, (sarif, proc) in procs.items():
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0 and "Traceback" not in err, err
        runs[name] = json.loads(sarif.read_text())["runs"][0]
    holes = {"wapiti/reflected-cross-site-scripting", "wapiti/sql-injection", "wapiti/clickjacking-protection",
             "dast/directory-listing"}
    assert holes | {"wapiti/content-security-policy-configuration"} <= _rules(runs["vulnerable"])
    tools = {i["properties"]["tool"]: i for i in runs["vulnerable"]["invocations"]}
    assert tools["wapiti"]["executionSuccessful"] and tools["dast"]["executionSuccessful"]
    assert not _rules(runs["fixed"]) & holes
    assert len(runs["fixed"]["results"]) < len(runs["vulnerable"]["results"])


def test_a_target_outside_the_allowlist_is_refused_before_any_packet(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.2", 0)) as other:
        other.settimeout(0.5)
        url = f"http://127.0.0.2:{other.getsockname()[1]}/"
        proc, run = _dast(tmp_path, "--target", url, "--allow-host", "127.0.0.1")
        assert proc.returncode == 2 and "not in the allowlist" in proc.stderr
        assert run == {}
        with pytest.raises(TimeoutError):
            other.accept()  # nobody connected


def test_a_module_that_would_leave_the_target_is_refused(tmp_path: Path) -> None:
    proc, run = _dast(tmp_path, "--target", "http://127.0.0.1:1/", "--wapiti-modules", "xss,ssrf")
    assert proc.returncode == 2 and "ssrf" in proc.stderr and run == {}


def test_a_target_that_does_not_answer_fails_closed(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    proc, run = _dast(tmp_path, "--target", f"http://127.0.0.1:{port}/")
    assert proc.returncode == 1
    assert "did not answer" in json.dumps(run["invocations"])


def test_passive_check_and_imports_without_wapiti(vulnerable: Running, tmp_path: Path) -> None:
    proc, run = _dast(tmp_path, "--target", vulnerable.url + "/", "--no-wapiti",
                      "--burp-report", str(FIXTURES / "burp-issues.xml"),
                      "--acunetix-report", str(FIXTURES / "acunetix-export.xml"),
                      "--zap-report", str(FIXTURES / "zap-baseline.json"))
    assert proc.returncode == 0, proc.stderr
    rules = _rules(run)
    assert "dast/directory-listing" in rules
    assert {"burp/sql-injection", "acunetix/cross-site-scripting", "zap/x-content-type-options-header-missing"} <= rules
    kinds = {g["kind"] for g in run["properties"]["mlsec-coverage"]["gaps"]}
    assert {"exclusion", "allow-rule"} <= kinds  # wapiti not run, and the report's false positive: both recorded


def test_a_malformed_import_is_exit_2_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "burp.xml"
    bad.write_text('<!DOCTYPE issues [<!ENTITY x SYSTEM "file:///etc/passwd">]><issues>&x;</issues>')
    proc, _ = _dast(tmp_path, "--burp-report", str(bad))
    assert proc.returncode == 2 and str(bad) in proc.stderr and "entities" in proc.stderr
