"""`mlsec data-scan` as a process on a tree the test builds: splits with 1% shared rows, a customer file
with personal data, a dataset card, hostile files (broken quoting, non-UTF-8 bytes and names, workflow
commands and HTML as column names, a symlink out of the tree). The SARIF is validated by the session hook;
no personal value reaches the SARIF, the log or the job summary; a bad schema is exit 2."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import notebook_corpus

pytestmark = pytest.mark.integration


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def _mlsec(*args: str, summary: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_"))}
    if summary is not None:
        env.update(GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(summary.with_suffix(".out")))
    return subprocess.run([str(Path(sys.executable).parent / "mlsec"), "data-scan", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("dscan")
    root = base / "repo"
    rng = random.Random(21)  # noqa: S311
    train = [[f"{rng.gauss(0, 1):.6f}", f"{rng.gauss(3, 2):.6f}", rng.choice("ab")] for _ in range(3000)]
    test = [[f"{rng.gauss(0, 1):.6f}", f"{rng.gauss(3, 2):.6f}", rng.choice("ab")] for _ in range(990)] + train[:10]
    _write(root / "sets" / "train.csv", ["x1", "x2", "label"], train)
    _write(root / "sets" / "test.csv", ["x1", "x2", "label"], test)
    (root / "sets" / "README.md").write_text("---\nlicense: cc-by-4.0\nsource_datasets:\n- original\n---\n")
    people = [[f"c{i}.name@mailbox-{i % 7}.org", notebook_corpus.luhn_card(rng), notebook_corpus.iban(rng),
               f"{rng.randint(100, 599)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"] for i in range(40)]
    _write(root / "crm" / "customers.csv", ["email", "card", "iban", "ssn"], people)
    _write(root / "crm" / "hostile.csv", ["::error::pwned", "<img src=x onerror=alert(1)>", "[l](https:evil.test)"],
           [["1", "2", "3"]] * 5)
    (root / "crm" / "broken.csv").write_text('a,b\n"unterminated,1\n' + "x" * 10 + "\n", encoding="utf-8")
    (root / "crm" / os.fsdecode(b"n\xe9-\xff.csv")).write_bytes(b"a,b\n\xff\xfe,1\n")
    (root / "crm" / "rows.jsonl").write_text('{"a": 1}\n"not an object"\n', encoding="utf-8")
    (root / "crm" / "outside.csv").symlink_to("/etc/passwd")
    sarif, summary, schema = base / "out" / "data-scan.sarif", base / "summary.md", base / "schema.json"
    proc = _mlsec(str(root), "--sarif", str(sarif), "--source-root", str(root), "--write-schema", str(schema),
                  summary=summary)
    return {"proc": proc, "sarif": sarif, "summary": summary, "schema": schema, "root": root, "base": base,
            "people": people, "doc": json.loads(sarif.read_text()) if sarif.is_file() else {}}


def _by(scanned: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [r for run in scanned["doc"]["runs"] for r in run.get("results", []) if r["ruleId"] == rule]


def _uri(result: dict[str, Any]) -> str:
    return str(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])


def test_leakage_pii_and_licence(scanned: dict[str, Any]) -> None:
    assert scanned["proc"].returncode == 0, scanned["proc"].stderr
    [leak] = _by(scanned, "data/split-leakage")
    assert _uri(leak) == "sets/test.csv" and leak["properties"]["count"] == "10"
    pii = {(_uri(r), r["ruleId"], r["properties"]["count"]) for r in _by(scanned, "pii/email") +
           _by(scanned, "pii/payment-card") + _by(scanned, "pii/iban") + _by(scanned, "pii/national-id")}
    assert pii == {("crm/customers.csv", rule, "40") for rule in ("pii/email", "pii/payment-card", "pii/iban",
                                                                  "pii/national-id")}
    licence = {_uri(r) for r in _by(scanned, "data/missing-licence")}
    assert licence == {"crm/broken.csv"}  # the first file of crm/; sets/ has a card with a licence
    assert not _by(scanned, "data/label-flip") and not _by(scanned, "data/conflicting-duplicates")


def test_hostile_files_are_findings_and_gaps(scanned: dict[str, Any]) -> None:
    unreadable = {_uri(r) for r in _by(scanned, "data/unreadable")}
    assert {"crm/broken.csv", "crm/rows.jsonl"} <= unreadable
    assert any(u.startswith("crm/n") and u.endswith(".csv") for u in unreadable), unreadable
    gaps = scanned["doc"]["runs"][0]["properties"]["mlsec-coverage"]["gaps"]
    assert any(g.get("path") == "crm/outside.csv" for g in gaps), gaps


def test_no_value_command_or_markup_leaks(scanned: dict[str, Any]) -> None:
    text = scanned["sarif"].read_text() + scanned["proc"].stderr + scanned["summary"].read_text()
    text += scanned["schema"].read_text()
    for row in scanned["people"]:
        for value in row:
            assert value[2:-2] not in text, value
    assert "::error::pwned" not in scanned["proc"].stderr
    summary = scanned["summary"].read_text()
    assert "<img" not in summary and "](https" not in summary


def test_schema_round_trip_and_drift(scanned: dict[str, Any]) -> None:
    schema = json.loads(scanned["schema"].read_text())
    assert schema["files"]["sets/train.csv"]["columns"] == [
        {"name": "x1", "type": "number"}, {"name": "x2", "type": "number"}, {"name": "label", "type": "string"}]
    schema["files"]["sets/train.csv"]["columns"][0]["type"] = "string"
    schema["files"]["sets/gone.csv"] = {"columns": []}
    changed = scanned["base"] / "changed.json"
    changed.write_text(json.dumps(schema))
    sarif = scanned["base"] / "drift" / "data-scan.sarif"
    proc = _mlsec(str(scanned["root"]), "--sarif", str(sarif), "--schema", str(changed))
    assert proc.returncode == 0, proc.stderr
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    drift = sorted(r["message"]["text"] for r in results if r["ruleId"] == "data/schema-drift")
    assert len(drift) == 2 and "x1: string -> number" in drift[1] and "not found" in drift[0]


def test_a_bad_schema_is_exit_2_naming_the_file(scanned: dict[str, Any]) -> None:
    bad = scanned["base"] / "bad-schema.json"
    bad.write_text("[" * 50 + "]" * 50)
    out = scanned["base"] / "b" / "x.sarif"
    proc = _mlsec(str(scanned["root"] / "sets"), "--sarif", str(out), "--schema", str(bad))
    assert proc.returncode == 2 and "bad-schema.json" in proc.stderr and "Traceback" not in proc.stderr
