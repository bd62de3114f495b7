"""Framework mappings (docs/compliance.md): the catalogue's integrity, SARIF tags, control thresholds, the verdict."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from mlsec_actions import compliance
from mlsec_actions.findings import Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.gate import policy, report, rules
from mlsec_actions.gate.model import Selector, Threshold
from mlsec_actions.sarif import to_sarif
from tests.unit.test_gate import evaluate, hit, stage

ROOT = Path(__file__).resolve().parents[2]
# Rule ids of external tools, one per family the mappings name (in-house ids come from the docs' headings).
EXTERNAL = ("trivy/secret/github-pat", "trivy/vuln/CVE-2024-0001", "trivy/misconfig/AVD-DS-0002", "checkov/CKV_AWS_20",
            "gitleaks/generic-api-key", "bandit/B301", "semgrep/pickle-load-request", "snyk/SNYK-PY-1",
            "grype/GHSA-x", "scout/CVE-1", "nessus/19506", "openscap/xccdf_rule_x", "wapiti/sql-injection",
            "zap/10021", "burp/xss", "acunetix/sqli", "modelscan/unsafe-operator", "garak/dan",
            "clamav/malware", "runtime-probe/sql-injection", "runtime-probe/path-traversal",
            "runtime-probe/command-injection", "runtime-probe/reflected-xss", "runtime-probe/ssrf-metadata",
            "runtime-probe/oversized-body", "runtime-probe/prompt-injection", "runtime-probe/jailbreak",
            "runtime-probe/system-prompt-leak", "dast/directory-listing")


def documented_rules() -> set[str]:
    heading = re.compile(r"^#{2,4} `?([a-z0-9-]+/[a-z0-9-]+)`?\s*$", re.MULTILINE)
    return {m for f in (ROOT / "docs").glob("*.md") for m in heading.findall(f.read_text(encoding="utf-8"))}


def test_every_mapping_names_known_controls_and_matches_a_real_rule() -> None:
    raw = json.loads((ROOT / "src/mlsec_actions/data/compliance.json").read_text(encoding="utf-8"))
    known = set(compliance.catalog().controls())
    rule_ids = documented_rules() | set(EXTERNAL)
    assert len(rule_ids) > 150  # the docs' headings were found
    for m in raw["mappings"]:
        assert set(m["controls"]) <= known, m["controls"]
        assert m["why"].strip()
        for glob in m["rules"]:
            rx = re.compile(compliance.fnmatch.translate(glob))
            assert any(rx.match(r) for r in rule_ids), f"{glob} matches no rule"
    # Every control of every framework is used by some mapping (no dead entries in the catalogue).
    used = {c for m in raw["mappings"] for c in m["controls"]}
    assert used == known - {"owasp-ml:ML03", "owasp-ml:ML04", "owasp-ml:ML05", "owasp-ml:ML07", "owasp-ml:ML08",
                            "owasp-ml:ML09", "owasp-llm:LLM06", "owasp-llm:LLM08", "owasp-llm:LLM09",
                            "nist-800-53:CM-8"}


@pytest.mark.parametrize(("rule", "expected", "absent"), [
    ("pickle/dangerous-global", {"owasp-ml:ML06", "owasp-llm:LLM03", "atlas:AML.T0011.000", "nist-800-53:SI-7"},
     {"owasp-llm:LLM01"}),
    ("prompt/instruction-override", {"owasp-llm:LLM01", "atlas:AML.T0051"}, {"owasp-ml:ML06"}),
    ("prompt/canary-leak", {"owasp-llm:LLM07", "atlas:AML.T0056"}, {"owasp-llm:LLM01"}),
    ("trivy/secret/github-pat", {"atlas:AML.T0055", "pci-dss:8.6.2", "iso-27001:5.17"}, set()),
    ("pii/payment-card", {"pci-dss:3.5.1", "iso-27001:5.34"}, set()),
    ("pii/email", {"iso-27001:5.34"}, {"pci-dss:3.5.1"}),
    ("ml/torch-load", {"iso-27001:8.28", "atlas:AML.T0011.000"}, set()),
    ("ml/subprocess-shell", {"iso-27001:8.28"}, {"atlas:AML.T0011.000"}),
    ("tls/old-protocol", {"pci-dss:4.2.1"}, {"nist-800-53:SC-17"}),
])
def test_controls_for_a_rule(rule: str, expected: set[str], absent: set[str]) -> None:
    got = compliance.controls_for(rule)
    assert expected <= set(got) and not absent & set(got)
    assert len(got) == len(set(got))


def test_rules_without_a_mapping_and_lookalikes_map_to_nothing() -> None:
    for rule in ("gate/threshold", "pre-commit/hook-failed", "evaluate/regression", "PICKLE/dangerous-global",
                 "xpickle/dangerous-global", ""):
        assert compliance.controls_for(rule) == (), rule


def test_sarif_rules_carry_their_controls_as_tags() -> None:
    doc = to_sarif(stage("model-scan", hit("pickle/dangerous-global", Severity.CRITICAL, "m.pkl"),
                         hit("pre-commit/hook-failed", Severity.LOW)))
    tags = {r["id"]: r["properties"]["tags"] for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert tags["pickle/dangerous-global"][0] == "security"
    assert {"owasp-ml:ML06", "atlas:AML.T0010.003"} <= set(tags["pickle/dangerous-global"])
    assert tags["pre-commit/hook-failed"] == ["security"]


def control_threshold(control: tuple[str, ...], max_: int = 0) -> Threshold:
    return Threshold(id="llm", stage=Selector(), tool=Selector(), severity=None, security_severity=None, max=max_,
                     line=4, control=Selector(control))


def test_a_control_threshold_counts_only_findings_mapped_to_it() -> None:
    agg: rules.Tally = Counter({("model-scan", "prompt", "prompt/instruction-override", Severity.MEDIUM, 5.5): 2,
                                ("model-scan", "pickle", "pickle/dangerous-global", Severity.CRITICAL, 9.5): 3,
                                ("code-scan", "bandit", "bandit/B301", Severity.HIGH, 8.0): 7})
    v = rules.threshold(control_threshold(("owasp-llm:LLM01",)), agg, "p.yml")
    assert v is not None and v.message == ("2 findings at any severity mapped to owasp-llm:LLM01 (max 0; "
                                           "model-scan: 2)")
    assert rules.threshold(control_threshold(("owasp-llm:LLM01",), max_=2), agg, "p.yml") is None
    whole = rules.threshold(control_threshold(("owasp-llm:*",)), agg, "p.yml")
    assert whole is not None and whole.message.startswith("5 findings")
    # A finding mapped to two selected controls counts once; an exclusion takes a control out.
    both = rules.threshold(control_threshold(("owasp-ml:ML06", "atlas:AML.T0010.003")), agg, "p.yml")
    assert both is not None and both.message.startswith("3 findings")
    assert rules.threshold(control_threshold(("owasp-llm:*", "!owasp-llm:LLM01", "!owasp-llm:LLM03")), agg,
                           "p.yml") is None
    # Without a control every finding counts.
    plain = Threshold(id="t", stage=Selector(), tool=Selector(), severity=None, security_severity=None, max=0, line=4)
    got = rules.threshold(plain, agg, "p.yml")
    assert got is not None and got.message.startswith("12 findings")


def test_findings_of_unknown_rule_count_toward_a_control_threshold() -> None:
    # A truncated SARIF's dropped findings have no rule: they could be the very ones the policy forbids.
    agg: rules.Tally = Counter({("model-scan", "prompt", rules.UNKNOWN_RULE, Severity.HIGH, 8.0): 4})
    v = rules.threshold(control_threshold(("owasp-llm:LLM01",)), agg, "p.yml")
    assert v is not None and v.message.startswith("4 findings")


POLICY = """version: 1
required-stages: [code-scan]
thresholds:
  - id: no-high-or-critical
    severity: high
    max: 0
  - id: no-prompt-injection
    control: owasp-llm:LLM01
    max: 0
