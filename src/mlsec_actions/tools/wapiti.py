"""wapiti (wapiti3 from PyPI, in its own venv: `scripts/install-wapiti`): a black-box web scanner run against one
allowlisted target, its JSON report read into findings.

Isolation: wapiti keeps its configuration and session databases under `~/.wapiti` unless told otherwise; every
scan command carries `--store-config` and `--store-session` pointing into a folder of ours, runs with HOME there
too, and `--no-bugreport` (wapiti otherwise posts crash reports to its authors). The endpoints it uses for
out-of-band checks (SSRF, XXE, DNS) point at the target itself, so no packet leaves for a host the caller did not
list; `--scope folder` keeps the crawl under the target URL's folder.

Report (wapiti's `-f json`): `vulnerabilities`, `anomalies` and `additionals` map a category name to a list of
entries (`method`, `path`, `info`, `level` 0-4, `parameter`, `module`, `wstg`); `classifications` maps the
category to its description and solution; `infos` holds the target, version and `crawled_pages_nbr`.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from mlsec_actions.errors import InputError
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Rule, Severity, ToolRun, ToolStatus
from mlsec_actions.inputs import read_regular
from mlsec_actions.tools.base import Isolation, ToolSpec, execute, safe
from mlsec_actions.web_targets import Target

DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/dast.md"
MAX_REPORT_BYTES = 64 * 1024 * 1024
MAX_ENTRIES = 20_000
DEFAULT_MODULES = "xss,sql,exec,file,crlf,redirect,http_headers,csp,cookieflags"
"""wapiti modules run by default: injections and the passive header checks; none needs the internet."""
OFFLINE_UNSAFE = frozenset({"ssrf", "xxe", "log4shell", "spring4shell", "wapp", "takeover", "nikto", "cms", "wp_enum",
                            "network_device", "ssl"})
"""Modules that contact wapiti's own servers or the internet (or fetch databases): refused."""

