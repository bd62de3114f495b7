"""Is each SARIF this run's and untouched: `--run-id` (sarif-stale), `--expect-stage` (stage-missing),
`--sarif-digest` (sarif-tampered). SARIF is written by our own writer, as the stages write it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlsec_actions import cli
from mlsec_actions.gate import options, policy
from mlsec_actions.gate.engine import Verdict, run_gate
from mlsec_actions.gate.options import BadValue
from mlsec_actions.gate.provenance import Expectations
from mlsec_actions.sarif import write_sarif
from tests.unit.test_gate import TODAY, hit, stage

NO_THRESHOLDS = "version: 1\n"


def sarif_dir(tmp_path: Path, **run_ids: str | None) -> Path:
    """One clean SARIF per stage (`code_scan="run-1"` -> code-scan.sarif stamped with run id run-1)."""
    folder = tmp_path / "sarif"
    for name, run_id in run_ids.items():
        stage_id = name.replace("_", "-")
        write_sarif(stage(stage_id), folder / f"{stage_id}.sarif", run_id=run_id or "")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def gate(tmp_path: Path, folder: Path, expect: Expectations, text: str = NO_THRESHOLDS) -> Verdict:
    pol = tmp_path / "policy.yml"
    pol.write_text(text, encoding="utf-8")
    return run_gate(policy.load(pol), folder, today=TODAY, expect=expect)


def kinds(v: Verdict) -> list[str]:
    return sorted(x.kind for x in v.violations)


# --- run id -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stamped", "expected", "fresh"), [
    ("run-1", "run-1", True),
    ("run-1", "run-10", False),   # a prefix is not the id
    ("run-10", "run-1", False),   # nor is a longer id
    ("RUN-1", "run-1", False),    # compared byte for byte
    (None, "run-1", False),       # no id at all: a file from before run ids, or forged
])
def test_run_id_must_match_exactly(tmp_path: Path, stamped: str | None, expected: str, fresh: bool) -> None:
    folder = sarif_dir(tmp_path, code_scan=stamped)
    verdict = gate(tmp_path, folder, Expectations(run_id=expected))
    assert verdict.passed is fresh, verdict.violations
    if not fresh:
        (v,) = verdict.violations
        assert (v.kind, v.stage, v.path) == ("sarif-stale", "code-scan", str(folder / "code-scan.sarif"))
        assert v.message.startswith(f"{folder / 'code-scan.sarif'}: stage code-scan: ")
        assert repr(expected) in v.message


def test_a_non_string_run_id_is_stale(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, code_scan="7")
    doc = json.loads((folder / "code-scan.sarif").read_text())
    doc["runs"][0]["properties"]["mlsec-run-id"] = 7
    (folder / "code-scan.sarif").write_text(json.dumps(doc))
    assert kinds(gate(tmp_path, folder, Expectations(run_id="7"))) == ["sarif-stale"]


def test_without_a_run_id_nothing_is_checked(tmp_path: Path) -> None:
    assert gate(tmp_path, sarif_dir(tmp_path, code_scan="old", model_scan=None), Expectations()).passed


def test_every_stale_run_is_named_and_fresh_ones_are_not(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, code_scan="old", model_scan="now", sbom="older")
    verdict = gate(tmp_path, folder, Expectations(run_id="now"))
    assert [(v.kind, v.stage) for v in verdict.violations] == [("sarif-stale", "code-scan"), ("sarif-stale", "sbom")]


def test_stale_sarif_does_not_make_a_required_stage_present(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, code_scan="old")
    text = "version: 1\nrequired-stages: [code-scan]\n"
    verdict = gate(tmp_path, folder, Expectations(run_id="now"), text)
    assert kinds(verdict) == ["required-stage-missing", "sarif-stale"]
    assert "in this run" in next(v.message for v in verdict.violations if v.kind == "required-stage-missing")
    assert gate(tmp_path, folder, Expectations(run_id="old"), text).passed


def test_findings_of_a_stale_run_are_still_counted(tmp_path: Path) -> None:
    folder = tmp_path / "sarif"
    write_sarif(stage("code-scan", hit()), folder / "code-scan.sarif", run_id="old")
    verdict = gate(tmp_path, folder, Expectations(run_id="now"), "version: 1\nthresholds:\n  - severity: high\n")
    assert kinds(verdict) == ["sarif-stale", "threshold"]


def test_a_gates_own_sarif_is_not_checked_for_the_run_id(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, code_scan="now", gate="old")
    assert gate(tmp_path, folder, Expectations(run_id="now")).passed


# --- expected stages --------------------------------------------------------------------------------------------


def test_each_expected_stage_needs_a_run(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, code_scan=None)
    verdict = gate(tmp_path, folder, Expectations(stages=("code-scan", "model-scan")))
    (v,) = verdict.violations
    assert (v.kind, v.stage) == ("stage-missing", "model-scan")
    assert "no SARIF run at all" in v.message
    assert gate(tmp_path, folder, Expectations(stages=("code-scan",))).passed


def test_the_first_and_last_expected_stages_are_both_checked(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, sbom=None)
    verdict = gate(tmp_path, folder, Expectations(stages=("code-scan", "sbom", "model-scan")))
    assert [(v.kind, v.stage) for v in verdict.violations] == [("stage-missing", "code-scan"),
                                                               ("stage-missing", "model-scan")]


def test_an_expected_stage_with_only_another_runs_sarif_is_missing(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, code_scan="now", model_scan="old")
    verdict = gate(tmp_path, folder, Expectations(run_id="now", stages=("code-scan", "model-scan")))
    assert [(v.kind, v.stage) for v in verdict.violations] == [("sarif-stale", "model-scan"),
                                                               ("stage-missing", "model-scan")]
    missing = verdict.violations[1]
    assert str(folder / "model-scan.sarif") in missing.message and "another run" in missing.message


# --- digests ----------------------------------------------------------------------------------------------------


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_matching_digests_pass_and_are_recorded(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, code_scan=None)
    want = digest_of(folder / "code-scan.sarif")
    verdict = gate(tmp_path, folder, Expectations(digests=(("code-scan.sarif", want),)))
    assert verdict.passed
    assert [(d.name, d.expected, d.actual, d.status) for d in verdict.digests] == [
        ("code-scan.sarif", want, want, "ok")]


def test_one_changed_byte_is_tampering(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, code_scan=None)
    real = digest_of(folder / "code-scan.sarif")
    wrong = real[:-1] + ("0" if real[-1] != "0" else "1")  # the last digit only
    verdict = gate(tmp_path, folder, Expectations(digests=(("code-scan.sarif", wrong),)))
    (v,) = verdict.violations
    assert (v.kind, v.stage, v.path) == ("sarif-tampered", "code-scan", str(folder / "code-scan.sarif"))
    assert real in v.message and wrong in v.message
    assert [d.status for d in verdict.digests] == ["mismatch"]


def test_a_swapped_file_is_tampering(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, code_scan=None)
    recorded = digest_of(folder / "code-scan.sarif")
    write_sarif(stage("code-scan", hit()), folder / "code-scan.sarif")  # a later job rewrites it
    assert kinds(gate(tmp_path, folder, Expectations(digests=(("code-scan.sarif", recorded),)))) == [
        "sarif-tampered"]


def test_a_missing_file_is_tampering(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, code_scan=None)
    verdict = gate(tmp_path, folder, Expectations(digests=(("model-scan.sarif", "a" * 64),)))
    (v,) = verdict.violations
    assert v.kind == "sarif-tampered" and str(folder / "model-scan.sarif") in v.message
    assert "no such SARIF file" in v.message
    assert [(d.actual, d.status) for d in verdict.digests] == [(None, "missing")]


def test_digest_names_are_relative_to_the_sarif_dir_in_subfolders(tmp_path: Path) -> None:
    folder = tmp_path / "sarif"
    write_sarif(stage("code-scan"), folder / "mlsec-sarif-code-scan" / "code-scan.sarif")
    name, want = options.parse_digest("./mlsec-sarif-code-scan//code-scan.sarif=" +
                                   digest_of(folder / "mlsec-sarif-code-scan" / "code-scan.sarif").upper())
    assert name == "mlsec-sarif-code-scan/code-scan.sarif"
    assert gate(tmp_path, folder, Expectations(digests=((name, want),))).passed
    # The same file under another name is not the recorded one.
    assert kinds(gate(tmp_path, folder, Expectations(digests=(("code-scan.sarif", want),)))) == ["sarif-tampered"]


# --- option values ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "a b", "run\n1", "run\x1b1", "é", "x" * 201])
def test_bad_run_ids_are_refused(text: str) -> None:
    with pytest.raises(BadValue):
        options.parse_run_id(text)


def test_run_id_length_limit_is_inclusive() -> None:
    assert options.parse_run_id("x" * 200) == "x" * 200
    assert options.parse_run_id("1234567890-1-a") == "1234567890-1-a"


@pytest.mark.parametrize("text", ["x.sarif", "=" + "a" * 64, "x.sarif=" + "a" * 63, "x.sarif=" + "a" * 65,
                                  "x.sarif=" + "g" * 64, "../x.sarif=" + "a" * 64, "/etc/x.sarif=" + "a" * 64,
                                  "a\\b.sarif=" + "a" * 64, ".=" + "a" * 64])
def test_bad_digests_are_refused(text: str) -> None:
    with pytest.raises(BadValue):
        options.parse_digest(text)


def test_two_digests_for_one_name_are_refused_and_repeats_collapse() -> None:
    a, b = "a" * 64, "b" * 64
    assert options.unique_digests([("x.sarif", a), ("x.sarif", a), ("y.sarif", b)]) == (("x.sarif", a), ("y.sarif", b))
    with pytest.raises(BadValue, match="two different digests"):
        options.unique_digests([("x.sarif", a), ("x.sarif", b)])


@pytest.mark.parametrize("text", ["evalute", "gate", "", "code-scan\n"])
def test_expected_stages_must_be_catalog_stages_other_than_the_gate(text: str) -> None:
    with pytest.raises(BadValue):
        options.parse_stage(text)


def test_planned_stages_may_be_expected() -> None:
    assert options.parse_stage("evaluate") == "evaluate"


# --- the CLI ----------------------------------------------------------------------------------------------------


def run_cli(tmp_path: Path, folder: Path, *args: str, env: dict[str, str] | None = None,
            monkeypatch: pytest.MonkeyPatch) -> tuple[int, dict[str, object]]:
    for key in ("MLSEC_RUN_ID", "MLSEC_EXPECT_STAGE", "MLSEC_SARIF_DIGEST", "GITHUB_ACTIONS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "out"
    code = cli.main(["gate", "--sarif-dir", str(folder), "--policy", "default", "--verdict", str(out / "v.json"),
                     "--summary", str(out / "s.md"), "--sarif", str(out / "gate.sarif"), *args])
    doc = json.loads((out / "v.json").read_text()) if (out / "v.json").is_file() else {}
    return code, doc


def test_cli_options_reach_the_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = sarif_dir(tmp_path, code_scan="r-42", model_scan="r-42")
    want = digest_of(folder / "code-scan.sarif")
    code, doc = run_cli(tmp_path, folder, "--run-id", "r-42", "--expect-stage", "code-scan", "--expect-stage",
                        "model-scan", "--sarif-digest", f"code-scan.sarif={want}", monkeypatch=monkeypatch)
    assert code == 0, doc.get("violations")
    assert doc["run_id"] == "r-42"
    assert doc["expected_stages"] == ["code-scan", "model-scan"]
    assert doc["sarif_digests"] == [{"name": "code-scan.sarif", "expected": want, "actual": want, "status": "ok"}]
    # The gate's own SARIF carries the run id too (a later gate refuses it from another run).
    gate_sarif = json.loads((tmp_path / "out" / "gate.sarif").read_text())
    assert gate_sarif["runs"][0]["properties"]["mlsec-run-id"] == "r-42"
    assert "run id `r-42`" in (tmp_path / "out" / "s.md").read_text()


def test_cli_reads_the_environment_one_value_per_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = sarif_dir(tmp_path, code_scan="r-1")
    want = digest_of(folder / "code-scan.sarif")
    code, doc = run_cli(tmp_path, folder, env={
        "MLSEC_RUN_ID": "r-2", "MLSEC_EXPECT_STAGE": "code-scan\nmodel-scan\n",
        "MLSEC_SARIF_DIGEST": f"code-scan.sarif={want}\nmodel-scan.sarif={'0' * 64}"}, monkeypatch=monkeypatch)
    assert code == 3
    assert sorted((v["kind"], v["stage"]) for v in doc["violations"]) == [  # type: ignore[union-attr]
        ("required-stage-missing", "code-scan"), ("sarif-stale", "code-scan"), ("sarif-tampered", None),
        ("stage-missing", "code-scan"), ("stage-missing", "model-scan")]
    assert doc["run_id"] == "r-2" and doc["expected_stages"] == ["code-scan", "model-scan"]
    assert [d["status"] for d in doc["sarif_digests"]] == ["ok", "missing"]  # type: ignore[union-attr]


@pytest.mark.parametrize(("args", "problem"), [
    (("--run-id", "a b"), "--run-id: run id must be"),
    (("--expect-stage", "evalute"), "--expect-stage: unknown stage id 'evalute'"),
    (("--expect-stage", "gate"), "--expect-stage: the gate's own SARIF"),
    (("--sarif-digest", "x.sarif=123"), "--sarif-digest: 'x.sarif': the digest must be 64 hexadecimal digits"),
    (("--sarif-digest", "../x.sarif=" + "a" * 64), "--sarif-digest: '../x.sarif': must be a path inside"),
    (("--sarif-digest", "x.sarif=" + "a" * 64, "--sarif-digest", "x.sarif=" + "b" * 64),
     "--sarif-digest: 'x.sarif': two different digests given"),
])
def test_cli_bad_values_exit_2_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                                              problem: str) -> None:
    code, doc = run_cli(tmp_path, sarif_dir(tmp_path, code_scan=None), *args, monkeypatch=monkeypatch)
    assert code == 2 and doc == {}
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert problem in last, last


def test_cli_bad_env_value_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli(tmp_path, sarif_dir(tmp_path, code_scan=None), env={"MLSEC_EXPECT_STAGE": "code-scan\nnope"},
                      monkeypatch=monkeypatch)
    assert code == 2
    assert "MLSEC_EXPECT_STAGE" in capsys.readouterr().err


def test_fifo_named_sarif_fails_closed_at_once(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, code_scan=None)
    os.mkfifo(folder / "x.sarif")  # nothing ever writes to it: a blocking read would hang forever
    verdict = gate(tmp_path, folder, Expectations())
    (v,) = verdict.violations
    assert v.kind == "sarif-malformed" and "not a regular file" in v.message and v.path == str(folder / "x.sarif")


def test_building_the_cli_does_not_import_the_gate_engine() -> None:
    """Every `mlsec` command builds the gate's parser: its option checks must stay light (no msgspec, jsonschema)."""
    code = ("import sys, mlsec_actions.cli as c; c._parser(('gate',)); "
            "print([m for m in ('msgspec', 'jsonschema', 'yaml', 'mlsec_actions.gate.input') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert proc.stdout.strip() == "[]"


def test_a_symlink_named_sarif_fails_closed_without_being_read(tmp_path: Path) -> None:
    folder = sarif_dir(tmp_path, code_scan=None)
    (folder / "x.sarif").symlink_to("/dev/zero")
    (folder / "y.sarif").symlink_to(folder / "code-scan.sarif")  # even to a good file: only regular files count
    verdict = gate(tmp_path, folder, Expectations())
    assert [(v.kind, v.path) for v in verdict.violations] == [("sarif-malformed", str(folder / "x.sarif")),
                                                              ("sarif-malformed", str(folder / "y.sarif"))]
    assert all("symbolic link" in v.message for v in verdict.violations)
