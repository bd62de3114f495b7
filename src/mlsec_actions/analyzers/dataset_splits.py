"""Train/test leakage: files of one dataset that are its splits (`train.csv` and `test.csv`,
`train/` and `validation/`, `train-00000-of-00002.parquet`) compared by normalised row hash.

Files are grouped by their path with the split word and digit runs taken out, so shards of one split
are one set; every non-training split is compared with the training split of its group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlsec_actions.analyzers import dataset_rules as R
from mlsec_actions.findings import Finding, Location

_SPLIT = re.compile(r"(?<![a-z])(train(?:ing)?|test(?:ing)?|val(?:id(?:ation)?)?|dev|eval(?:uation)?|holdout)"
                    r"(?![a-z])", re.I)


@dataclass(frozen=True)
class Part:
    """A file that is part of a split."""

    rel: str
    """Its path."""
    group: str
    """Its dataset: the path without the split word and numbers."""
    split: str
    """`train` or the other split's word."""


def part_of(rel: str) -> Part | None:
    """The split a file belongs to, by its path; None when its path names no split."""
    matches = list(_SPLIT.finditer(rel))
    if not matches:
        return None
    word = matches[-1].group(1).lower()
    split = "train" if word.startswith("train") else word
    group = re.sub(r"\d+", "#", rel[:matches[-1].start()] + "{split}" + rel[matches[-1].end():])
    return Part(rel, group, split)


def leakage(parts: list[Part], hashes: dict[str, set[int]]) -> list[Finding]:
    """One finding per non-training split that shares rows with its training split."""
    groups: dict[str, list[Part]] = {}
    for part in parts:
        groups.setdefault(part.group, []).append(part)
    out: list[Finding] = []
    for members in groups.values():
        train: set[int] = set()
        for part in members:
            if part.split == "train":
                train |= hashes.get(part.rel, set())
        if not train:
            continue
        for part in members:
            if part.split == "train" or part.rel not in hashes:
                continue
            rows = hashes[part.rel]
            shared = len(rows & train)
            if shared:
                share = shared / max(1, len(rows))
                out.append(Finding(R.SPLIT_LEAKAGE.rule, f"{shared} of the {len(rows)} distinct rows of {part.rel} "
                                   f"({share:.1%}) are also in the training split", R.SPLIT_LEAKAGE.severity,
                                   Location(part.rel), properties=(("count", str(shared)), ("share", f"{share:.4f}"))))
    return out
