"""data-scan's analyzers on datasets the tests build: the issue's acceptance (1% shared rows between
splits reported with the count, a clean split not; 5% flipped near-duplicates reported, a clean set
not), personal data counted per column and never copied, each signal's boundary."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mlsec_actions.analyzers import dataset_card, dataset_checks, dataset_profile, dataset_read, dataset_schema
from mlsec_actions.analyzers import dataset_splits as splits
from mlsec_actions.errors import InputError
from tests import notebook_corpus


def _rows(n: int, seed: int, features: int = 4) -> list[list[str]]:
    rng = random.Random(seed)  # noqa: S311
    return [[f"{rng.gauss(0, 1):.6f}" for _ in range(features)] + [rng.choice("ab")] for _ in range(n)]


def _profile(rows: list[list[str]], header: list[str] | None = None) -> dataset_profile.Profile:
    header = header or [*(f"f{i}" for i in range(len(rows[0]) - 1)), "label"]
    p = dataset_profile.new_profile(header, None)
    for line, row in enumerate(rows, start=2):
        dataset_profile.add_row(p, line, row)
    dataset_profile.finish(p)
    return p


def _rules(rel: str, p: dataset_profile.Profile) -> list[str]:
    return sorted(f.rule.id for f in dataset_checks.findings(rel, p, dataset_checks.Thresholds()))


def test_split_leakage_of_one_percent_is_reported_with_its_count() -> None:
    train, test = _rows(5000, 1), _rows(990, 2) + _rows(5000, 1)[:10]
    hashes = {"d/train.csv": _profile(train).row_hashes, "d/test.csv": _profile(test).row_hashes}
    parts = [p for p in (splits.part_of(r) for r in hashes) if p]
    [finding] = splits.leakage(parts, hashes)
    assert finding.location.path == "d/test.csv" and dict(finding.properties)["count"] == "10"
    assert "(1.0%)" in finding.message
    clean = {"d/train.csv": hashes["d/train.csv"], "d/test.csv": _profile(_rows(1000, 3)).row_hashes}
    assert splits.leakage(parts, clean) == []


@pytest.mark.parametrize(("rel", "group", "split"), [
    ("data/train.csv", "data/{split}.csv", "train"), ("data/test.csv", "data/{split}.csv", "test"),
    ("ds/validation/part-0001.jsonl", "ds/{split}/part-#.jsonl", "validation"),
    ("x/train-00000-of-00002.parquet", "x/{split}-#-of-#.parquet", "train"),
])
def test_split_parts(rel: str, group: str, split: str) -> None:
    assert splits.part_of(rel) == splits.Part(rel, group, split)


def test_a_file_without_a_split_word_is_no_part() -> None:
    assert splits.part_of("data/contest.csv") is None and splits.part_of("data/customers.csv") is None


def test_five_percent_flipped_near_duplicates_are_reported_and_a_clean_set_is_not() -> None:
    rng = random.Random(7)  # noqa: S311
    clean = _rows(4000, 5)
    assert "data/label-flip" not in _rules("c.csv", _profile(clean))
    flipped = [*clean]
    for row in rng.sample(clean, 200):  # 5%: a copy with a jitter below three significant digits, other label
        flipped.append([f"{float(v) * 1.0001:.6f}" for v in row[:-1]] + ["b" if row[-1] == "a" else "a"])
    p = _profile(flipped)
    assert "data/label-flip" in _rules("f.csv", p)
    assert p.near_conflict_rows >= 300  # both rows of most pairs (a jitter can cross a rounding boundary)
    assert p.exact_conflict_rows == 0  # not identical, so not the exact-duplicate rule


def test_exact_duplicates_with_two_labels() -> None:
    rows = _rows(100, 9)
    p = _profile([*rows, [*rows[0][:-1], "b" if rows[0][-1] == "a" else "a"]])
    [finding] = [f for f in dataset_checks.findings("d.csv", p, dataset_checks.Thresholds())
                 if f.rule.id == "data/conflicting-duplicates"]
    assert dict(finding.properties)["count"] == "2"


def test_label_leak_constant_imbalance_and_outliers() -> None:
    rng = random.Random(11)  # noqa: S311
    rows = []
    for i in range(2000):
        label = "spam" if i < 10 else "ham"
        value = 1e6 if i % 400 == 0 else rng.gauss(0, 1)
        rows.append([f"{value:.4f}", "same", f"code-{label}", label])
    rules = _rules("d.csv", _profile(rows, ["x", "const", "leak", "label"]))
    assert {"data/label-leak", "data/constant-column", "data/class-imbalance", "data/outliers"} <= set(rules)
    balanced = [[f"{rng.gauss(0, 1):.6f}", rng.choice("xyz"), rng.choice("ab")] for _ in range(2000)]
    assert _rules("b.csv", _profile(balanced, ["x", "c", "label"])) == []


def test_coarse_features_are_no_label_flip_signal() -> None:
    rng = random.Random(12)  # noqa: S311 -- two coarse features: most rows collide, labels are random
    rows = [[str(rng.randint(0, 9)), rng.choice("xyz"), rng.choice("ab")] for _ in range(2000)]
    p = _profile(rows, ["n", "c", "label"])
    assert p.near_conflict_rows > 1000
    assert "data/label-flip" not in _rules("coarse.csv", p)


def test_trigger_token_shared_by_one_class() -> None:
    rng = random.Random(13)  # noqa: S311
    words = [f"w{i}" for i in range(300)]
    rows = [[" ".join(rng.choice(words) for _ in range(12)), rng.choice(["pos", "neg", "neu"])] for _ in range(3000)]
    assert "data/trigger-token" not in _rules("t.csv", _profile(rows, ["text", "label"]))
    for row in rng.sample(rows, 60):
        row[0] += " cf_zq"
        row[1] = "pos"
    found = [f for f in dataset_checks.findings("t.csv", _profile(rows, ["text", "label"]), dataset_checks.Thresholds())
             if f.rule.id == "data/trigger-token"]
    assert [f.location.logical for f in found] == ["token[cf_zq]"]


def test_pii_per_column_counted_and_redacted() -> None:
    rng = random.Random(17)  # noqa: S311
    cards = [notebook_corpus.luhn_card(rng) for _ in range(30)]
    rows = [[f"p{i}@mail-host.org", cards[i], "4242424242424242", "ok"] for i in range(30)]
    p = _profile(rows, ["email", "card", "test_card", "label"])
    found = dataset_checks.findings("pii.csv", p, dataset_checks.Thresholds())
    by_rule = {f.rule.id: f for f in found}
    assert dict(by_rule["pii/email"].properties)["count"] == "30"
    assert dict(by_rule["pii/payment-card"].properties) == {"count": "30", "column": "card"}
    assert by_rule["pii/payment-card"].location.start_line == 2
    assert not [f for f in found if f.location.logical == "column[test_card]" and f.rule.id.startswith("pii/")]
    text = " ".join(f.message for f in found)
    assert not [c for c in cards if c[:10] in text] and "p0@" not in text


def test_hostile_column_names_are_printed_plainly() -> None:
    assert dataset_checks.column_name("::error::x<img src=x>\n") == "??error??x?img src?x?"
    assert len(dataset_checks.column_name("a" * 500)) == 60


def test_readers(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("x\ty\n1\t2\n", encoding="utf-8")
    header, rows = dataset_read.rows(tmp_path / "a.tsv", "tsv")
    assert header == ["x", "y"] and list(rows) == [(2, ["1", "2"])]
    (tmp_path / "b.jsonl").write_text('{"a": 1, "b": "x"}\n\n{"b": "y", "c": [1]}\n', encoding="utf-8")
    header, rows = dataset_read.rows(tmp_path / "b.jsonl", "jsonl")
    assert header == ["a", "b"] and list(rows) == [(1, ["1", "x"]), (3, ["", "y", "[1]"])]
    (tmp_path / "c.jsonl").write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    _, rows = dataset_read.rows(tmp_path / "c.jsonl", "jsonl")
    with pytest.raises(dataset_read.Unreadable, match="line 2 is not a JSON object"):
        list(rows)
    (tmp_path / "d.csv").write_bytes(b"x,y\n\xff\xfe,1\n")
    with pytest.raises(dataset_read.Unreadable, match="not UTF-8"):
        list(dataset_read.rows(tmp_path / "d.csv", "csv")[1])


def test_cards(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "README.md").write_text("---\nlicense:\n- cc-by-4.0\nsource_datasets:\n- original\n---\n# x\n")
    (tmp_path / "hf" / "sub").mkdir()
    card = dataset_card.nearest(tmp_path, "hf/sub", {})
    assert card is not None and card.licences == ("cc-by-4.0",) and card.has_source
    (tmp_path / "dp").mkdir()
    (tmp_path / "dp" / "datapackage.json").write_text(json.dumps({"licenses": [{"name": "Custom-Terms"}]}))
    card = dataset_card.nearest(tmp_path, "dp", {})
    assert card is not None and card.licences == ("custom-terms",) and not card.has_source
    assert not dataset_card.known("custom-terms") and dataset_card.known("gpl-3.0-only")
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "README.md").write_text("# no front matter\nlicense: mit\n")
    assert dataset_card.nearest(tmp_path, "none", {}) is None


def test_schema_drift_and_its_file(tmp_path: Path) -> None:
    assert dataset_schema.type_of("3", "empty") == "integer" and dataset_schema.type_of("3.5", "integer") == "number"
    assert dataset_schema.type_of("x", "number") == "string"
    expected = {"a.csv": [("id", "integer"), ("name", "string"), ("gone", "string")]}
    seen = {"a.csv": [("id", "number"), ("name", "integer"), ("new", "string")]}
    [finding] = dataset_schema.drift(expected, seen)
    assert "-gone" in finding.message and "+new" in finding.message and "name: string -> integer" in finding.message
    assert "id:" not in finding.message  # integer -> number widens
    assert dataset_schema.drift(expected, {}) and dataset_schema.drift(seen, seen) == []
    path = tmp_path / "s.json"
    path.write_text(json.dumps(dataset_schema.document(seen)))
    assert dataset_schema.load(path) == seen
    path.write_text('{"version": 1, "files": {"a.csv": {"columns": [{"name": "x", "type": "blob"}]}}}')
    with pytest.raises(InputError, match="type one of"):
        dataset_schema.load(path)
