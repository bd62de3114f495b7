"""bandit with the real tool (the pinned `sast` extra): Flask handlers' unsafe loads found, safe forms not,
the scanned tree's `.bandit`, `pyproject.toml [tool.bandit]` and `# nosec` ignored unless opted in (then
gaps), links never given to it, unparsable files as gaps, and a broken bandit failing closed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mlsec_actions.findings import GapKind, ToolStatus
from mlsec_actions.tools import bandit

HANDLER = '''import pickle, subprocess, yaml
from flask import request

def load():
    return pickle.load(open(request.args["path"], "rb"))

def parse():
    return yaml.load(request.data)

def run():
    subprocess.call(request.args["cmd"], shell=True)  # nosec

def safe():
    return yaml.safe_load(request.data)
'''


def _tree(root: Path) -> Path:
    (root / "svc").mkdir(parents=True)
    (root / "svc" / "app.py").write_text(HANDLER)
    return root


def _ids(findings: list) -> set[tuple[str, str, int | None]]:  # type: ignore[type-arg]
    return {(f.rule.id, f.location.path, f.location.start_line) for f in findings}


def test_real_bandit_reports_unsafe_loads_and_nosec_lines(tmp_path: Path) -> None:
    findings, run = bandit.scan(_tree(tmp_path / "r"), 120)
    assert run.status is ToolStatus.OK and run.version == "1.9.4", run.message
    ids = _ids(findings)
    assert {("bandit/B301", "svc/app.py", 5), ("bandit/B506", "svc/app.py", 8),
            ("bandit/B602", "svc/app.py", 11)} <= ids
    assert not [i for i in ids if i[2] == 14]  # yaml.safe_load is not reported
    assert all(f.location.snippet is None for f in findings)
    assert all(f.rule.id.startswith("bandit/") and "cwe" in " ".join(f.rule.tags) for f in findings
               if f.rule.id in {"bandit/B301", "bandit/B506"})


def test_repository_settings_do_not_steer_it_unless_opted_in(tmp_path: Path) -> None:
    root = _tree(tmp_path / "r")
    (root / ".bandit").write_text("[bandit]\nskips = B301,B506,B602\n")
    (root / "pyproject.toml").write_text('[tool.bandit]\nskips = ["B301", "B506", "B602"]\n')
    findings, run = bandit.scan(root, 120)
    assert {"bandit/B301", "bandit/B506", "bandit/B602"} <= {f.rule.id for f in findings}
    assert not [g for g in run.gaps if g.kind is GapKind.ALLOW_RULE]
    findings, run = bandit.scan(root, 120, repo_config=True)
    assert not {"bandit/B301", "bandit/B506", "bandit/B602"} & {f.rule.id for f in findings}
    assert {g.path for g in run.gaps if g.kind is GapKind.ALLOW_RULE} == {"", ".bandit", "pyproject.toml"}


def test_links_are_not_given_and_unparsable_files_are_gaps(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    outside = tmp_path / "outside.py"
    outside.write_text("import pickle\npickle.loads(b'')\n")
    (root / "link.py").symlink_to(outside)
    (root / "broken.py").write_text("def (:\n")
    findings, run = bandit.scan(root, 120)
    assert findings == []
    assert [(g.kind, g.path) for g in run.gaps] == [(GapKind.TOOL_ERROR, "broken.py")]


def test_no_python_files_is_skipped_not_failed(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("x\n")
    assert bandit.scan(tmp_path, 10)[1].status is ToolStatus.SKIPPED


def _fake(tmp_path: Path, body: str) -> Path:
    fake = tmp_path / "fake-bandit"
    fake.write_text(f"#!/bin/sh\ncase \"$*\" in *--version*) echo 'bandit 1.9.4'; exit 0;; esac\n{body}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return fake


@pytest.mark.parametrize(("body", "status"), [
    ("exit 2", ToolStatus.FAILED),
    ("exit 0", ToolStatus.FAILED),
    ('for a; do case "$p" in --output) echo "{}" > "$a";; esac; p="$a"; done; exit 0', ToolStatus.FAILED),
    ("sleep 30", ToolStatus.TIMEOUT),
])
def test_broken_bandit_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
                                    status: ToolStatus) -> None:
    monkeypatch.setenv("MLSEC_BANDIT_BIN", str(_fake(tmp_path, body)))
    findings, run = bandit.scan(_tree(tmp_path / "r"), 2)
    assert run.status is status and findings == []


def _sized(root: Path, sizes: dict[str, int]) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    for name, size in sizes.items():
        (root / name).write_bytes(b"#" * size)
    return [root / name for name in sizes]


def test_shares_are_balanced_by_size_and_keep_the_tree_order(tmp_path: Path) -> None:
    unit = bandit.SHARE_BYTES
    files = _sized(tmp_path, {"a.py": 3 * unit, "b.py": unit, "c.py": unit, "d.py": unit, "e.py": 2 * unit})
    got = bandit.shares(files, 2)
    assert [[f.name for f in share] for share in got] == [["a.py", "c.py"], ["b.py", "d.py", "e.py"]]
    assert [[f.name for f in share] for share in bandit.shares(files, 3)] == [["a.py"], ["d.py", "e.py"],
                                                                             ["b.py", "c.py"]]
    assert bandit.shares(files, 1) == [files]


def test_shares_never_outnumber_cores_files_or_the_source(tmp_path: Path) -> None:
    unit = bandit.SHARE_BYTES
    assert len(bandit.shares(_sized(tmp_path / "a", {"a.py": 10 * unit, "b.py": 1}), 8)) == 2  # two files
    small = _sized(tmp_path / "b", {f"{n}.py": unit // 4 for n in range(12)})  # 3 shares' worth of source
    assert len(bandit.shares(small, 8)) == 3 and len(bandit.shares(small, 2)) == 2
    tiny = _sized(tmp_path / "c", {f"{n}.py": unit // 4 - 1 for n in range(4)})  # just under one share
    assert bandit.shares(tiny, 8) == [tiny]
    assert bandit.shares([], 4) == [[]]


def _spread(root: Path) -> Path:
    """Findings in many files, with one bandit cannot parse among them."""
    root.mkdir(parents=True)
    for n in range(6):
        (root / f"m{n}.py").write_text(f"import pickle\n\n\ndef f{n}(data):\n    return pickle.loads(data)\n")
    (root / "broken.py").write_text("def (:\n")
    return root


def test_bandit_over_several_processes_reports_what_one_does(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    root = _spread(tmp_path / "r")
    monkeypatch.setattr(bandit, "_cores", lambda: 1)
    alone, run_alone = bandit.scan(root, 120)
    monkeypatch.setattr(bandit, "SHARE_BYTES", 1)
    monkeypatch.setattr(bandit, "_cores", lambda: 3)
    assert len(bandit.shares(bandit.python_files(root, []), 3)) == 3
    shared, run = bandit.scan(root, 120)
    assert run.status is ToolStatus.OK and run.version == run_alone.version
    assert _ids(shared) == _ids(alone) == {(rule, f"m{n}.py", line) for n in range(6)
                                             for rule, line in (("bandit/B403", 1), ("bandit/B301", 5))}
    assert [(g.kind, g.path) for g in run.gaps] == [(GapKind.TOOL_ERROR, "broken.py")]
    assert run.exit_code == 1 and sorted(run.command[-7:]) == sorted(str(f) for f in bandit.python_files(root, []))


@pytest.mark.parametrize(("body", "status"), [
    ('case "$*" in *m3.py*) exit 2;; esac; exec "$REAL" "$@"', ToolStatus.FAILED),
    ('case "$*" in *m3.py*) sleep 30;; esac; exec "$REAL" "$@"', ToolStatus.TIMEOUT),
    ('case "$*" in *m3.py*) for a; do [ "$p" = --output ] && echo "[]" > "$a"; p="$a"; done; exit 0;; esac; '
     'exec "$REAL" "$@"', ToolStatus.FAILED),
])
def test_one_share_failing_fails_bandit_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
                                             status: ToolStatus) -> None:
    import sys

    real = tmp_path / "real-bandit"
    real.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -m bandit "$@"\n')
    real.chmod(0o755)
    monkeypatch.setenv("REAL", str(real))
    monkeypatch.setenv("MLSEC_BANDIT_BIN", str(_fake(tmp_path, body)))
    monkeypatch.setattr(bandit, "SHARE_BYTES", 1)
    monkeypatch.setattr(bandit, "_cores", lambda: 3)
    findings, run = bandit.scan(_spread(tmp_path / "r"), 20)
    assert run.status is status and findings == [], run
