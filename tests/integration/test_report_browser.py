"""report.html in a real browser: Debian's chromium driven by Playwright (one browser for the module).

The SARIF comes from our own writer and the verdict from the real gate; the page must show the verdict, build
the findings table, filter it, make no request at all (a loopback server stands where an injected image would
load from), fire no dialog, and show hostile finding text as text.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mlsec_actions import cli
from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.sarif import write_sarif

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (scripts/bootstrap dev installs it)
XSS = "<img src=x onerror=alert(1)>"


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def trap() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that records any request: nothing on the page may reach it."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.hits
    server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


def _finding(i: int, severity: Severity, message: str, path: str, rule: Rule) -> Finding:
    return Finding(rule=rule, message=message, severity=severity, location=Location(path, i + 1))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, trap: tuple[str, list[str]]) -> Path:
    base, _ = trap
    work = tmp_path_factory.mktemp("report")
    sarif_dir = work / "sarif"
    rule = Rule("mlsec/test/leak", "leak", "a test rule", help_uri="https://example.invalid/docs#leak")
    hostile = Rule("mlsec/test/hostile", "hostile", "a rule", help_uri=f"{base}/help")
    rows = [_finding(0, Severity.CRITICAL, XSS, "src/a.py", hostile),
            _finding(1, Severity.HIGH, f'<img src="{base}/img"><script>alert(2)</script>', "src/<b>bold</b>.py", rule),
            _finding(2, Severity.LOW, "</script><script>alert(3)</script>", "src/b.py", rule)]
    rows += [_finding(i, Severity.MEDIUM, f"ordinary finding {i}", f"src/m{i % 7}.py", rule) for i in range(3, 603)]
    tool = (ToolRun("mlsec-test", ToolStatus.OK, "1"),)
    write_sarif(StageResult("code-scan", tuple(rows[:300]), tool), sarif_dir / "code-scan.sarif", run_id="r1")
    write_sarif(StageResult("model-scan", tuple(rows[300:]), tool), sarif_dir / "model-scan.sarif", run_id="r1")
    verdict = work / "verdict.json"
    assert cli.main(["gate", "--sarif-dir", str(sarif_dir), "--verdict", str(verdict), "--summary",
                     str(work / "s.md"), "--sarif", str(work / "gate.sarif"), "--run-id", "r1"]) == 3
    out = work / "report.html"
    assert cli.main(["report", "--sarif-dir", str(sarif_dir), "--verdict", str(verdict), "--out", str(out)]) == 0
    return out


def test_report_in_chromium(browser: Any, report: Path, trap: tuple[str, list[str]], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _, hits = trap
    page = browser.new_page()
    requests: list[str] = []
    dialogs: list[str] = []
    console: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: console.append(m.text))
    page.goto(report.as_uri())
    page.wait_for_selector("#findings-table tbody tr")
    assert page.inner_text("#verdict-word") == "FAIL"
    assert "threshold" in page.inner_text("#why")
    # The table: 603 findings, the first 500 shown, critical first.
    assert page.inner_text("#shown") == "603 of 603 findings match; showing the first 500"
    assert page.locator("#findings-table tbody tr").count() == 500
    first = page.locator("#findings-table tbody tr").first
    assert first.locator("td").nth(0).inner_text() == "critical"
    assert first.locator("td").nth(5).inner_text() == XSS  # shown as text
    # Filters: severity at least high, then one stage and a path.
    page.select_option("#f-severity", label="high")
    assert page.inner_text("#shown") == "2 of 603 findings match"
    page.select_option("#f-severity", value="")
    page.select_option("#f-stage", label="model-scan")
    page.fill("#f-path", "m3.py")
    expect(page.locator("#shown")).to_have_text("43 of 603 findings match")  # the path filter waits 150 ms
    assert {c.inner_text() for c in page.locator("#findings-table tbody tr td:nth-child(2)").all()} == {"model-scan"}
    page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    # Nothing ran, nothing was fetched: no dialog, no element from a finding, one request (the file itself).
    assert dialogs == []
    assert page.locator("img").count() == 0 and page.locator("b").count() == 0
    assert page.locator("script").count() == 2  # the data block and ours
    assert requests == [report.as_uri()], requests
    assert hits == []
    assert not [m for m in console if "Content Security Policy" in m], console
    page.close()


def test_report_data_block_cannot_be_closed_by_finding_text(report: Path) -> None:
    text = report.read_text()
    block = text.split('<script type="application/json" id="mlsec-data">', 1)[1].split("</script>", 1)[0]
    data = json.loads(block)  # the whole block parses: no finding ended it early
    messages = [r[6] for r in data["findings"]["rows"]]
    assert XSS in messages and "</script><script>alert(3)</script>" in messages
    assert "<" not in block and ">" not in block
