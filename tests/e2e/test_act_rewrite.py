"""Unit tests of the harness's `$/` rewrite (pure text; no act needed)."""

from __future__ import annotations

import pytest
import yaml

from tests.e2e.act_rewrite import rewrite_self_refs, self_refs

REPO = "mlsec-actions/mlsec-actions"


def test_step_uses_becomes_owner_repo_path_at_ref() -> None:
    text = "steps:\n  - name: scan\n    uses: $/actions/code-scan\n    with:\n      path: .\n"
    out = rewrite_self_refs(text, REPO, "e2e")
    assert yaml.safe_load(out)["steps"][0]["uses"] == f"{REPO}/actions/code-scan@e2e"
    assert self_refs(out) == []


def test_list_item_quoted_and_commented_forms() -> None:
    text = (
        "- uses: '$/actions/_setup'\n"
        '- uses: "$/actions/code-scan/"  # trailing comment stays\n'
        "jobs:\n  call:\n    uses: $/.github/workflows/mlsecops.yml\n"
    )
    out = rewrite_self_refs(text, REPO, "v1")
    assert "- uses: 'mlsec-actions/mlsec-actions/actions/_setup@v1'" in out
    assert '- uses: "mlsec-actions/mlsec-actions/actions/code-scan@v1"  # trailing comment stays' in out
    assert "uses: mlsec-actions/mlsec-actions/.github/workflows/mlsecops.yml@v1" in out


def test_other_uses_and_text_untouched() -> None:
    text = (
        "- uses: ./actions/code-scan\n"
        "- uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1\n"
        "- run: echo '$/actions/not-a-uses'\n"
        "# uses: $/only/in/a/comment\n"
    )
    assert rewrite_self_refs(text, REPO, "e2e") == text


def test_finds_what_it_rewrites() -> None:
    text = "- uses: $/actions/a\n- uses: $/actions/b\n"
    assert self_refs(text) == ["actions/a", "actions/b"]


@pytest.mark.parametrize(("repo", "ref"), [("not-a-repo", "e2e"), (REPO, "bad ref"), (REPO, "x;y")])
def test_rejects_malformed_repo_or_ref(repo: str, ref: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        rewrite_self_refs("- uses: $/a\n", repo, ref)
