"""`code-scan.licenses`: the allow/deny decision, SPDX expressions, unknown licences, and failing closed when
code-scan's licence inventory is absent, incomplete or malformed (docs/gate.md#license)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions import licenses
from mlsec_actions.findings import StageResult, ToolRun, ToolStatus
from mlsec_actions.gate import licenses as gate_licenses
from mlsec_actions.gate import policy
from mlsec_actions.gate.engine import run_gate
from mlsec_actions.gate.model import LicensePolicy
from mlsec_actions.gate.policy import PolicyError
from mlsec_actions.licenses import PackageLicense
from mlsec_actions.sarif import write_sarif
from mlsec_actions.stages.base import _merge_extra
from mlsec_actions.stages.code_scan import _license_inventory

POLICY = LicensePolicy(allow=("MIT", "Apache-2.0", "BSD-3-Clause"), deny=("AGPL-3.0*",), line=3)


def pkg(name: str, *lics: str, eco: str = "npm", path: str = "web/package-lock.json") -> PackageLicense:
    return PackageLicense(eco, name, "1.0.0", lics, path)


@pytest.mark.parametrize(("expression", "ok"), [
    ("MIT", True), ("mit", True), ("GPL-3.0-only", False), ("MIT OR GPL-3.0-only", True),
    ("GPL-3.0-only OR MIT", True), ("MIT AND GPL-3.0-only", False), ("(GPL-2.0 OR MIT) AND Apache-2.0", True),
    ("(GPL-2.0 OR MIT) AND LGPL-2.1", False), ("Apache-2.0 WITH LLVM-exception", True),
    ("GPL-2.0 WITH Classpath-exception-2.0", False), ("MIT AND (", False), ("(MIT", False), ("MIT OR", False),
    ("Apache 2.0", False),
])
def test_expressions_are_judged_by_their_terms(expression: str, ok: bool) -> None:
    assert licenses.acceptable(expression, lambda t: t.lower() in ("mit", "apache-2.0")) is ok


def test_terms_leave_out_operators_and_exceptions_and_keep_free_text_whole() -> None:
    assert licenses.terms("(MIT OR GPL-2.0 WITH Classpath-exception-2.0) AND BSD-3-Clause") == [
        "MIT", "GPL-2.0", "BSD-3-Clause"]
    assert licenses.terms(" Apache 2.0 ") == ["Apache 2.0"]


@pytest.mark.parametrize(("pol", "licence", "ok"), [
    (POLICY, "MIT", True), (POLICY, "Apache-2.0", True), (POLICY, "agpl-3.0-only", False),
    (POLICY, "WTFPL", False), (LicensePolicy(deny=("GPL-*",)), "WTFPL", True),
    (LicensePolicy(deny=("GPL-*",)), "GPL-3.0", False), (LicensePolicy(), "anything", True),
    (LicensePolicy(allow=("AGPL-3.0",), deny=("AGPL-3.0",)), "AGPL-3.0", False),  # deny wins
    (LicensePolicy(allow=("BSD-*",)), "BSD-2-Clause", True), (LicensePolicy(allow=("BSD-*",)), "0BSD", False),
])
def test_allow_and_deny(pol: LicensePolicy, licence: str, ok: bool) -> None:
    assert gate_licenses.accepted(pol, licence) is ok


def _runs(*packages: PackageLicense, complete: bool = True) -> list[tuple[str, str, dict[str, Any]]]:
    return [("code-scan", "out/code-scan.sarif", {licenses.PROPERTY: licenses.to_property(packages, complete)})]


def test_denied_and_unlisted_licences_are_violations_naming_package_licence_and_manifest() -> None:
    runs = _runs(pkg("ok-mit", "MIT"), pkg("agpl-thing", "AGPL-3.0-only"), pkg("wtf", "WTFPL"),
                 pkg("dual", "MIT OR GPL-3.0-only"), pkg("both", "MIT", "Apache-2.0"), pkg("mixed", "MIT", "GPL-2.0"))
    violations, warnings = gate_licenses.evaluate(POLICY, runs, "policy.yml")
    got = {v.message for v in violations}
    assert got == {
        "agpl-thing 1.0.0 (npm, web/package-lock.json) is under AGPL-3.0-only: AGPL-3.0-only is denied ('AGPL-3.0*')",
        "wtf 1.0.0 (npm, web/package-lock.json) is under WTFPL: WTFPL is not in the allow list",
        "mixed 1.0.0 (npm, web/package-lock.json) is under GPL-2.0: GPL-2.0 is not in the allow list"}
    assert {(v.kind, v.rule, v.stage, v.path, v.line) for v in violations} == {
        ("license", "code-scan.licenses", "code-scan", "policy.yml", 3)}
    assert warnings == []


def test_unknown_licences_fail_by_default_and_warn_when_asked() -> None:
    runs = _runs(pkg("flask", eco="pip", path="requirements.txt"), pkg("x", "UNKNOWN"), pkg("y", "NOASSERTION", ""))
    violations, _ = gate_licenses.evaluate(POLICY, runs, "p.yml")
    assert [(v.kind, v.message.split()[0]) for v in violations] == [
        ("license-unknown", "flask"), ("license-unknown", "x"), ("license-unknown", "y")]
    lenient = LicensePolicy(allow=POLICY.allow, unknown_fails=False)
    violations, warnings = gate_licenses.evaluate(lenient, runs, "p.yml")
    assert violations == []
    assert len(warnings) == 1 and "3 dependencies declare no licence" in warnings[0] and "flask" in warnings[0]


@pytest.mark.parametrize(("runs", "problem"), [
    ([], "no code-scan SARIF was given"),
    ([("model-scan", "m.sarif", {})], "no code-scan SARIF was given"),
    ([("code-scan", "c.sarif", {})], "recorded no licence inventory"),
    ([("code-scan", "c.sarif", {licenses.PROPERTY: {"packages": []}})], "is not {complete"),
    ([("code-scan", "c.sarif", {licenses.PROPERTY: {"complete": True, "packages": [{"name": 1}]}})],
     "packages[0] is not a package"),
    (_runs(pkg("a", "MIT"), complete=False), "inventory is incomplete"),
])
def test_no_complete_inventory_fails_closed(runs: list[tuple[str, str, dict[str, Any]]], problem: str) -> None:
    violations, _ = gate_licenses.evaluate(LicensePolicy(unknown_fails=False), runs, "p.yml")
    assert [v.kind for v in violations] == ["license-unchecked"]
    assert problem in violations[0].message


def test_an_empty_complete_inventory_passes() -> None:
    assert gate_licenses.evaluate(POLICY, _runs(), "p.yml") == ([], [])


def test_more_packages_than_the_cap_make_the_inventory_incomplete() -> None:
    many = [pkg(f"p{i}", "MIT") for i in range(licenses.MAX_PACKAGES + 1)]
    prop = licenses.to_property(many, True)
    assert prop["complete"] is False and len(prop["packages"]) == licenses.MAX_PACKAGES


def test_the_stage_inventory_is_complete_only_when_every_trivy_run_listed_packages() -> None:
    ok = ToolRun("trivy", ToolStatus.OK, licenses=(pkg("a", "MIT"),))
    failed = ToolRun("trivy", ToolStatus.FAILED, message="timed out")
    unlisted = ToolRun("trivy", ToolStatus.OK)
    other = ToolRun("bandit", ToolStatus.OK)
    assert _license_inventory((ok, other))[licenses.PROPERTY]["complete"] is True
    for runs in ((ok, failed), (unlisted,), (other,)):
        assert _license_inventory(runs)[licenses.PROPERTY]["complete"] is False


def test_several_paths_join_their_inventories_with_repository_relative_manifests() -> None:
    extra: dict[str, object] = {}
    _merge_extra(extra, {licenses.PROPERTY: licenses.to_property([pkg("a", "MIT", path="package-lock.json")], True)},
                 "web")
    _merge_extra(extra, {licenses.PROPERTY: licenses.to_property([pkg("b", "MIT", path="requirements.txt")], True)},
                 "")
    got, complete = licenses.from_property(extra[licenses.PROPERTY])
    assert complete and [(p.name, p.path) for p in got] == [("a", "web/package-lock.json"), ("b", "requirements.txt")]
    _merge_extra(extra, {licenses.PROPERTY: licenses.to_property([], False)}, "ml")
    assert licenses.from_property(extra[licenses.PROPERTY])[1] is False


POLICY_FILE = """\
version: 1
code-scan:
  licenses:
    allow: [MIT, Apache-2.0]
    deny: ["AGPL-3.0*"]
    unknown: warn
