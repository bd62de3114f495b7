"""dast's imports: Burp Suite XML, Acunetix XML, ZAP JSON and wapiti JSON reports into findings; XML parsed
entity-safe; every malformed report a one-line InputError naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsec_actions.errors import InputError
from mlsec_actions.findings import GapKind, Severity
from mlsec_actions.tools import wapiti, web_reports
from mlsec_actions.web_targets import parse_target

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dast"


def test_burp_issues_become_findings_with_burps_severity() -> None:
    findings, gaps = web_reports.burp(FIXTURES / "burp-issues.xml")
    assert gaps == []
    by_rule = {f.rule.id: f for f in findings}
    assert set(by_rule) == {"burp/sql-injection", "burp/cookie-without-httponly-flag-set",
                            "burp/frameable-response-potential-clickjacking"}
    sqli = by_rule["burp/sql-injection"]
    assert sqli.severity is Severity.HIGH
    assert sqli.location.path == "127.0.0.1:8080/item" and sqli.location.logical == "/item [id URL parameter]"
    assert "<b>" not in sqli.message and "parameterized queries" in sqli.rule.help_text
    assert by_rule["burp/cookie-without-httponly-flag-set"].severity is Severity.LOW
    assert by_rule["burp/frameable-response-potential-clickjacking"].severity is Severity.INFO


def test_acunetix_items_become_findings_and_a_false_positive_is_a_gap() -> None:
    findings, gaps = web_reports.acunetix(FIXTURES / "acunetix-export.xml")
    assert {f.rule.id: f.severity for f in findings} == {"acunetix/cross-site-scripting": Severity.HIGH,
                                                         "acunetix/directory-listing": Severity.MEDIUM}
    xss = next(f for f in findings if "scripting" in f.rule.id)
    assert xss.location.path == "127.0.0.1:8080/search" and dict(xss.properties)["cwe"] == "CWE-79"
    assert [g.kind for g in gaps] == [GapKind.ALLOW_RULE] and "false positive" in gaps[0].detail


def test_zap_alert_instances_become_findings() -> None:
    findings, _ = web_reports.zap(FIXTURES / "zap-baseline.json")
    assert sorted((f.rule.id, f.severity) for f in findings) == [
        ("zap/content-security-policy-csp-header-not-set", Severity.MEDIUM),
        ("zap/content-security-policy-csp-header-not-set", Severity.MEDIUM),
        ("zap/x-content-type-options-header-missing", Severity.LOW)]


def test_wapiti_report_is_read_with_its_levels() -> None:
    target = parse_target("http://127.0.0.1:8080/")
    findings, gaps, pages, version = wapiti.parse(FIXTURES / "wapiti-report.json", target)
    assert gaps == [] and pages > 0 and version == "3.2.3"
    sev = {f.rule.id: f.severity for f in findings}
    assert sev["wapiti/sql-injection"] is Severity.CRITICAL  # wapiti level 4
    assert sev["wapiti/reflected-cross-site-scripting"] is Severity.MEDIUM  # level 2
    assert sev["wapiti/clickjacking-protection"] is Severity.LOW  # level 1
    assert sev["wapiti/internal-server-error"] is Severity.LOW  # an anomaly, whatever its level
    sqli = next(f for f in findings if f.rule.id == "wapiti/sql-injection")
    assert sqli.location.path == "127.0.0.1:8080/item" and sqli.location.logical == "GET id"


_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE issues [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<issues><issue><name>&b;</name></issue></issues>"""
_EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE ScanGroup [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<ScanGroup><Scan><ReportItems><ReportItem><Name>&x;</Name></ReportItem></ReportItems></Scan></ScanGroup>"""


@pytest.mark.parametrize(("parse", "data", "why"), [
    (web_reports.burp, _BOMB, "declares XML entities"),
    (web_reports.acunetix, _EXTERNAL, "declares XML entities"),
    (web_reports.burp, b"<issues><issue>", "not a well-formed"),
    (web_reports.burp, b"<ScanGroup/>", "not a Burp Suite XML report"),
    (web_reports.acunetix, b"<issues/>", "not an Acunetix XML report"),
    (web_reports.zap, b"{\"site\": 3}", "not a ZAP JSON report"),
    (web_reports.zap, b"\xff\xfe", "not a ZAP JSON report"),
])
def test_a_bad_report_is_refused_naming_the_file(tmp_path: Path, parse: object, data: bytes, why: str) -> None:
    path = tmp_path / "report\nname.xml"
    path.write_bytes(data)
    with pytest.raises(InputError, match=why) as e:
        parse(path)  # type: ignore[operator]
    assert e.value.path == path


@pytest.mark.parametrize("data", [b"[]", b"{}", b"{\"vulnerabilities\": []}", b"not json"])
def test_a_bad_wapiti_report_is_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(data)
    with pytest.raises(InputError, match="not a wapiti JSON report"):
        wapiti.parse(path, parse_target("http://127.0.0.1/"))


def test_wapiti_modules_that_leave_the_target_are_refused() -> None:
    from mlsec_actions.errors import UsageError

    assert wapiti.modules(" xss, sql ") == "xss,sql"
    for bad in ("ssrf", "xss,xxe", "wapp", "xss;rm", ""):
        with pytest.raises(UsageError):
            wapiti.modules(bad)


def test_wapiti_command_carries_every_isolation_flag(tmp_path: Path) -> None:
    cmd = wapiti.command(parse_target("http://127.0.0.1:9/app/?a=1"), tmp_path / "r.json", tmp_path, "xss", 2, 30)
    assert all(flag in cmd for flag in (*wapiti.SPEC.isolation.forced_flags, "--no-bugreport", "--flush-session"))
    assert cmd[cmd.index("-u") + 1] == "http://127.0.0.1:9/app/?a=1"
    for flag in ("--endpoint", "--external-endpoint", "--internal-endpoint"):
        assert cmd[cmd.index(flag) + 1] == "http://127.0.0.1:9/"  # out-of-band checks point at the target only
    assert cmd[cmd.index("--dns-endpoint") + 1] == "localhost"
    assert cmd[cmd.index("--scope") + 1] == "folder"
