"""Dependency licences with the real trivy, in the same trivy process as secrets and misconfigurations: an
npm lockfile's AGPL and GPL packages are findings on their lines, MIT is only counted."""

from __future__ import annotations

import json
from pathlib import Path

from mlsec_actions.findings import ToolStatus
from mlsec_actions.tools import trivy

LOCK = {"name": "web", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": {
    "": {"name": "web", "version": "1.0.0",
         "dependencies": {"gpl-thing": "1.0.0", "agpl-thing": "1.0.0", "mit-thing": "2.0.0"}},
    **{f"node_modules/{name}": {"version": version, "license": lic,
                                "resolved": f"https://registry.npmjs.org/{name}/-/{name}-{version}.tgz",
                                "integrity": "sha512-AAAA"}
       for name, version, lic in (("gpl-thing", "1.0.0", "GPL-3.0"), ("agpl-thing", "1.0.0", "AGPL-3.0"),
                                  ("mit-thing", "2.0.0", "MIT"))}}}


def _tree(root: Path) -> Path:
    (root / "web").mkdir(parents=True)
    (root / "web" / "package-lock.json").write_text(json.dumps(LOCK, indent=2))
    (root / "web" / "package.json").write_text(json.dumps({"name": "web", "version": "1.0.0",
                                                           "dependencies": LOCK["packages"][""]["dependencies"]}))
    return root


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_forbidden_and_restricted_licences_are_found_in_the_one_trivy_run(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo")
    findings, run = trivy.scan(root, trivy.TrivyOptions(vuln_db="skip", timeout=300))
    assert run.status is ToolStatus.OK, run.message
    lock = (root / "web" / "package-lock.json").read_text()
    got = {(f.rule.id, f.severity.name, f.location.start_line) for f in findings if "license" in f.rule.tags}
    assert got == {("trivy/license/forbidden", "CRITICAL", _line(lock, '"node_modules/agpl-thing"')),
                   ("trivy/license/restricted", "HIGH", _line(lock, '"node_modules/gpl-thing"'))}
    assert run.command.count("--scanners") == 1
    assert "license" in run.command[run.command.index("--scanners") + 1].split(",")
    assert any("1 notice" in n for n in run.notes), run.notes


POLICY = """\
version: 1
tool-errors: warn
code-scan:
  licenses:
    allow: [MIT, Apache-2.0, BSD-3-Clause]
    deny: ["AGPL-3.0*"]
    unknown: {unknown}
"""


def test_stage_inventory_gate_policy_and_sbom_licences(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    """The real stage records every package's licences in its SARIF; the gate judges them against
    `code-scan.licenses` from that SARIF alone; the sbom stage puts them on the BOM's components."""
    root = _tree(tmp_path / "repo")
    (root / "requirements.txt").write_text("flask==3.0.0\n")  # trivy has no licence for a requirements file
    results = tmp_path / "results"
    proc = run_mlsec("code-scan", str(root), "--sarif", str(results / "code-scan.sarif"), "--vuln-db", "skip")
    assert proc.returncode == 0, proc.stderr
    run = json.loads((results / "code-scan.sarif").read_text())["runs"][0]
    inventory = run["properties"]["mlsec-licenses"]
    assert inventory["complete"] is True
    got = {(p["ecosystem"], p["name"], p["version"], tuple(p["licenses"]), p["path"]) for p in inventory["packages"]}
    # trivy normalises the lockfile's deprecated ids (GPL-3.0 -> GPL-3.0-only).
    assert got == {("npm", "gpl-thing", "1.0.0", ("GPL-3.0-only",), "web/package-lock.json"),
                   ("npm", "agpl-thing", "1.0.0", ("AGPL-3.0-only",), "web/package-lock.json"),
                   ("npm", "mit-thing", "2.0.0", ("MIT",), "web/package-lock.json"),
                   ("pip", "flask", "3.0.0", (), "requirements.txt")}

    for unknown, expected in (("fail", {"license-unknown flask", "license agpl-thing", "license gpl-thing"}),
                              ("warn", {"license agpl-thing", "license gpl-thing"})):
        (tmp_path / "policy.yml").write_text(POLICY.format(unknown=unknown))
        verdict = tmp_path / f"verdict-{unknown}.json"
        proc = run_mlsec("gate", "--sarif-dir", str(results), "--policy", str(tmp_path / "policy.yml"),
                         "--verdict", str(verdict), "--sarif", str(tmp_path / f"gate-{unknown}.sarif"))
        assert proc.returncode == 3, proc.stderr  # the gate failed
        doc = json.loads(verdict.read_text())
        assert {f"{v['kind']} {v['message'].split()[0]}" for v in doc["violations"]} == expected
        agpl = next(v for v in doc["violations"] if "agpl-thing" in v["message"])
        assert agpl["message"] == ("agpl-thing 1.0.0 (npm, web/package-lock.json) is under AGPL-3.0-only: "
                                   "AGPL-3.0-only is denied ('AGPL-3.0*')")
    assert any("flask" in w and "no licence" in w for w in doc["warnings"])

    out = tmp_path / "sbom.cdx.json"
    proc = run_mlsec("sbom", str(root), "--no-discover", "--licenses-from", str(results / "code-scan.sarif"),
                     "--out", str(out), "--digest-cache", str(tmp_path / "digests.json"))
    assert proc.returncode == 0, proc.stderr
    comps = {c["bom-ref"]: c for c in json.loads(out.read_text())["components"]}
    assert comps["npm:mit-thing@2.0.0"]["licenses"] == [{"license": {"id": "MIT"}}]
    assert comps["npm:agpl-thing@1.0.0"]["licenses"] == [{"license": {"id": "AGPL-3.0-only"}}]
    assert comps["npm:agpl-thing@1.0.0"]["purl"] == "pkg:npm/agpl-thing@1.0.0"
    assert "licenses" not in comps["pypi:flask"]  # declared, no licence known: none claimed


def test_a_failed_trivy_leaves_no_inventory_and_the_licence_gate_fails_closed(tmp_path: Path,
                                                                             run_mlsec) -> None:  # type: ignore[no-untyped-def]
    root = _tree(tmp_path / "repo")
    results = tmp_path / "results"
    fake = tmp_path / "trivy"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    proc = run_mlsec("code-scan", str(root), "--sarif", str(results / "code-scan.sarif"), "--vuln-db", "skip",
                     env={"MLSEC_TRIVY_BIN": str(fake)})
    assert proc.returncode == 1
    run = json.loads((results / "code-scan.sarif").read_text())["runs"][0]
    assert run["properties"]["mlsec-licenses"]["complete"] is False
    (tmp_path / "policy.yml").write_text(POLICY.format(unknown="warn"))
    verdict = tmp_path / "verdict.json"
    proc = run_mlsec("gate", "--sarif-dir", str(results), "--policy", str(tmp_path / "policy.yml"),
                     "--verdict", str(verdict), "--sarif", str(tmp_path / "gate.sarif"))
    assert proc.returncode == 3
    kinds = [v["kind"] for v in json.loads(verdict.read_text())["violations"]]
    assert kinds == ["license-unchecked"]