SPEC = ToolSpec(
    name="wapiti", executable="wapiti", version_args=("--version",), version_pattern=r"(\d+\.\d+\.\d+)",
    ok_exit_codes=frozenset({0}), install_hint="run scripts/install-wapiti (wapiti3 in its own venv)",
    isolation=Isolation(discovers=(),  # it reads ~/.wapiti: HOME is ours and both stores are forced
                        forced_flags=("--store-config", "--store-session"),
                        env_prefixes=("WAPITI", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")),
)
_LEVELS = {0: Severity.INFO, 1: Severity.LOW, 2: Severity.MEDIUM, 3: Severity.HIGH, 4: Severity.CRITICAL}
_SECTIONS = (("vulnerabilities", None), ("anomalies", Severity.LOW), ("additionals", Severity.INFO))


def modules(text: str) -> str:
    """The `-m` list, checked: known-safe names only (an unsafe one is a UsageError naming it)."""
    from mlsec_actions.errors import UsageError

    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names or any(not re.fullmatch(r"[a-z0-9_]{1,40}", m) for m in names):
        raise UsageError(f"--wapiti-modules {text!r}: a comma-separated list of wapiti module names")
    unsafe = sorted(set(names) & OFFLINE_UNSAFE)
    if unsafe:
        raise UsageError(f"--wapiti-modules: {', '.join(unsafe)} contact(s) hosts outside the target; not run")
    return ",".join(names)


def command(target: Target, report: Path, work: Path, mods: str, depth: int, budget: float) -> list[str]:
    """wapiti's arguments for one target (every isolation flag included)."""
    return ["-u", f"{target.origin}{target.with_query(target.query)}", "--scope", "folder", "-m", mods,
            "-f", "json", "-o", str(report),
            "--store-config", str(work / "config"), "--store-session", str(work / "session"), "--flush-session",
            "--no-bugreport", "-v", "0", "-d", str(depth), "--tasks", "4", "--max-scan-time", f"{budget:.0f}",
            "--max-attack-time", f"{max(budget / 2, 1):.0f}",
            "--endpoint", f"{target.origin}/", "--external-endpoint", f"{target.origin}/",
            "--internal-endpoint", f"{target.origin}/", "--dns-endpoint", "localhost"]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "finding"


def rule_for(category: str, classification: dict[str, Any]) -> Rule:
    """One rule per wapiti category (`wapiti/sql-injection`), its text from the report's classifications."""
    desc = str(classification.get("desc") or category)[:2000]
    fix = str(classification.get("sol") or "See wapiti's description of this category.")[:2000]
    return Rule(id=f"wapiti/{_slug(category)}", name="Wapiti" + _slug(category).title().replace("-", ""),
                short_description=f"wapiti: {category}"[:200], full_description=desc, help_text=fix,
                help_uri=f"{DOCS}#wapiti-findings", tags=("dast", "web"))


def parse(report: Path, target: Target) -> tuple[list[Finding], list[CoverageGap], int, str | None]:
    """(findings, gaps, crawled pages, version) from a wapiti JSON report; InputError when it is not one."""
    try:
        doc = json.loads(read_regular(report, "wapiti report", MAX_REPORT_BYTES))
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError(report, f"not a wapiti JSON report ({type(e).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("vulnerabilities"), dict):
        raise InputError(report, "not a wapiti JSON report (no vulnerabilities mapping)")
    infos = _mapping(doc.get("infos"))
    classes = _mapping(doc.get("classifications"))
    findings: list[Finding] = []
    gaps: list[CoverageGap] = []
    seen = 0
    for section, fixed_severity in _SECTIONS:
        block = doc.get(section)
        if not isinstance(block, dict):
            continue
        for category, entries in block.items():
            if not isinstance(entries, list):
                continue
            rule = rule_for(str(category), _mapping(classes.get(category)))
            for entry in entries:
                seen += 1
                if seen > MAX_ENTRIES:
                    continue
                if isinstance(entry, dict):
                    findings.append(_finding(rule, entry, fixed_severity, target))
    if seen > MAX_ENTRIES:
        gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"wapiti reported {seen} entries; the first {MAX_ENTRIES} "
                                                       "were read"))
    pages = infos.get("crawled_pages_nbr")
    version = str(infos.get("version", "")).removeprefix("Wapiti ").strip() or None
    return findings, gaps, pages if isinstance(pages, int) and not isinstance(pages, bool) else 0, version


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _finding(rule: Rule, entry: dict[str, Any], fixed: Severity | None, target: Target) -> Finding:
    level = entry.get("level")
    severity = fixed if fixed is not None else _LEVELS.get(level if isinstance(level, int) else 1, Severity.LOW)
    path = str(entry.get("path") or "/")[:500]
    method = str(entry.get("method") or "GET")[:10]
    parameter = str(entry.get("parameter") or "")[:200]
    info = str(entry.get("info") or rule.short_description)[:500]
    wstg = entry["wstg"] if isinstance(entry.get("wstg"), list) else []
    props = (("url", f"{target.origin}{path}"), ("method", method), ("parameter", parameter),
             ("module", str(entry.get("module") or "")[:40]), ("wstg", ",".join(str(w) for w in wstg[:8])[:200]))
    return Finding(rule, f"{info} ({method} {target.origin}{path})", severity,
                   Location(f"{target.host}:{target.port}/{path.lstrip('/')}",
                            logical=f"{method} {parameter}".strip()), properties=props)


def scan(target: Target, mods: str, depth: int, budget: float) -> tuple[list[Finding], ToolRun]:
    """Run wapiti on one target within `budget` seconds; a failure of any kind is a failed `ToolRun`."""
    with tempfile.TemporaryDirectory(prefix="mlsec-wapiti-") as tmp:
        work = Path(tmp)
        report = work / "report.json"
        # wapiti stops itself at --max-scan-time and still writes its report; the process limit is the backstop.
        scan_budget = max(budget * 0.8 - 5, 1.0)
        done = execute(SPEC, command(target, report, work, mods, depth, scan_budget),
                            timeout=budget, workdir=work, env={"HOME": str(work)})
        run = done.run
        if not run.status.succeeded:
            return [], run
        if not report.is_file():
            return [], ToolRun(SPEC.name, ToolStatus.FAILED, version=run.version, command=run.command,
                               exit_code=run.exit_code, message=f"wrote no report for {target.origin}{target.path}")
        try:
            findings, gaps, pages, version = parse(report, target)
        except InputError as e:
            return [], ToolRun(SPEC.name, ToolStatus.FAILED, version=run.version, command=run.command,
                               exit_code=run.exit_code, message=safe(f"unreadable report: {e.problem}"))
    if pages < 1:
        return [], ToolRun(SPEC.name, ToolStatus.FAILED, version=version or run.version, command=run.command,
                           exit_code=run.exit_code,
                           message=f"crawled no page of {target.origin}{target.path}: nothing was scanned")
    note = f"{target.origin}{target.path}: {pages} pages crawled, modules {mods}"
    return findings, ToolRun(SPEC.name, ToolStatus.OK, version=version or run.version, command=run.command,
                             exit_code=run.exit_code, notes=(note,), gaps=tuple(gaps))
