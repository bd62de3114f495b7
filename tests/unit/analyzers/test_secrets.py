"""The in-house secret rules on a corpus built at run time: every planted format found at its line, no
placeholder reported, every drop a gap, and no value (or 12-character window of one) in any message."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest

from mlsec_actions.analyzers import secrets, source_files
from mlsec_actions.analyzers.secrets_rules import RULES, SARIF_RULES
from mlsec_actions.findings import CoverageGap, GapKind
from tests import secret_corpus


def _keys(findings: list) -> set[tuple[str, int | None, str]]:  # type: ignore[type-arg]
    return {(f.location.path, f.location.start_line, f.rule.id) for f in findings}


@pytest.mark.parametrize("seed", range(12))
def test_every_planted_format_is_found_at_its_line_and_nothing_else(tmp_path: Path, seed: int) -> None:
    planted, _ = secret_corpus.build(tmp_path, seed=seed)
    findings, run = secrets.scan(tmp_path)
    assert _keys(findings) == {(p.path, p.line, f"secret/{p.rule}") for p in planted}
    assert run.status.value == "ok" and run.version == secrets.VERSION


def test_corpus_covers_every_general_format_of_the_issue(tmp_path: Path) -> None:
    planted, _ = secret_corpus.build(tmp_path)
    wanted = {"huggingface-token", "openai-api-key", "anthropic-api-key", "wandb-api-key", "replicate-api-token",
              "kaggle-json-key", "databricks-token", "cohere-api-key", "comet-api-key", "pinecone-api-key",
              "langsmith-api-key", "telegram-bot-token", "slack-webhook", "google-api-key", "npm-token", "npmrc-auth",
              "connection-uri-password", "private-key", "aws-access-key-id", "aws-secret-access-key", "github-token",
              "token-in-url", "kaggle-api-token"}
    assert wanted <= {p.rule for p in planted}


def test_no_value_or_window_of_one_reaches_a_finding(tmp_path: Path) -> None:
    planted, _ = secret_corpus.build(tmp_path)
    findings, run = secrets.scan(tmp_path)
    text = repr(findings) + repr(run)
    for p in planted:
        for window in secret_corpus.windows(p.value):
            assert window not in text, (p.rule, window)


def test_decoys_are_not_findings_but_each_drop_is_a_gap(tmp_path: Path) -> None:
    (tmp_path / "setup.md").write_text("\n".join(secret_corpus.DECOY_LINES) + "\n")
    findings, run = secrets.scan(tmp_path)
    assert findings == []
    reasons = {g.detail.split("(", 1)[1] for g in run.gaps}
    assert {"one character repeated)", "a vendor's documented example value)", "a word standing for a value)",
            "a template or variable reference)", "a variable reference, a masked or an elided value)"} <= reasons
    assert all(g.kind is GapKind.ALLOW_RULE and g.path == "setup.md" for g in run.gaps)


def _token(prefix: str, body: str) -> str:
    return prefix + body + secrets.base62(zlib.crc32(body.encode()))


def test_crc32_checksum_decides_github_and_npm_tokens() -> None:
    body = "q7Zr2LxW9pTm4Kc8Vn1Bd6Hs3Fy0Ja"
    good = _token("gh" "p_", body)
    bad = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert secrets.checksum_ok(good) and not secrets.checksum_ok(bad)
    gaps: list[CoverageGap] = []
    assert [f.rule.id for f in secrets.scan_text("a.sh", f"T={good}\n", gaps)] == ["secret/github-token"]
    assert secrets.scan_text("a.sh", f"T={bad}\n", gaps) == []
    assert "checksum does not match" in gaps[-1].detail
    npm = _token("np" "m_", body)
    assert [f.rule.id for f in secrets.scan_text("b", npm, gaps)] == ["secret/npm-token"]


def test_base62_and_entropy() -> None:
    assert secrets.base62(0) == "000000" and secrets.base62(61) == "00000z" and secrets.base62(62) == "000010"
    assert secrets.entropy("") == 0.0 and secrets.entropy("aaaa") == 0.0
    assert secrets.entropy("ab") == pytest.approx(1.0) and secrets.entropy("abcd") == pytest.approx(2.0)


def test_low_entropy_value_of_a_right_shape_is_dropped() -> None:
    gaps: list[CoverageGap] = []
    assert secrets.scan_text("x.py", "k = 'r8" "_" + "ab" * 18 + "a'\n", gaps) == []
    assert "entropy below" in gaps[0].detail


def test_file_specific_rules_apply_only_to_their_file() -> None:
    line = '{"username": "u", "key": "' + "3f9a0c7e" * 4 + '"}\n'
    gaps: list[CoverageGap] = []
    assert [f.rule.id for f in secrets.scan_text(".kaggle/kaggle.json", line, gaps)] == ["secret/kaggle-json-key"]
    assert secrets.scan_text("other.json", line, gaps) == []
    npmrc = "//r/:_authToken=" + "7a1c9e3b-55d2-4f60-9b8e-0c2a4d6f8e1a" + "\n"
    assert [f.rule.id for f in secrets.scan_text("a/.npmrc", npmrc, gaps)] == ["secret/npmrc-auth"]
    assert secrets.scan_text("a/npmrc.txt", npmrc, gaps) == []


def test_a_known_token_inside_a_uri_is_reported_as_that_token() -> None:
    tok = _token("gh" "p_", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5")
    found = secrets.scan_text("p.sh", f"git push https://x:{tok}@github.com/o/r\n", [])
    assert [(f.rule.id, f.location.start_line) for f in found] == [("secret/github-token", 1)]


def test_multi_line_private_key_spans_its_lines() -> None:
    body = "\n".join("MIIEo3b1x" + "Zq8Wk2Lp9Rt4Yc7Vn0Bm5Hj3Gf6Ds1Ae8" * 2 for _ in range(3))
    pem = "x = 1\n-----BEGIN PRIVATE" " KEY-----\n" + body + "\n-----END PRIVATE" " KEY-----\n"
    [f] = secrets.scan_text("k.pem", pem, [])
    assert (f.rule.id, f.location.start_line, f.location.end_line) == ("secret/private-key", 2, 6)
    # An elided key in documentation is not one.
    assert secrets.scan_text("d.md", "-----BEGIN PRIVATE" " KEY-----\n...\n-----END PRIVATE" " KEY-----\n", []) == []


def test_binary_large_and_special_files_are_gaps_not_silence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "model.bin").write_bytes(b"\0\1hf_" + b"Q" * 40)
    monkeypatch.setattr(source_files, "MAX_TEXT_BYTES", 64)
    tail_key = "r8" "_" + "Zq8Wk2Lp9Rt4Yc7Vn0Bm5Hj3Gf6Ds1Ae8Xu4K"
    (tmp_path / "big.txt").write_text("a" * 100 + tail_key)
    (tmp_path / "small.txt").write_text(tail_key)
    (tmp_path / "link").symlink_to("/etc/passwd")
    os.mkfifo(tmp_path / "fifo")
    findings, run = secrets.scan(tmp_path)
    assert _keys(findings) == {("small.txt", 1, "secret/replicate-api-token")}
    kinds = {(g.path, g.kind) for g in run.gaps}
    assert kinds == {("model.bin", GapKind.FILE_SKIPPED), ("big.txt", GapKind.LIMIT_REACHED),
                     ("link", GapKind.FILE_SKIPPED), ("fifo", GapKind.FILE_SKIPPED)}


def test_skipped_folders_are_not_walked(tmp_path: Path) -> None:
    key = "r8" "_" + "Zq8Wk2Lp9Rt4Yc7Vn0Bm5Hj3Gf6Ds1Ae8Xu4K"
    for folder in (".git", "node_modules", ".venv", ".pytest_cache"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x").write_text(key)
    assert secrets.scan(tmp_path)[0] == []


def test_undecodable_file_name_is_scanned_and_named(tmp_path: Path) -> None:
    key = "r8" "_" + "Zq8Wk2Lp9Rt4Yc7Vn0Bm5Hj3Gf6Ds1Ae8Xu4K"
    with open(os.fsencode(tmp_path) + b"/bad\xffname.txt", "w") as fh:  # noqa: PTH123 - a bytes name
        fh.write(key)
    [f] = secrets.scan(tmp_path)[0]
    assert f.location.path == "bad\ufffdname.txt"


def test_every_rule_has_a_sarif_rule_with_its_docs_anchor() -> None:
    assert [r.id for r in SARIF_RULES] == [f"secret/{r.name}" for r in RULES]
    assert len({r.name for r in RULES}) == len(RULES)
    assert all(r.help_uri and r.help_uri.endswith("#secret" + r.id.removeprefix("secret/")) for r in SARIF_RULES)


@pytest.mark.parametrize("seed", range(6))
def test_second_layout_other_file_types_full_recall(tmp_path: Path, seed: int) -> None:
    planted = secret_corpus.build_other(tmp_path, seed=seed)
    findings, _ = secrets.scan(tmp_path)
    assert _keys(findings) == {(p.path, p.line, f"secret/{p.rule}") for p in planted}


def test_past_its_timeout_the_scan_is_a_timeout_not_a_success(tmp_path: Path) -> None:
    from mlsec_actions.analyzers import ml_sast

    for i in range(3):
        (tmp_path / f"f{i}.py").write_text("x = 1\n")
    assert secrets.scan(tmp_path, timeout=-1)[1].status.value == "timeout"
    assert ml_sast.scan(tmp_path, timeout=-1)[1].status.value == "timeout"
    assert secrets.scan(tmp_path, timeout=60)[1].status.value == "ok"
