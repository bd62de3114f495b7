"""JSON arrays of records as datasets: read one element at a time (elements cut by every read boundary
still parse; the buffer stays bounded), the same rows as the JSON Lines form of the same records, and
every broken shape a finding naming the file, never a crash; a `.json` file that is not an array is no
dataset at all (no finding)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mlsec_actions.analyzers import dataset_json, dataset_read
from mlsec_actions.cli import main

RECORDS = [{"name": "a\\u00e9", "n": 1.5e3, "tags": ["x", {"y": None}], "ok": True},
           {"n": -0, "extra": "line\nbreak", "name": "b,\"q\""}, {}, {"name": "ü" * 50}]


def _rows(path: Path, kind: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    header, stream = dataset_read.rows(path, kind)
    return header, list(stream)


@pytest.mark.parametrize("read", [1, 2, 3, 7, 64, 65536])
def test_elements_cut_at_any_read_boundary_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 read: int) -> None:
    monkeypatch.setattr(dataset_json, "_READ", read)
    path = tmp_path / "d.json"
    path.write_text("\ufeff [\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS) + "\n]\n",
                    encoding="utf-8")
    with path.open("rb") as fh:
        got = list(dataset_json.Elements(fh))
    assert [obj for _, obj in got] == RECORDS
    assert [line for line, _ in got] == [2, 3, 4, 5]


def test_same_rows_as_json_lines(tmp_path: Path) -> None:
    rng = random.Random(3)  # noqa: S311
    records = [{"id": i, "email": f"u{i}@mail{i % 3}.org", "v": rng.random(), "label": rng.choice("ab")}
               for i in range(3000)]
    (tmp_path / "a.json").write_text(json.dumps(records, indent=1), encoding="utf-8")
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    h1, rows1 = _rows(tmp_path / "a.json", "json")
    h2, rows2 = _rows(tmp_path / "a.jsonl", "jsonl")
    assert h1 == h2 == ["id", "email", "v", "label"]
    assert [v for _, v in rows1] == [v for _, v in rows2]
    assert rows1[0][0] == 2 and rows1[1][0] == 8  # the line each element starts on (indent=1: six lines each)


def test_memory_stays_bounded_on_a_long_array(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[")
        fh.write(",".join(json.dumps({"i": i, "t": "x" * 100}) for i in range(20_000)))
        fh.write("]")
    biggest = 0
    with path.open("rb") as fh:
        elements = dataset_json.Elements(fh)
        for n, _ in enumerate(elements):
            if n % 100 == 0:
                biggest = max(biggest, len(elements._buf))
    assert elements.number == 20_000 and path.stat().st_size > 2_000_000
    assert biggest < 3 * dataset_json._READ


@pytest.mark.parametrize(("text", "why"), [
    ('[{"a": 1}, {"a": 2}', "not closed"),
    ('[{"a": 1},]', "not JSON"),
    ('[{"a": 1} {"a": 2}]', "expected ',' or ']' after element 1"),
    ('[{"a": 1}, [1, 2]]', "is not a JSON object"),
    ('[{"a": 1}] trailing', "text after the array"),
    ('[{"a": tru}]', "not JSON"),
    ('[{"a": "unterminated}]', "not JSON"),
    ("[" + '{"a": ' * 40 + "1" + "}" * 40 + "]", "nested too deeply"),
    ("[" + "[" * 100_000 + "]" * 100_000 + "]", "nested too deeply"),
])
def test_broken_arrays_are_unreadable(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(dataset_read.Unreadable, match=why):
        _rows(path, "json")


def test_an_element_too_large_and_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_text('[{"a": "' + "x" * (dataset_json.MAX_ELEMENT + 10) + '"}]', encoding="utf-8")
    with pytest.raises(dataset_read.Unreadable, match="over"):
        _rows(path, "json")
    path.write_bytes(b'[{"a": "\xff\xfe"}]')
    with pytest.raises(dataset_read.Unreadable, match="not UTF-8"):
        _rows(path, "json")


@pytest.mark.parametrize("text", ['{"compilerOptions": {}}', "", "   ", "// comment\n[1]", '"x"', "12"])
def test_json_that_is_not_an_array_is_no_dataset(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tsconfig.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(dataset_read.NotDataset):
        dataset_read.rows(path, "json")


def test_data_scan_reads_json_arrays_and_names_broken_ones(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "README.md").write_text("---\nlicense: cc-by-4.0\nsource_datasets: [original]\n---\n")
    (repo / "data" / "people.json").write_text(json.dumps(
        [{"contact": f"person{i}@mail-host.org", "label": "ab"[i % 2]} for i in range(50)]))
    (repo / "data" / "broken.json").write_text('[{"a": 1}, {"a": ')
    (repo / "package.json").write_text('{"name": "x", "version": "1.0.0"}')
    out = tmp_path / "o.sarif"
    assert main(["data-scan", str(repo), "--sarif", str(out)]) == 0
    run = json.loads(out.read_text())["runs"][0]
    got = {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) for r in run["results"]}
    assert ("pii/email", "data/people.json") in got
    assert ("data/unreadable", "data/broken.json") in got
    assert not [r for r in run["results"] if "package.json" in json.dumps(r)]
    assert "person1@" not in out.read_text()
