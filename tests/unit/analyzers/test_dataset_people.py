"""Person names and street addresses as personal data in datasets: found per column with a count and one
redacted example, never the value; decoys (a `name` column of product names, placeholder and fictional
addresses, all-caps words, name-like words inside other words) are not flagged."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mlsec_actions.analyzers import dataset_checks, dataset_pii, dataset_profile
from mlsec_actions.cli import main

GIVEN = ["James", "Mary", "Robert", "Linda", "Kevin", "Sarah"]
SURNAMES = ["Smith", "Garcia", "Nguyen", "McDonald", "Lee-Brown", "Patel"]
STREETS = ["17 Willow Lane", "4821 Oak Ridge Road", "350 5th Avenue", "9 N Main St", "Lindenstraße 12a",
           "1200 Lakeview Blvd"]


@pytest.mark.parametrize(("text", "kinds"), [
    ("James Smith", ["person-name"]),
    ("Smith, James", ["person-name"]),
    ("Mary J. Garcia", ["person-name"]),
    ("contact Kevin McDonald today", ["person-name"]),
    ("Linda Lee-Brown", ["person-name"]),
    ("17 Willow Lane", ["street-address"]),
    ("ship to 4821 Oak Ridge Road, Springfield", ["street-address"]),
    ("Lindenstraße 12a", ["street-address"]),
    # decoys
    ("Rose Garden Deluxe", []), ("Widget Pro 3000", []), ("JAMES SMITH", []), ("james smith", []),
    ("Thomas Edison Bulb", []), ("XJames Smith", []), ("James Smithers", []), ("123 Main Street", []),
    ("742 Evergreen Terrace", []), ("221B Baker Street", []), ("Route 66", []), ("v2 Street", []),
    ("10-12 Downing Street", []), ("1.5 St", []), ("Kelly Green Paint", []), ("John Smith Street", []),
])
def test_names_and_streets(text: str, kinds: list[str]) -> None:
    assert [m.kind for m in dataset_pii.find(text)] == kinds


def test_notebooks_do_not_look_for_names_or_streets() -> None:
    assert not dataset_pii.find("James Smith, 17 Willow Lane", dataset_pii.NOTEBOOK_KINDS)


def _profile(header: list[str], rows: list[list[str]]) -> dataset_profile.Profile:
    p = dataset_profile.new_profile(header, None)
    dataset_profile.add_rows(p, list(range(2, len(rows) + 2)), rows)
    dataset_profile.finish(p)
    return p


def test_names_and_streets_per_column_and_a_product_name_column_is_clean() -> None:
    rng = random.Random(4)  # noqa: S311
    products = ["Rose Garden Deluxe", "Widget Pro 3000", "Grace Hopper Mug", "Kelly Green Paint", "Max Power Drill",
                "Summer Breeze Fan", "Jordan Air Pump", "Hope Street Poster"]
    rows = [[rng.choice(products), f"{rng.choice(GIVEN)} {rng.choice(SURNAMES)}", rng.choice(STREETS), "ab"[i % 2]]
            for i in range(200)]
    found = dataset_checks.findings("c.csv", _profile(["name", "customer", "address", "label"], rows),
                                    dataset_checks.Thresholds())
    pii = {(f.rule.id, f.location.logical): dict(f.properties)["count"] for f in found if f.rule.id.startswith("pii/")}
    assert pii == {("pii/person-name", "column[customer]"): "200", ("pii/street-address", "column[address]"): "200"}
    text = " ".join(f.message for f in found)
    assert not [w for w in [*SURNAMES, *STREETS] if w in text]


def test_data_scan_reports_them_without_the_values(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    rows = "".join(f"{g} {s},{st},x\n" for g, s, st in zip(GIVEN, SURNAMES, STREETS, strict=True))
    (tmp_path / "d" / "people.csv").write_text("who,where,note\n" + rows * 3, encoding="utf-8")
    out = tmp_path / "o.sarif"
    assert main(["data-scan", str(tmp_path / "d"), "--sarif", str(out)]) == 0
    sarif = out.read_text()
    rules = {r["ruleId"] for r in json.loads(sarif)["runs"][0]["results"]}
    assert {"pii/person-name", "pii/street-address"} <= rules
    assert not [w for w in [*SURNAMES, "Willow", "Oak Ridge", "Lindenstraße"] if w in sarif]
