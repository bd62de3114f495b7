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
