"""Unpinned and unhashed requirements: ranges, bare names, URLs and wildcards are unpinned; `==` exact
pins are not; a file without any --hash is reported once; options and comments are not requirements."""

from __future__ import annotations

from pathlib import Path

from mlsec_actions.analyzers import ml_sast
from mlsec_actions.analyzers.ml_sast_requirements import is_requirements, scan_requirements

TEXT = """# training deps
-r base.txt
--index-url https://pypi.org/simple
torch>=2.0
numpy
transformers[torch]==4.46.0
pandas==2.*
mypkg @ https://example.org/mypkg.tar.gz
scipy==1.14.1 ; python_version >= "3.10"
requests == 2.32.3  # pinned
"""

HASHED = """torch==2.5.1 \\
    --hash=sha256:aaaa
numpy==2.1.0 --hash=sha256:bbbb
"""


def _lines(found: list) -> list[tuple[str, int | None]]:  # type: ignore[type-arg]
    return [(f.rule.id, f.location.start_line) for f in found]


def test_unpinned_lines_and_missing_hashes() -> None:
    assert _lines(scan_requirements("requirements.txt", TEXT)) == [
        ("ml/unpinned-requirement", 4), ("ml/unpinned-requirement", 5), ("ml/unpinned-requirement", 7),
        ("ml/unpinned-requirement", 8), ("ml/unhashed-requirements", 4)]


def test_pinned_and_hashed_file_is_clean() -> None:
    assert scan_requirements("requirements.txt", HASHED) == []


def test_files_without_requirements_are_not_reported() -> None:
    assert scan_requirements("requirements.txt", "# nothing\n-r other.txt\n\n") == []


def test_which_files_are_requirements() -> None:
    assert is_requirements("requirements.txt") and is_requirements("ci/dev-requirements.txt")
    assert is_requirements("requirements/train.txt") and not is_requirements("notes.txt")
    assert not is_requirements("requirements.in")


def test_stage_analyzer_reads_requirements_files(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("torch>=2\n")
    (tmp_path / "notes.txt").write_text("torch>=2\n")
    found, _ = ml_sast.scan(tmp_path)
    assert {(f.rule.id, f.location.path) for f in found} == {("ml/unpinned-requirement", "requirements.txt"),
                                                             ("ml/unhashed-requirements", "requirements.txt")}
