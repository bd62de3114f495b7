"""semgrep: data-flow (taint) SAST for Python with the rules shipped in this package, mapped to `semgrep/<id>`.

semgrep reads `.semgrep.yml`/`.semgrep/` from its current folder when no `--config` is given, fetches rules
from its registry for `--config auto` or `p/...`, honours `.semgrepignore` files and `.gitignore` (through
`git`, which also runs the repository's git configuration), skips lines marked `# nosemgrep`, reads
`SEMGREP_*` variables and `~/.semgrep/settings.yml`, and sends metrics. So it runs from a folder of ours with
`HOME` pointing at an empty folder and every `SEMGREP_*` variable removed, with `--config` naming only the
file shipped in the package, `--metrics=off`, no version check, `--no-git-ignore` (git is never called),
`--x-ignore-semgrepignore-files` and `--disable-nosem`, on the list of the tree's regular `.py` files
(so no folder is searched and no link is followed). With `repo_config`, `# nosemgrep` comments apply (a
coverage gap); the tree's rules and ignore files never do. A file semgrep cannot parse
or gives up on is a `tool-error` gap; a crash, a timeout or a report that is not semgrep's is a failed tool.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from mlsec_actions.analyzers.secrets_rules import CODE_SCAN_DOCS
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Rule, Severity, ToolRun, ToolStatus
from mlsec_actions.tools.base import Isolation, ToolSpec, execute, safe

RULES = Path(__file__).resolve().parent.parent / "data" / "semgrep" / "rules.yaml"
MAX_FILE_BYTES = 2 * 1024 * 1024
"""Larger Python files are not given to semgrep (a gap each): generated code, where taint rules find little."""
SETTINGS = {"SEMGREP_ENABLE_VERSION_CHECK": "0", "SEMGREP_SEND_METRICS": "off"}
"""Set by us: no version check, no metrics (the flags say it too)."""

SPEC = ToolSpec(
    name="semgrep",
    executable="semgrep",
    version_args=("--version",),
    version_pattern=r"(\d+\.\d+\.\d+)",
    ok_exit_codes=frozenset({0}),  # findings do not change the exit code without --error
    version_in_output=True,
    install_hint="install the pinned semgrep with scripts/install-semgrep (a venv of its own; "
                 "the `semgrep` extra on GitHub)",
    isolation=Isolation(discovers=(".semgrep.yml", ".semgrep.yaml", ".semgrep", ".semgrepignore", ".gitignore"),
                        forced_flags=("--config",), env_prefixes=("SEMGREP_",)),
)

ALWAYS = ("--metrics=off", "--disable-version-check", "--no-git-ignore", "--x-ignore-semgrepignore-files")
"""Flags every scan carries (checked before it starts): no metrics, no version check, no git, no ignore files."""

_SEVERITY = {"CRITICAL": Severity.CRITICAL, "ERROR": Severity.HIGH, "HIGH": Severity.HIGH,
             "WARNING": Severity.MEDIUM, "MEDIUM": Severity.MEDIUM, "INFO": Severity.LOW, "LOW": Severity.LOW}


@dataclass(frozen=True)
class OwnRule:
    """One rule of the shipped file, as SARIF describes it (from our file, never from semgrep's output)."""

    rule: Rule
    severity: Severity


def _load_rules() -> dict[str, OwnRule]:
    """The shipped rules by id."""
    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    out: dict[str, OwnRule] = {}
    for r in data["rules"]:
        rid, message = str(r["id"]), " ".join(str(r["message"]).split())
        meta = r.get("metadata", {})
        cwe, title = str(meta.get("cwe", "")), str(meta.get("title") or rid)
        tags = ("sast", "python", "semgrep", *([f"external/cwe/{cwe.lower()}"] if cwe else []),
                *(["taint"] if r.get("mode") == "taint" else []))
        rule = Rule(id=f"semgrep/{rid}", name="Semgrep" + "".join(w.title() for w in rid.split("-")),
                    short_description=f"semgrep {rid}: {title}", full_description=message,
                    help_text=f"{message}. See docs/code-scan.md#semgrep{rid} for what each rule follows.",
                    help_uri=f"{CODE_SCAN_DOCS}#semgrep{rid}", tags=tags, precision="high")
        out[rid] = OwnRule(rule, _SEVERITY[str(r["severity"]).upper()])
    return out


OWN_RULES = _load_rules()
"""The shipped rules by their id in the file (`pickle-untrusted`)."""
SARIF_RULES: tuple[Rule, ...] = tuple(r.rule for r in OWN_RULES.values())
"""Their SARIF descriptions (`semgrep/pickle-untrusted`)."""


def _targets(root: Path, gaps: list[CoverageGap]) -> list[Path]:
    from mlsec_actions.tools.bandit import python_files

    files: list[Path] = []
    for f in python_files(root, gaps):  # regular files only, bounded count and depth (each limit a gap)
        if f.lstat().st_size > MAX_FILE_BYTES:
            gaps.append(CoverageGap(GapKind.FILE_SKIPPED, f"larger than {MAX_FILE_BYTES} bytes: not given to semgrep",
                                    path=str(f.relative_to(root))))
        else:
            files.append(f)
    return files


def _flags(repo_config: bool) -> tuple[list[str], list[CoverageGap]]:
    if not repo_config:
        return ["--disable-nosem"], []
    return [], [CoverageGap(GapKind.ALLOW_RULE, "# nosemgrep comments honoured by semgrep (--repo-ignore-files)")]


def _check(args: list[str]) -> list[str]:
    """The isolation flags that take no value, and our rules only (a bug here fails loudly, not silently)."""
    missing = [f for f in ALWAYS if f not in args]
    if missing or args.count("--config") != 1 or args[args.index("--config") + 1] != str(RULES):
        raise ValueError(f"semgrep command lacks {missing} or names rules other than ours")
    return args


def scan(root: Path, timeout: float, repo_config: bool = False) -> tuple[list[Finding], ToolRun]:
    """Run semgrep with the shipped rules on the tree's Python files and turn its JSON report into findings."""
    gaps: list[CoverageGap] = []
    files = _targets(root, gaps)
    flags, config_gaps = _flags(repo_config)
    gaps += config_gaps
    if not files:
        return [], ToolRun("semgrep", ToolStatus.SKIPPED, message="no Python files", gaps=tuple(gaps))
    with tempfile.TemporaryDirectory(prefix="mlsec-semgrep-") as tmp:
        work, home, report = Path(tmp) / "cwd", Path(tmp) / "home", Path(tmp) / "report.json"
        work.mkdir()
        home.mkdir()
        args = _check(["scan", "--config", str(RULES), *ALWAYS, *flags, "--max-target-bytes", str(MAX_FILE_BYTES),
                       "--json", "--quiet", "--output", str(report), *(str(f) for f in files)])
        got = execute(SPEC, args, timeout=timeout, workdir=work, scanned=root,
                      env={**SETTINGS, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                           "XDG_CACHE_HOME": str(home / ".cache")})
        run = replace(got.run, gaps=(*got.run.gaps, *gaps))
        if run.status is not ToolStatus.OK:
            return [], run
        try:
            data = json.loads(report.read_bytes())
        except (ValueError, RecursionError, OSError) as e:
            return [], replace(run, status=ToolStatus.FAILED, message=safe(f"report is not JSON: {e}"))
    if not isinstance(data, dict) or not isinstance(data.get("results"), list) \
            or not isinstance(data.get("errors", []), list):
        return [], replace(run, status=ToolStatus.FAILED, message="output is not a semgrep report")
    given = {str(f): str(f.relative_to(root)) for f in files}
    findings = [f for f in (_finding(r, given) for r in data["results"] if isinstance(r, dict)) if f is not None]
    errors = [_error_gap(e, given) for e in data.get("errors", []) if isinstance(e, dict)]
    errors += _unscanned(files, data.get("paths"), root)
    found = data.get("version")
    return findings, replace(run, version=str(found)[:40] if isinstance(found, str) and found else run.version,
                             gaps=(*run.gaps, *errors))


def _unscanned(files: list[Path], paths: Any, root: Path) -> list[CoverageGap]:
    """A file we gave that semgrep's report does not list as scanned is a gap (it skips some silently)."""
    scanned = paths.get("scanned") if isinstance(paths, dict) else None
    if not isinstance(scanned, list):
        return [CoverageGap(GapKind.TOOL_ERROR, "semgrep's report does not list the files it scanned")]
    seen = {str(p) for p in scanned}
    return [CoverageGap(GapKind.FILE_SKIPPED, "semgrep skipped this file", path=str(f.relative_to(root)))
            for f in files if str(f) not in seen]


def _error_gap(e: dict[str, Any], given: dict[str, str]) -> CoverageGap:
    what = str(e.get("type", "error"))
    if isinstance(e.get("type"), list) and e["type"]:
        what = str(e["type"][0])
    path = given.get(str(e.get("path", "")), "")
    return CoverageGap(GapKind.TOOL_ERROR, safe(f"semgrep could not check this file: {what}"), path=path)


def _finding(r: dict[str, Any], given: dict[str, str]) -> Finding | None:
    path = given.get(str(r.get("path", "")))  # only a file we gave it: never a path the report made up
    # semgrep prefixes a rule id with the folders of its config file (`data.semgrep.pickle-untrusted`).
    own = OWN_RULES.get(str(r.get("check_id", "")).rsplit(".", 1)[-1])
    start, end = r.get("start"), r.get("end")
    line = start.get("line") if isinstance(start, dict) else None
    last = end.get("line") if isinstance(end, dict) else None
    if path is None or own is None or not isinstance(line, int) or line < 1:
        return None
    return Finding(rule=own.rule, severity=own.severity, message=f"{own.rule.full_description} ({path}, line {line})",
                   location=Location(path, line, last if isinstance(last, int) and last >= line else line))