"""


def test_policy_with_a_control_threshold_gates_the_findings_mapped_to_it(tmp_path: Path) -> None:
    prompt = ToolRun("prompt", ToolStatus.OK)
    (tmp_path / "red").mkdir()
    (tmp_path / "green").mkdir()
    red = evaluate(tmp_path / "red", POLICY, stage("code-scan"),
                   stage("model-scan", hit("prompt/instruction-override", Severity.LOW, "prompts/p.txt"),
                         tools=(prompt,)))
    assert [(v.kind, v.rule) for v in red.violations] == [("threshold", "no-prompt-injection")]
    assert red.controls == {"owasp-llm:LLM01": 1, "atlas:AML.T0051": 1}
    green = evaluate(tmp_path / "green", POLICY, stage("code-scan"),
                     stage("model-scan", hit("notebook/home-path", Severity.LOW, "n.ipynb"), tools=(prompt,)))
    assert green.passed and green.controls == {}
    doc = report.to_json(red)
    assert doc["compliance"]["owasp-llm"]["controls"]["LLM01"] == {"title": "Prompt injection", "open": 1}
    assert doc["compliance"]["owasp-llm"]["version"] == "2025"
    md = report.markdown(red)
    assert "### Findings by framework control" in md and "| `owasp-llm:LLM01` Prompt injection | 1 |" in md


def test_waived_findings_leave_the_control_counts(tmp_path: Path) -> None:
    text = POLICY + """waivers:
  - id: w1
    rule: prompt/instruction-override
    reason: a test prompt that quotes an attack
    owner: '@sec'
    expires: 2026-07-31
