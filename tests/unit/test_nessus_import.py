"""Nessus `.nessus` (v2) import: a report shaped by Tenable's documented format (NessusClientData_v2 >
Report > ReportHost > ReportItem), built here, through `mlsec infra-scan --nessus`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions import cli
from mlsec_actions.analyzers import nessus_import
from mlsec_actions.errors import InputError
from mlsec_actions.findings import Severity


def item(plugin: str, severity: str, name: str, port: str = "443", extra: str = "") -> str:
    return (f'<ReportItem port="{port}" svc_name="www" protocol="tcp" severity="{severity}" pluginID="{plugin}" '
            f'pluginName="{name}" pluginFamily="General"><synopsis>{name} synopsis</synopsis>'
            f"<solution>Fix {name}.</solution><risk_factor>Medium</risk_factor>{extra}</ReportItem>")


def report(hosts: dict[str, list[str]], preamble: str = '<?xml version="1.0" ?>') -> bytes:
    body = "".join(f'<ReportHost name="{h}"><HostProperties><tag name="host-ip">{h}</tag></HostProperties>'
                   f'{"".join(items)}</ReportHost>' for h, items in hosts.items())
    return (f'{preamble}<NessusClientData_v2><Policy><policyName>Basic</policyName></Policy>'
            f'<Report name="staging" xmlns:cm="http://www.nessus.org/cm">{body}</Report></NessusClientData_v2>'
            ).encode()


SAMPLE = report({
    "10.0.0.5": [item("51192", "2", "SSL Certificate Cannot Be Trusted",
                      extra="<cvss3_base_score>6.5</cvss3_base_score>"),
                 item("104743", "3", "TLS Version 1.0 Protocol Detection",
                      extra="<cvss_base_score>6.1</cvss_base_score><cve>CVE-2011-3389</cve><cve>CVE-2014-3566</cve>"),
                 item("11219", "0", "Nessus SYN scanner", port="22")],
    "app.internal": [item("19506", "0", "Nessus Scan Information", port="0"),
                     item("156032", "4", "Apache Log4Shell RCE", port="8080",
                          extra="<cvss3_base_score>10.0</cvss3_base_score><cve>CVE-2021-44228</cve>")],
})


def test_items_become_findings_and_informational_ones_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "staging.nessus"
    path.write_bytes(SAMPLE)
    got = nessus_import.load(path, "reports/staging.nessus")
    assert (got.hosts, got.informational) == (2, 2)
    by_rule = {f.rule.id: f for f in got.findings}
    assert sorted(by_rule) == ["nessus/104743", "nessus/156032", "nessus/51192"]
    log4 = by_rule["nessus/156032"]
    assert (log4.severity, log4.score, log4.location.logical) == (Severity.CRITICAL, 10.0, "app.internal:8080/tcp")
    assert ("cve", "CVE-2021-44228") in log4.properties
    tls = by_rule["nessus/104743"]
    assert (tls.severity, tls.score) == (Severity.HIGH, 6.1)
    assert ("cve", "CVE-2011-3389,CVE-2014-3566") in tls.properties
    assert by_rule["nessus/51192"].severity is Severity.MEDIUM and by_rule["nessus/51192"].score == 6.5
    assert tls.rule.help_text == "Fix TLS Version 1.0 Protocol Detection."
    assert tls.location.path == "reports/staging.nessus"


def test_the_stage_imports_reports_into_sarif(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "staging.nessus").write_bytes(SAMPLE)
    sarif = tmp_path / "out" / "infra-scan.sarif"
    assert cli.main(["infra-scan", str(tmp_path), "--nessus", str(tmp_path / "reports" / "staging.nessus"),
                     "--sarif", str(sarif)]) == 0
    run = json.loads(sarif.read_text())["runs"][0]
    assert sorted(r["ruleId"] for r in run["results"]) == ["nessus/104743", "nessus/156032", "nessus/51192"]
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]} == \
        {"reports/staging.nessus"}


@pytest.mark.parametrize("doc", [
    report({"h": [item("1", "2", "x")]}, preamble='<?xml version="1.0"?><!DOCTYPE n [<!ENTITY a "aaaaaaaaaa">'
           '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'),
    report({"h": [item("1", "2", "x")]}, preamble='<?xml version="1.0"?><!DOCTYPE n SYSTEM "http://127.0.0.1:9/x">'),
    report({"h": [item("1; rm", "2", "x")]}),
    report({"h": [item("1", "5", "x")]}),
    report({"h": [item("1", "", "x")]}),
    b"<NessusClientData_v2><ReportHost>",
    b'<?xml version="1.0"?><NessusClientData><Report/></NessusClientData>',
])
def test_a_hostile_or_malformed_report_is_bad_input(tmp_path: Path, doc: bytes) -> None:
    path = tmp_path / "bad.nessus"
    path.write_bytes(doc)
    with pytest.raises(InputError, match=r"bad\.nessus"):
        nessus_import.load(path, "bad.nessus")


def test_a_bad_report_stops_the_stage_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.nessus"
    path.write_bytes(b"<NessusClientData_v2><ReportHost>")
    assert cli.main(["infra-scan", str(tmp_path), "--nessus", str(path), "--sarif", str(tmp_path / "o.sarif")]) == 2
    assert "bad.nessus" in capsys.readouterr().err and not (tmp_path / "o.sarif").exists()


def test_scores_outside_0_to_10_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "r.nessus"
    path.write_bytes(report({"h": [item("7", "1", "x", extra="<cvss3_base_score>nan</cvss3_base_score>"
                                                            "<cvss_base_score>11</cvss_base_score>")]}))
    (f,) = nessus_import.load(path, "r.nessus").findings
    assert (f.score, f.severity) == (None, Severity.LOW)
