"""bandit: Python SAST over every Python file of the tree, mapped to rules `bandit/<test id>`.

bandit reads a `.bandit` INI from the folders it scans, a YAML or `pyproject.toml` `[tool.bandit]` with
`-c`, and skips lines marked `# nosec`. It runs as `python -I -m bandit` from a folder of ours, on the
list of the tree's regular `.py` files (so no link is followed and no folder is searched for a
`.bandit`), with `--ini` and `-c` pointing at files shipped in the package and `--ignore-nosec`. With
`repo_config` the repository's `.bandit` and `pyproject.toml` settings and `# nosec` apply, each a
coverage gap. Code snippets bandit quotes are not kept (they may hold secrets). A file bandit cannot
parse is a `tool-error` gap; a crash, a timeout or a report that is not bandit's is a failed tool.

bandit has no parallelism of its own and is often the slowest tool of code-scan, so a large tree's files
are shared out, balanced by size, over one bandit process per core; the reports are joined, and any one
process that fails makes bandit a failed tool (no partial result is taken for a whole one).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlsec_actions import redact
from mlsec_actions.analyzers import tree
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Rule, Severity, ToolRun, ToolStatus
from mlsec_actions.tools.base import Isolation, ToolSpec, execute, safe

DATA = Path(__file__).resolve().parent.parent / "data" / "bandit"
INI, CONFIG = DATA / "bandit.ini", DATA / "bandit.yaml"
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "mlsec-results", "__pycache__", ".tox", ".pytest_cache",
                       ".mypy_cache"})
MAX_FILES = 20_000
SHARE_BYTES = 512 * 1024
"""Python source per bandit process at least: below it one more process costs more CPU (bandit's start-up,
0.25 s) than it saves in wall time (about a second of bandit's work)."""

SPEC = ToolSpec(
    name="bandit",
    executable="bandit",
    version_args=("--version",),
    version_pattern=r"^\S+ (\d+\.\d+\.\d+)",  # `python -m bandit` prints `__main__.py 1.9.4`
    ok_exit_codes=frozenset({0, 1}),  # 1: issues found
    install_hint="install mlsec-actions[sast] (the pinned bandit)",
    isolation=Isolation(discovers=(".bandit", "pyproject.toml"), forced_flags=("--ini", "--configfile"),
                        python_module="bandit"),
    distribution="bandit",  # `python -I -m bandit --version` cost 0.25 s of CPU per scan
)


def python_files(root: Path, gaps: list[CoverageGap]) -> list[Path]:
    """The tree's regular `.py` files (links and special files are never given to bandit)."""
    found: list[Path] = []
    for folder, files in tree.folders(root, SKIP_DIRS, gaps):  # iterative and depth-bounded (the limit is a gap)
        for name in files:
            full = Path(folder) / name
            if name.endswith(".py") and stat.S_ISREG(full.lstat().st_mode):
                found.append(full)
    if len(found) > MAX_FILES:
        gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"only the first {MAX_FILES} of {len(found)} Python files "
                                "were given to bandit"))
    return found[:MAX_FILES]


def _config_args(root: Path, repo_config: bool) -> tuple[list[str], list[CoverageGap]]:
    ini, config, extra, gaps = INI, CONFIG, ["--ignore-nosec"], []
    if repo_config:
        extra = []
        gaps.append(CoverageGap(GapKind.ALLOW_RULE, "# nosec comments honoured by bandit (--repo-ignore-files)"))
        for name in (".bandit", "pyproject.toml"):
            theirs = root / name
            if not theirs.is_file() or theirs.is_symlink():
                continue
            if name == ".bandit":
                ini = theirs
            elif "[tool.bandit" in theirs.read_text(encoding="utf-8", errors="replace"):
                config = theirs
            else:
                continue
            gaps.append(CoverageGap(GapKind.ALLOW_RULE, f"the repository's {name} bandit settings were applied "
                                    "(--repo-ignore-files)", path=name))
    return ["--ini", str(ini), "--configfile", str(config), *extra], gaps


