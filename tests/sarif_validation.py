"""Validate SARIF the way GitHub will: the SARIF 2.1.0 JSON schema, the SARIF Multitool's `Sarif;Ghas`
rules, and our own contract (DESIGN.md: relative URIs, a fingerprint and a line on every result,
`security-severity` on every rule, one category).

The multitool (npm `@microsoft/sarif-multitool`) is installed by `scripts/test` into `.cache/`; if it is
missing this module installs it, and fails loudly if it cannot. Gotchas handled here: the platform binary
is called directly (the npm wrapper runs through a shell that would split "Sarif;Ghas" at ';'), and 5.7.0
has no --force (`--log ForceOverwrite`). The multitool does not report schema violations such as a bad
`level`, hence the separate jsonschema check against the schema the package ships.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import jsonschema

REPO = Path(__file__).resolve().parent.parent
MULTITOOL_VERSION = "5.7.0"
CACHE = Path(os.environ.get("MLSEC_TEST_CACHE", REPO / ".cache"))
NPM_DIR = CACHE / "sarif-multitool"
PKG = NPM_DIR / "node_modules" / "@microsoft" / "sarif-multitool-linux"
_CONSOLE_ERROR = re.compile(r"^(?P<file>.+?)\(\d+,\d+\): error (?P<rule>\w+): (?P<msg>.*)$")


def ensure_multitool() -> Path:
    """Path to the Sarif.Multitool binary, installing the pinned npm package if needed."""
    binary = PKG / "Sarif.Multitool"
    if not binary.is_file():
        NPM_DIR.mkdir(parents=True, exist_ok=True)
        (NPM_DIR / "package.json").write_text('{"name": "mlsec-test-tools", "private": true}\n')
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                        f"@microsoft/sarif-multitool@{MULTITOOL_VERSION}"], cwd=NPM_DIR, check=True)
    if not binary.is_file():
        raise RuntimeError(f"SARIF Multitool not installed at {binary}")
    return binary


@cache
def _schema_validator() -> jsonschema.Draft7Validator:
    ensure_multitool()
    schema = json.loads((PKG / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def contract_errors(doc: dict[str, object]) -> list[str]:
    """Our own rules for SARIF we write (what GitHub needs and the multitool does not check)."""
    errors: list[str] = []
    runs = doc.get("runs")
    assert isinstance(runs, list)
    if len(runs) > 20:
        errors.append(f"{len(runs)} runs (GitHub accepts 20)")
    for i, run in enumerate(runs):
        auto = run.get("automationDetails", {}).get("id", "")
        if not str(auto).startswith("mlsec/"):
            errors.append(f"runs[{i}]: automationDetails.id {auto!r} is not an mlsec/ category")
        rules = run["tool"]["driver"].get("rules", [])
        for rule in rules:
            props = rule.get("properties", {})
            if "security-severity" not in props:
                errors.append(f"rule {rule.get('id')}: no security-severity")
            for key in ("shortDescription", "fullDescription", "help"):
                if not rule.get(key, {}).get("text"):
                    errors.append(f"rule {rule.get('id')}: no {key}")
        results = run.get("results", [])
        if len(results) > 25_000:
            errors.append(f"runs[{i}]: {len(results)} results (GitHub accepts 25,000)")
        for j, res in enumerate(results):
            where = f"runs[{i}].results[{j}]"
            if not res.get("partialFingerprints", {}).get("primaryLocationLineHash"):
                errors.append(f"{where}: no primaryLocationLineHash")
            phys = (res.get("locations") or [{}])[0].get("physicalLocation", {})
            uri = phys.get("artifactLocation", {}).get("uri", "")
            if not uri or uri.startswith("/") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", uri):
                errors.append(f"{where}: uri {uri!r} is not repository-relative")
            # A result in a binary file (a model) has no region; one with a region has a start line.
            if "region" in phys and not isinstance(phys["region"].get("startLine"), int):
                errors.append(f"{where}: region without startLine")
    return errors


def validate(paths: Iterable[Path], *, contract: bool = True) -> dict[Path, list[str]]:
    """Validate files; returns {file: [error, ...]} for every file with errors (empty dict = all valid)."""
    files = [Path(p).resolve() for p in paths]
    problems: dict[Path, list[str]] = {}
    docs: list[Path] = []
    for f in files:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            problems.setdefault(f, []).append(f"not readable JSON: {e}")
            continue
        for err in _schema_validator().iter_errors(doc):
            where = "/".join(map(str, err.absolute_path))
            problems.setdefault(f, []).append(f"schema: {where}: {err.message[:200]}")
        if contract and isinstance(doc, dict) and isinstance(doc.get("runs"), list):
            for err in contract_errors(doc):
                problems.setdefault(f, []).append(f"contract: {err}")
        docs.append(f)
    for start in range(0, len(docs), 200):
        _multitool(docs[start:start + 200], problems)
    return problems


def _multitool(files: list[Path], problems: dict[Path, list[str]]) -> None:
    if not files:
        return
    binary = ensure_multitool()
    # Gotcha: the multitool silently skips files whose names do not end in .sarif, so each file is
    # staged under a .sarif name, and any "skipped" notice is treated as an error.
    with tempfile.TemporaryDirectory(prefix="sarif-check-") as tmp:
        staged: dict[str, Path] = {}
        for i, f in enumerate(files):
            copy = Path(tmp) / f"{i}.sarif"
            shutil.copyfile(f, copy)
            staged[str(copy)] = f
        proc = subprocess.run([str(binary), "validate", *staged, "--rule-kind", "Sarif;Ghas",
                               "--output", str(Path(tmp) / "report.json"), "--log", "ForceOverwrite"],
                              capture_output=True, text=True, check=False, timeout=600)
    if "Analysis completed successfully" not in proc.stdout or "skipped entirely" in proc.stdout:
        for f in files:
            problems.setdefault(f, []).append(f"multitool did not check it: {proc.stdout[-300:]} {proc.stderr[-300:]}")
        return
    for line in proc.stdout.splitlines():
        match = _CONSOLE_ERROR.match(line.strip())
        if match:
            target = staged.get(match["file"], Path(match["file"]))
            problems.setdefault(target, []).append(f"multitool {match['rule']}: {match['msg'][:300]}")
