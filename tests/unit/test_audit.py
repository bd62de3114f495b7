"""Org-wide audit planning and merging (src/mlsec_actions/audit.py, docs/audit.md); hostile names and results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions import audit, audit_models, cli
from mlsec_actions.errors import UsageError


def test_a_list_becomes_targets_in_order_without_duplicates() -> None:
    got = audit.parse_targets("acme/models, acme/service@release\nacme/models\n  other-org/x.y_z  ")
    assert got == [audit.Target("acme/models"), audit.Target("acme/service", "release"),
                   audit.Target("other-org/x.y_z")]
    assert [t.slot for t in got] == ["acme--models", "acme--service--release", "other-org--x.y_z"]
    assert got[1].artifact == "mlsec-audit-acme--service--release"


@pytest.mark.parametrize("entry", ["acme", "acme/", "/x", "acme/x/y", "-acme/x", "acme-/x", "ac--me/x", "a/..", "a/.",
                                   "acme/x;rm", "acme/$(id)", "a" * 40 + "/x", "acme/" + "x" * 101, "acme/x@",
                                   "acme/x@../../etc", "acme/x@-rf", "acme/x@a b", "acme/x@/abs", "acme/x@v1/",
                                   "acme/x\u200b", "::error::x/y"])
def test_a_bad_entry_is_refused_naming_it(entry: str) -> None:
    with pytest.raises(UsageError) as err:
        audit.parse_targets(f"acme/ok, {entry}")
    assert "--repositories" in str(err.value)


def test_names_that_differ_only_in_case_are_refused() -> None:
    with pytest.raises(UsageError, match="share the results name acme--x"):
        audit.parse_targets("acme/x Acme/X")


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(UsageError, match="no repository"):
        audit.parse_targets(" ,\n ")


def test_chunks_split_evenly_and_a_matrix_holds_at_most_256() -> None:
    targets = [audit.Target(f"acme/r{i}") for i in range(600)]
    parts = [audit.chunk(targets, i, 3) for i in (1, 2, 3)]
    assert [len(p) for p in parts] == [200, 200, 200] and [t for p in parts for t in p] == targets
    assert len(audit.chunk(targets[:256], 1, 1)) == 256
    with pytest.raises(UsageError, match="at most 256 jobs per matrix; split the list over at least 3 runs"):
        audit.chunk(targets, 1, 2)
    with pytest.raises(UsageError, match="between 1 and 3"):
        audit.chunk(targets, 4, 3)
    assert audit.chunk(targets[:5], 2, 2) == targets[3:5]


def test_plan_prints_the_matrix(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    assert cli.main(["audit-plan", "--repositories", "acme/a acme/b@v2"]) == 0
    matrix = json.loads(capsys.readouterr().out)
    assert matrix == {"include": [{"repository": "acme/a", "ref": "", "slot": "acme--a",
                                   "artifact": "mlsec-audit-acme--a"},
                                  {"repository": "acme/b", "ref": "v2", "slot": "acme--b--v2",
                                   "artifact": "mlsec-audit-acme--b--v2"}]}
    assert "count=2" in out.read_text(encoding="utf-8")
    assert cli.main(["audit-plan", "--repositories", "acme/a@.."]) == 2


def _verdict(folder: Path, doc: object) -> None:
    folder.mkdir(parents=True)
    (folder / "verdict.json").write_text(json.dumps(doc), encoding="utf-8")


HOSTILE = "<img src=x onerror=alert(1)> | ::set-output name=x::y [link](https://evil.example)"


def test_merge_fails_closed_on_missing_and_unreadable_results(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _verdict(results / "mlsec-audit-acme--ok", {"verdict": "pass", "violations": [], "counts": {
        "code-scan": {"critical": 0, "high": 0, "medium": 2, "low": 1, "info": 0}}, "coverage": {"total": 3}})
    _verdict(results / "mlsec-audit-acme--bad", {"verdict": "fail", "violations": [{"kind": "threshold"}] * 2,
                                                  "counts": {"a": {"high": 4, "low": True}, "b": {"high": -5}}})
    _verdict(results / "mlsec-audit-acme--odd", {"verdict": HOSTILE})
    (results / "mlsec-audit-acme--junk").mkdir()
    (results / "mlsec-audit-acme--junk" / "verdict.json").write_text("{not json", encoding="utf-8")
    _verdict(results / "mlsec-audit-acme--unplanned", {"verdict": "pass"})
    targets = audit.parse_targets("acme/ok acme/bad acme/odd acme/junk acme/gone")
    rows = audit.merge(targets, results)
    assert [(r.target.repository, r.verdict) for r in rows] == [
        ("acme/ok", "pass"), ("acme/bad", "fail"), ("acme/odd", "missing"), ("acme/junk", "missing"),
        ("acme/gone", "missing")]
    assert rows[0].counts == (0, 0, 2, 1, 0) and rows[0].gaps == 3
    assert rows[1].counts == (0, 4, 0, 0, 0) and rows[1].violations == 2  # booleans and negatives are not counts
    assert "not valid JSON" in rows[3].problem and "no results" in rows[4].problem
    assert not audit.passed(rows) and audit.to_json(rows)["verdict"] == "fail"
    assert audit.passed(rows[:1]) and not audit.passed([])


def test_hostile_text_is_escaped_in_the_summary_and_the_page(tmp_path: Path) -> None:
    target = audit.Target("acme/x")
    row = audit.Row(target, "missing", problem=HOSTILE)
    md = audit.markdown([row])
    note = md.splitlines()[-1]
    assert "<img" not in note and "::set-output" not in note and "](https://evil.example)" not in note
    assert note.count(" | ") == 9  # the finding's pipe is escaped: the row keeps its columns
    page = audit.page([row])
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page and "default-src 'none'" in page


def test_merge_command_writes_everything_then_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "results"
    _verdict(results / "mlsec-audit-acme--a", {"verdict": "pass"})
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    out = tmp_path / "merged"
    assert cli.main(["audit-merge", str(results), "--repositories", "acme/a", "--out", str(out)]) == 0
    assert cli.main(["audit-merge", str(results), "--repositories", "acme/a acme/b", "--out", str(out)]) == 3
    assert json.loads((out / "audit-verdict.json").read_text(encoding="utf-8"))["verdict"] == "fail"
    assert (out / "audit-summary.md").is_file() and (out / "audit-report.html").is_file()
    assert cli.main(["audit-merge", str(tmp_path / "nope"), "--repositories", "acme/a", "--out", str(out)]) == 2
    # With chunks, only this chunk's repositories must have results.
    assert cli.main(["audit-merge", str(results), "--repositories", "acme/a acme/b", "--chunks", "2", "--chunk", "1",
                     "--out", str(out)]) == 0


PIN = "ab" * 32


def test_model_uris_become_pinned_targets_with_safe_results_names() -> None:
    got = audit_models.parse_models(
        f"https://models.example.com/org/Fraud%20Model.PKL?X-Amz-Signature=s3cr3t#sha256={PIN},"
        f"\ns3://bucket-1/v1/weights.safetensors#sha256={'cd' * 32}  https://h.example/#sha256={PIN}"
        f" s3://bucket-1/v1/weights.safetensors#sha256={'cd' * 32}")
    assert [(m.file_name, m.slot) for m in got] == [
        ("Fraud_Model.PKL", f"model--fraud_model.pkl--{PIN[:16]}"),
        ("weights.safetensors", f"model--weights.safetensors--{'cd' * 8}"),
        ("model", f"model--model--{PIN[:16]}")]
    assert got[0].artifact == f"mlsec-audit-model--fraud_model.pkl--{PIN[:16]}"
    assert got[0].label == "https://models.example.com/org/Fraud%20Model.PKL?…"  # no presigned signature in reports
    assert audit_models.matrix(got[:1]) == {"include": [{
        "model": f"https://models.example.com/org/Fraud%20Model.PKL?X-Amz-Signature=s3cr3t#sha256={PIN}",
        "label": got[0].label, "slot": got[0].slot, "artifact": got[0].artifact}]}


@pytest.mark.parametrize(("entry", "problem"), [
    ("https://h.example/m.pkl", "not URL#sha256="),
    (f"https://h.example/m.pkl#sha256={PIN.upper()}", "not URL#sha256="),
    (f"https://h.example/m.pkl#sha256={PIN}0", "not URL#sha256="),
    (f"https://h.example/m.pkl#md5={PIN}", "not URL#sha256="),
    (f"http://models.example.com/m.pkl#sha256={PIN}", "plain http:// is allowed only to a loopback address"),
    (f"file:///etc/passwd#sha256={PIN}", "URL scheme 'file' is not allowed"),
    (f"gs://org/model#sha256={PIN}", "URL scheme 'gs' is not allowed"),
    (f"hf://org/model@main/m.bin#sha256={PIN}", "not a full 40-hex commit SHA"),
    (f"https://user:pw@h.example/m.pkl#sha256={PIN}", "credentials in a URL are not allowed"),
    (f"s3://B/key#sha256={PIN}", "not an s3://BUCKET/KEY URL"),
    (f"https://h.example/a#b#sha256={PIN}", "URL has a fragment"),
    (f"https://h.example:99999/m#sha256={PIN}", "bad port"),
    (f"https://h.example/\x1b[31m::error::x#sha256={PIN}", "control character"),
])
def test_a_hostile_model_entry_is_refused_naming_it(entry: str, problem: str) -> None:
    with pytest.raises(UsageError) as err:
        audit_models.parse_models(f"https://ok.example/m.pkl#sha256={PIN}\n{entry}")
    message = str(err.value)
    assert message.startswith("--models: ") and problem in message, message
    assert "\x1b" not in message and "::error::" not in message  # the entry is named, made one safe line


def test_two_models_with_one_results_name_are_refused() -> None:
    with pytest.raises(UsageError, match=r"share the results name model--m\.pkl"):
        audit_models.parse_models(f"https://a.example/m.pkl#sha256={PIN} https://b.example/M.pkl#sha256={PIN}")


def test_plan_adds_a_model_matrix_and_writes_a_legs_lock(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    entry = f"https://models.example.com/m.pkl#sha256={PIN}"
    assert cli.main(["audit-plan", "--models", entry]) == 0  # models alone: no repository needed
    printed = capsys.readouterr().out.splitlines()
    assert json.loads(printed[0]) == {"include": []} and json.loads(printed[1])["include"][0]["model"] == entry
    assert "count=0" in out.read_text() and "models-count=1" in out.read_text()
    assert cli.main(["audit-plan", "--models", entry, "--write-lock", str(tmp_path / "leg" / "mlsec.lock")]) == 0
    lock = json.loads((tmp_path / "leg" / "mlsec.lock").read_text())
    assert lock == {"version": 1, "artifacts": [{"name": "m.pkl", "url": "https://models.example.com/m.pkl",
                                                 "sha256": PIN}]}
    assert cli.main(["audit-plan", "--models", f"{entry} https://o.example/n#sha256={PIN}", "--write-lock",
                     str(tmp_path / "two.lock")]) == 2
    assert cli.main(["audit-plan"]) == 2  # neither repositories nor models


def test_merge_has_a_row_per_model_and_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    models = f"https://h.example/ok.pkl#sha256={PIN} https://h.example/bad.pkl#sha256={PIN}"
    ok, _ = audit_models.parse_models(models)
    results = tmp_path / "results"
    _verdict(results / "mlsec-audit-acme--a", {"verdict": "pass"})
    _verdict(results / ok.artifact, {"verdict": "pass", "counts": {"model-scan": {"high": 0}}})
    out = tmp_path / "merged"
    code = cli.main(["audit-merge", str(results), "--repositories", "acme/a", "--models", models, "--out", str(out)])
    assert code == 3
    doc = json.loads((out / "audit-verdict.json").read_text())
    assert [r["repository"] for r in doc["repositories"]] == ["acme/a"]
    assert [(r["model"], r["verdict"]) for r in doc["models"]] == [("https://h.example/ok.pkl", "pass"),
                                                                  ("https://h.example/bad.pkl", "missing")]
    summary = (out / "audit-summary.md").read_text()
    assert "(1 of 3 repositories and models)" in summary and "bad.pkl | missing |" in summary
    assert "](http" not in summary  # a URL is text in the summary, not a link