"""


def test_the_policy_key_loads(tmp_path: Path) -> None:
    (tmp_path / "p.yml").write_text(POLICY_FILE)
    pol = policy.load(tmp_path / "p.yml")
    assert pol.licenses == LicensePolicy(("MIT", "Apache-2.0"), ("AGPL-3.0*",), False, 3)
    assert policy.load("default").licenses is None


@pytest.mark.parametrize(("text", "problem"), [
    ("    allow: MIT\n", "allow: 'MIT' is not of type 'array'"),
    ("    deny: ['GPL;rm']\n", "does not match"),
    ("    unknown: ignore\n", "'ignore' is not one of"),
    ("    alow: [MIT]\n", "unknown key"),
])
def test_bad_license_policies_are_refused_with_the_line(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "p.yml").write_text("version: 1\ncode-scan:\n  licenses:\n" + text)
    with pytest.raises(PolicyError) as e:
        policy.load(tmp_path / "p.yml")
    assert problem in str(e.value.diagnostics()) and ":4:" in str(e.value.diagnostics())


def test_the_gate_reads_the_inventory_from_code_scan_sarif(tmp_path: Path) -> None:
    (tmp_path / "p.yml").write_text(POLICY_FILE)
    runs = (ToolRun("trivy", ToolStatus.OK, version="0.76.0",
                    licenses=(pkg("agpl-thing", "AGPL-3.0-only"), pkg("fine", "MIT"))),)
    result = StageResult("code-scan", (), runs, extra=_license_inventory(runs))
    write_sarif(result, tmp_path / "sarif" / "code-scan.sarif")
    verdict = run_gate(policy.load(tmp_path / "p.yml"), tmp_path / "sarif", today=dt.date(2026, 1, 1))
    assert not verdict.passed
    assert [(v.kind, v.message.split()[0]) for v in verdict.violations] == [("license", "agpl-thing")]
    # The same SARIF without the inventory (a code-scan whose trivy failed): unchecked, fails closed.
    write_sarif(StageResult("code-scan", (), runs), tmp_path / "sarif" / "code-scan.sarif")
    verdict = run_gate(policy.load(tmp_path / "p.yml"), tmp_path / "sarif", today=dt.date(2026, 1, 1))
    assert [v.kind for v in verdict.violations] == ["license-unchecked"]
