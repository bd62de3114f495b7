"""semgrep's report read defensively (a stand-in semgrep writes a crafted report: the real one cannot be made
to lie): only files we gave it and rules we shipped become findings, its errors and silently skipped files are
gaps, a report that is not semgrep's is a failed tool, and the command names our rules and isolation flags."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from mlsec_actions.findings import GapKind, Severity, ToolStatus
from mlsec_actions.tools import semgrep

FAKE = '''#!/bin/sh
if [ "$1" = "--version" ]; then echo 1.185.0; exit 0; fi
out=""; prev=""
for a in "$@"; do [ "$prev" = "--output" ] && out="$a"; prev="$a"; done
printf '%s\\n' "$@" > "$FAKE_ARGV"
cp "$FAKE_REPORT" "$out"
'''


def _result(path: str, rule: str, line: int | str = 3) -> dict:  # type: ignore[type-arg]
    return {"check_id": rule, "path": path, "start": {"line": line, "col": 1}, "end": {"line": line, "col": 9},
            "extra": {"severity": "INFO", "message": "::error::pwned", "lines": "token = 'hf_secret'"}}


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = tmp_path / "fake-semgrep"
    exe.write_text(FAKE)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("MLSEC_SEMGREP_BIN", str(exe))
    monkeypatch.setenv("FAKE_ARGV", str(tmp_path / "argv"))
    monkeypatch.setenv("FAKE_REPORT", str(tmp_path / "report.json"))
    return tmp_path / "report.json"


def _tree(root: Path) -> Path:
    (root / "svc").mkdir(parents=True)
    (root / "svc" / "app.py").write_text("import pickle\n\nx = pickle.loads(data)\n")
    (root / "svc" / "b.py").write_text("y = 1\n")
    (root / "svc" / "link.py").symlink_to(root / "svc" / "b.py")
    return root


def test_only_our_rules_on_files_we_gave_become_findings(tmp_path: Path, fake: Path) -> None:
    root = _tree(tmp_path / "repo")
    app = str(root / "svc" / "app.py")
    fake.write_text(json.dumps({
        "version": "1.185.0",
        "results": [_result(app, "data.semgrep.pickle-untrusted"),
                    _result(app, "tree-rule"),  # a rule we did not ship
                    _result("/etc/passwd", "pickle-untrusted"),
                    _result(str(root / "svc" / ".." / ".." / "outside.py"), "pickle-untrusted"),
                    _result(str(root / "svc" / "link.py"), "pickle-untrusted"),  # never given to it
                    _result(app, "pickle-untrusted", line=0), _result(app, "pickle-untrusted", line="3"),
                    "not a result", {"check_id": "pickle-untrusted", "path": app}],
        "errors": [{"type": ["PartialParsing", []], "path": app, "message": "::error::pwned"}, "junk"],
        "paths": {"scanned": [app]}}))
    findings, run = semgrep.scan(root, 30)
    assert run.status is ToolStatus.OK and run.version == "1.185.0", run.message
    assert [(f.rule.id, f.location.path, f.location.start_line) for f in findings] == \
        [("semgrep/pickle-untrusted", "svc/app.py", 3)]
    only = findings[0]
    assert only.severity is Severity.CRITICAL  # the shipped rule's, not the report's INFO
    assert "pwned" not in only.message and "hf_secret" not in only.message and only.location.snippet is None
    gaps = {(g.kind, g.path) for g in run.gaps}
    assert gaps == {(GapKind.TOOL_ERROR, "svc/app.py"), (GapKind.FILE_SKIPPED, "svc/b.py")}
    assert all("pwned" not in g.detail for g in run.gaps)
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[argv.index("--config") + 1] == str(semgrep.RULES) and argv.count("--config") == 1
    assert set(semgrep.ALWAYS) | {"--disable-nosem"} <= set(argv)
    assert str(root / "svc" / "link.py") not in argv


@pytest.mark.parametrize("report", ["[]", "{\"results\": {}}", "{\"results\": [], \"errors\": 1}", "not json"])
def test_a_report_that_is_not_semgreps_is_a_failed_tool(tmp_path: Path, fake: Path, report: str) -> None:
    fake.write_text(report)
    findings, run = semgrep.scan(_tree(tmp_path / "repo"), 30)
    assert run.status is ToolStatus.FAILED and findings == []


def test_a_tree_without_python_is_skipped_and_big_files_are_gaps(tmp_path: Path, fake: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "README.md").write_text("hi\n")
    assert semgrep.scan(root, 30)[1].status is ToolStatus.SKIPPED
    monkeypatch.setattr(semgrep, "MAX_FILE_BYTES", 10)
    (root / "big.py").write_text("x = 1  # longer than ten bytes\n")
    _, run = semgrep.scan(root, 30)
    assert run.status is ToolStatus.SKIPPED
    assert [(g.kind, g.path) for g in run.gaps] == [(GapKind.FILE_SKIPPED, "big.py")]


def test_a_command_with_other_rules_or_without_its_flags_is_refused() -> None:
    good = ["scan", "--config", str(semgrep.RULES), *semgrep.ALWAYS]
    assert semgrep._check(good) == good
    for bad in (good[:-1], [*good, "--config", "p/default"], ["scan", "--config", "auto", *semgrep.ALWAYS]):
        with pytest.raises(ValueError):
            semgrep._check(bad)
