"""Dependency licences from trivy's licence scanner: forbidden and restricted ones are findings at trivy's
severity on their package's manifest line, the other categories are only counted, and a hostile report cannot
make up a rule id or break the report's validation."""

from __future__ import annotations

from typing import Any

import pytest

from mlsec_actions.findings import Severity
from mlsec_actions.tools.trivy_report import ReportError, license_counts, parse_report, validate


def _report(licenses: list[Any]) -> dict[str, Any]:
    return {"SchemaVersion": 2, "ArtifactType": "filesystem", "Results": [
        {"Target": "web/package-lock.json", "Class": "lang-pkgs", "Type": "npm", "Packages": [
            {"ID": "gpl-thing@1.0.0", "Name": "gpl-thing", "Locations": [{"StartLine": 5, "EndLine": 5}]},
            {"ID": "agpl-thing@1.0.0", "Name": "agpl-thing", "Locations": [{"StartLine": 6, "EndLine": 6}]}]},
        {"Target": "web/package-lock.json", "Class": "license", "Licenses": licenses}]}


def _lic(pkg: str, name: str, category: str, severity: str) -> dict[str, Any]:
    return {"Severity": severity, "Category": category, "PkgName": pkg, "FilePath": "web/package-lock.json",
            "Name": name, "Confidence": 1}


def test_forbidden_and_restricted_are_findings_the_rest_counted() -> None:
    report = validate(_report([_lic("agpl-thing", "AGPL-3.0-only", "forbidden", "CRITICAL"),
                               _lic("gpl-thing", "GPL-3.0-only", "restricted", "HIGH"),
                               _lic("mpl-thing", "MPL-2.0", "reciprocal", "MEDIUM"),
                               _lic("mit-thing", "MIT", "notice", "LOW"),
                               _lic("odd-thing", "Custom", "unknown", "UNKNOWN")]))
    findings, gaps = parse_report(report)
    assert gaps == []
    got = {(f.rule.id, f.severity, f.location.path, f.location.start_line, f.location.logical) for f in findings}
    assert got == {("trivy/license/forbidden", Severity.CRITICAL, "web/package-lock.json", 6, "agpl-thing"),
                   ("trivy/license/restricted", Severity.HIGH, "web/package-lock.json", 5, "gpl-thing")}
    agpl = next(f for f in findings if f.rule.id.endswith("forbidden"))
    assert dict(agpl.properties)["license"] == "AGPL-3.0-only" and "license" in agpl.rule.tags
    assert license_counts(report) == {"forbidden": 1, "restricted": 1, "reciprocal": 1, "notice": 1, "unknown": 1}


def test_a_package_without_a_known_line_is_reported_on_its_file() -> None:
    findings, _ = parse_report(validate(_report([_lic("elsewhere", "GPL-2.0-only", "restricted", "HIGH")])))
    assert [(f.location.path, f.location.start_line) for f in findings] == [("web/package-lock.json", None)]


def test_a_hostile_category_cannot_make_up_a_rule_id() -> None:
    report = validate(_report([_lic("x", "GPL", "restricted/../../secret\n::error::pwned", "HIGH"),
                               _lic("y", "GPL", "FORBIDDEN", "CRITICAL")]))
    findings, _ = parse_report(report)
    assert [f.rule.id for f in findings] == ["trivy/license/forbidden"]  # the first is not 'restricted'
    assert set(license_counts(report)) == {"restrictedsecreterro", "forbidden"}  # letters only, bounded


@pytest.mark.parametrize("licenses", [{"not": "a list"}, ["not an object"]])
def test_licenses_of_the_wrong_type_are_not_a_trivy_report(licenses: Any) -> None:
    with pytest.raises(ReportError):
        validate(_report(licenses))