def shares(files: list[Path], cores: int) -> list[list[Path]]:
    """The files shared out over at most `cores` processes, largest first to the lightest share, so the shares'
    sizes are balanced; each share keeps the tree's order."""
    sizes = [f.lstat().st_size for f in files]
    count = max(1, min(cores, len(files), sum(sizes) // SHARE_BYTES))
    loads: list[int] = [0] * count
    picked: list[list[int]] = [[] for _ in range(count)]
    for i in sorted(range(len(files)), key=lambda i: (-sizes[i], i)):
        lightest = loads.index(min(loads))
        picked[lightest].append(i)
        loads[lightest] += sizes[i]
    return [[files[i] for i in sorted(share)] for share in picked]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use, not the machine's
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def scan(root: Path, timeout: float, repo_config: bool = False) -> tuple[list[Finding], ToolRun]:
    """Run bandit on the tree's Python files and turn its JSON report into findings."""
    gaps: list[CoverageGap] = []
    files = python_files(root, gaps)
    flags, config_gaps = _config_args(root, repo_config)
    gaps += config_gaps
    if not files:
        return [], ToolRun("bandit", ToolStatus.SKIPPED, message="no Python files", gaps=tuple(gaps))
    parts = shares(files, _cores())
    with tempfile.TemporaryDirectory(prefix="mlsec-bandit-") as tmp:
        def one(n: int) -> tuple[ToolRun, Any]:
            return _run(parts[n], flags, Path(tmp), n, timeout, root)

        with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="bandit") as pool:
            done = list(pool.map(one, range(len(parts))))
    failed = [run for run, _ in done if run.status is not ToolStatus.OK]
    if failed:  # one share unscanned is bandit not run: its findings are not a whole result
        return [], replace(failed[0], gaps=(*failed[0].gaps, *gaps))
    first = done[0][0]
    # One command line for the record: the shares' options (the first's report path) and every file.
    command = (*first.command[:len(first.command) - len(parts[0])], *(str(f) for f in files))
    run = replace(first, command=command, exit_code=max(r.exit_code or 0 for r, _ in done), gaps=tuple(gaps))
    base = str(root)
    results = [r for _, data in done for r in data["results"] if isinstance(r, dict)]
    findings = [f for f in (_finding(r, base) for r in results) if f is not None]
    errors = [CoverageGap(GapKind.TOOL_ERROR, safe(f"bandit could not check this file: {e.get('reason', '?')}"),
                          path=_rel(str(e.get("filename", "")), base) or "")
              for _, data in done for e in data.get("errors", []) if isinstance(e, dict)]
    return findings, replace(run, gaps=(*run.gaps, *errors))


def _run(files: list[Path], flags: list[str], tmp: Path, n: int, timeout: float,
         root: Path) -> tuple[ToolRun, Any]:
    """One bandit process on a share of the files: its record and, when it is OK, its report."""
    report = tmp / f"report-{n}.json"
    got = execute(SPEC, [*flags, "--format", "json", "--output", str(report), "--quiet", *(str(f) for f in files)],
                  timeout=timeout, workdir=tmp, scanned=root)
    if got.run.status is not ToolStatus.OK:
        return got.run, None
    try:
        data = json.loads(report.read_bytes())
    except (ValueError, RecursionError, OSError) as e:
        return replace(got.run, status=ToolStatus.FAILED, message=safe(f"report is not JSON: {e}")), None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list) \
            or not isinstance(data.get("errors", []), list):
        return replace(got.run, status=ToolStatus.FAILED, message="output is not a bandit report"), None
    return got.run, data


def _rel(name: str, base: str) -> str | None:
    if not name.startswith(base + "/"):
        return None
    return name[len(base) + 1:]


_SEVERITY = {"HIGH": Severity.HIGH, "MEDIUM": Severity.MEDIUM, "LOW": Severity.LOW}
_PRECISION = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low"}


def _finding(r: dict[str, Any], base: str) -> Finding | None:
    path = _rel(str(r.get("filename", "")), base)
    test_id = "".join(c for c in str(r.get("test_id", "")) if c.isalnum())[:10]
    line = r.get("line_number")
    if path is None or not test_id or not isinstance(line, int) or line < 1:
        return None
    name = str(r.get("test_name") or test_id)
    text = redact.text(str(r.get("issue_text") or name))[:500]
    raw_cwe = r.get("issue_cwe")
    cwe: dict[str, Any] = raw_cwe if isinstance(raw_cwe, dict) else {}
    more = r.get("more_info")
    rule = Rule(id=f"bandit/{test_id}", name="Bandit" + "".join(w.title() for w in name.split("_"))[:60],
                short_description=f"bandit {test_id}: {name}", full_description=text,
                help_text=f"{text} See bandit's documentation for {test_id}.",
                help_uri=more if isinstance(more, str) and more.startswith("https://") else None,
                tags=("sast", "python", "bandit", *([f"external/cwe/cwe-{cwe['id']}"] if cwe.get("id") else [])),
                precision=_PRECISION.get(str(r.get("issue_confidence")), "medium"))
    lines = [n for n in r.get("line_range") or [] if isinstance(n, int)]
    return Finding(rule=rule, severity=_SEVERITY.get(str(r.get("issue_severity")), Severity.MEDIUM),
                   message=f"{text} ({path}, line {line})",
                   location=Location(path, line, max([line, *lines])),
                   properties=(("bandit-confidence", str(r.get("issue_confidence", ""))),))
