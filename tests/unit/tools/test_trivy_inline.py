"""Inline `trivy:ignore` comments in the scanned tree: refused by default (the real trivy judges a copy of the
IaC files without them), honoured only with the opt-in, and then each one is a listed gap (issue 9, seen 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsec_actions.findings import GapKind, ToolStatus
from mlsec_actions.tools import trivy, trivy_inline

BUCKET = 'resource "aws_s3_bucket" "{name}" {{\n  bucket = "{name}"\n  acl    = "public-read"\n}}\n'
PUBLIC_ACL = "trivy/misconfig/AWS-0086"


def _write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three copies of one public bucket: under `#trivy:ignore:*`, under `// tfsec:ignore:<id>` of its
    check, and with no comment; plus a Dockerfile (no inline ignores there) and a plain secret."""
    root = tmp_path_factory.mktemp("inline") / "repo"
    _write(root, "infra/star.tf", "#trivy:ignore:*\n" + BUCKET.format(name="star"))
    _write(root, "infra/deep/by_id.tf", "// tfsec:ignore:aws-s3-block-public-acls\n"
           "#trivy:ignore:AVD-AWS-0086 trivy:ignore:AVD-AWS-0087\n" + BUCKET.format(name="byid"))
    _write(root, "plain/open.tf", BUCKET.format(name="open"))
    _write(root, "Dockerfile", "FROM alpine:3.19\nRUN echo hi\n")
    return root


def _by_file(findings: list, prefix: str = "trivy/misconfig/") -> dict[str, set[str]]:  # type: ignore[type-arg]
    out: dict[str, set[str]] = {}
    for f in findings:
        if f.rule.id.startswith(prefix):
            out.setdefault(f.location.path, set()).add(f.rule.id)
    return out


def test_comments_in_the_tree_are_refused(tree: Path) -> None:
    findings, run = trivy.scan(tree, trivy.TrivyOptions(vuln_db="skip"))
    assert run.status is ToolStatus.OK, run.message
    by_file = _by_file(findings)
    assert PUBLIC_ACL in by_file["plain/open.tf"]
    assert by_file["infra/star.tf"] == by_file["plain/open.tf"]
    assert by_file["infra/deep/by_id.tf"] == by_file["plain/open.tf"]
    assert "Dockerfile" in by_file  # files without comments keep the findings of the scan of the tree
    # Lines are those of the original file (the copy blanks markers in place); no finding is doubled.
    star = [f for f in findings if f.location.path == "infra/star.tf" and f.rule.id == PUBLIC_ACL]
    assert [f.location.start_line for f in star] == [2]
    keys = [(f.rule.id, f.location.path, f.location.start_line) for f in findings]
    assert len(keys) == len(set(keys))
    assert not [g for g in run.gaps if g.kind is GapKind.ALLOW_RULE]
    assert any("3 inline ignore comment(s) in the tree refused" in n for n in run.notes), run.notes


def test_comments_apply_only_when_opted_in_and_each_is_a_gap(tree: Path) -> None:
    findings, run = trivy.scan(tree, trivy.TrivyOptions(vuln_db="skip", repo_config=True))
    assert run.status is ToolStatus.OK, run.message
    by_file = _by_file(findings)
    assert "infra/star.tf" not in by_file  # trivy did suppress it: the opt-in is real
    assert PUBLIC_ACL not in by_file.get("infra/deep/by_id.tf", set())
    assert PUBLIC_ACL in by_file["plain/open.tf"]
    listed = sorted((g.path, g.detail) for g in run.gaps if g.kind is GapKind.ALLOW_RULE)
    assert [p for p, _ in listed] == ["infra/deep/by_id.tf"] * 2 + ["infra/star.tf"]
    assert "`trivy:ignore:*` at line 1" in listed[-1][1] and "--repo-ignore-files" in listed[-1][1]
    assert not any("refused" in n for n in run.notes)


def test_neutralise_blanks_every_spelling_in_place() -> None:
    data = b"#trivy:ignore:*\n  x = 1 # TRIVY : ignore:a\n//tfsec:ignore:b\n/* trivy:ignore:c */\nkeep = 'ignore'\n"
    out = trivy_inline.neutralise(data)
    assert len(out) == len(data) and out.count(b"\n") == data.count(b"\n")
    assert b"ignore:" not in out.lower().replace(b"keep = 'ignore'", b"")
    assert out.endswith(b"keep = 'ignore'\n")
    assert out.split(b"\n")[1].startswith(b"  x = 1 # ")


def test_survey_lists_candidates_and_comments_not_links_or_other_files(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _write(root, "a/main.tf", "x = 1\n\n  # trivy:ignore:AVD-1\n")
    _write(root, "a/notes.py", "# trivy:ignore:*\n")  # not an IaC file: trivy does not judge it
    _write(root, "k8s/app.Dockerfile", "FROM x\n")
    _write(root, "skipme/z.tf", "#trivy:ignore:*\n")
    (root / "link.tf").symlink_to(root / "a" / "main.tf")
    found = trivy_inline.survey(root, ["skipme"])
    assert sorted(found.candidates) == ["a/main.tf", "k8s/app.Dockerfile"]
    assert [(c.path, c.line, c.rule) for c in found.comments] == [("a/main.tf", 3, "AVD-1")]
    view = tmp_path / "view"
    trivy_inline.write_view(root, found.candidates, view)
    assert (view / "a/main.tf").read_bytes() == b"x = 1\n\n  # xxxxxxxxxxxx:AVD-1\n"
    assert (view / "k8s/app.Dockerfile").read_text() == "FROM x\n"
    assert not (view / "link.tf").exists() and not (view / "a/notes.py").exists()


def test_a_file_too_large_to_survey_is_a_gap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    _write(root, "big.tf", "#trivy:ignore:*\n" + "x" * 64)
    monkeypatch.setattr(trivy_inline, "MAX_BYTES", 32)
    found = trivy_inline.survey(root, [])
    assert found.candidates == [] and found.comments == []
    assert [(g.kind, g.path) for g in found.gaps] == [(GapKind.FILE_SKIPPED, "big.tf")]