"""
    v = evaluate(tmp_path, text, stage("code-scan"),
                 stage("model-scan", hit("prompt/instruction-override", Severity.LOW, "p.txt"),
                       tools=(ToolRun("prompt", ToolStatus.OK),)))
    assert v.passed and v.controls == {} and v.waived == 1


@pytest.mark.parametrize("control", ["owasp-llm:LLM11", "owasp-lm:*", "LLM01", ["atlas:*", "!nist:SI-7"]])
def test_a_control_that_names_nothing_is_a_policy_error(tmp_path: Path, control: object) -> None:
    f = tmp_path / "p.yml"
    f.write_text("version: 1\nthresholds:\n  - id: x\n    max: 0\n    control: " + json.dumps(control) + "\n",
                 encoding="utf-8")
    with pytest.raises(policy.PolicyError) as err:
        policy.load(f)
    assert f"{f}:5: thresholds[0].control:" in err.value.diagnostics() and "names no framework control" in (
        err.value.diagnostics())


def test_a_valid_control_loads(tmp_path: Path) -> None:
    f = tmp_path / "p.yml"
    f.write_text("version: 1\nthresholds:\n  - id: x\n    control: [atlas:*, '!atlas:AML.T0055']\n", encoding="utf-8")
    t = policy.load(f).thresholds[0]
    assert t.control == Selector(("atlas:*", "!atlas:AML.T0055"))


def test_stage_results_unchanged_by_tags() -> None:
    # The tags are on rules only; results (and so fingerprints) are what they were.
    r = StageResult("model-scan", (hit("pickle/dangerous-global", Severity.CRITICAL, "m.pkl"),), (), {})
    res = to_sarif(r)["runs"][0]["results"][0]
    assert "tags" not in res.get("properties", {})


def test_the_report_groups_findings_by_control(tmp_path: Path) -> None:
    from mlsec_actions.report import page
    from mlsec_actions.report.collect import Sources, collect, findings
    from mlsec_actions.sarif import write_sarif

    sarif_dir = tmp_path / "sarif"
    write_sarif(stage("model-scan", hit("prompt/instruction-override", Severity.LOW, "a.txt"),
                      hit("prompt/instruction-override", Severity.LOW, "b.txt"),
                      hit("pre-commit/hook-failed", Severity.LOW)), sarif_dir / "model-scan.sarif")
    found = findings(sarif_dir)
    assert [(c["control"], c["findings"]) for c in found["controls"]] == [("owasp-llm:LLM01", 2),
                                                                          ("atlas:AML.T0051", 2)]
    html = page.render(collect(Sources(sarif_dir=sarif_dir)))
    section = html[html.index('<section id="compliance">'):html.index('<section id="coverage">')]
    assert "<td>owasp-llm:LLM01</td><td>Prompt injection</td><td>2</td>" in section


def framework_sections() -> str:
    """docs/compliance.md's per-framework part, made from the data: the docs cannot drift from the mappings."""
    raw = json.loads((ROOT / "src/mlsec_actions/data/compliance.json").read_text(encoding="utf-8"))
    out = []
    for fid, f in raw["frameworks"].items():
        out += [f"## {fid}", "", f"{f['title']} ({f['version']}), <{f['url']}>.", "",
                "| control | title | rules |", "|---|---|---|"]
        for cid, title in f["controls"].items():
            globs = [g for m in raw["mappings"] if f"{fid}:{cid}" in m["controls"] for g in m["rules"]]
            shown = ", ".join(f"`{g}`" for g in dict.fromkeys(globs)) or "(none of ours yet)"
            out.append(f"| `{fid}:{cid}` | {title} | {shown} |")
        out.append("")
    return "\n".join(out)


def test_the_docs_list_every_mapping() -> None:
    doc = (ROOT / "docs" / "compliance.md").read_text(encoding="utf-8")
    assert framework_sections() in doc


def test_the_docs_example_policy_loads_and_gates(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "compliance.md").read_text(encoding="utf-8")
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "red").mkdir()
    v = evaluate(tmp_path / "red", example, stage("code-scan"),
                 stage("model-scan", hit("gguf/chat-template-injection", Severity.LOW, "m.gguf"),
                       tools=(ToolRun("gguf", ToolStatus.OK),)))
    assert [x.message for x in v.violations] == [
        "1 findings at any severity mapped to owasp-llm:LLM01 (max 0; model-scan: 1)"]
    assert f"A violation reads `threshold: {v.violations[0].message}`" in doc
