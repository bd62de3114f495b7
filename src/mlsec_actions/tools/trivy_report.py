"""trivy's JSON report (schema v2) -> findings, with values redacted and placeholder secrets accounted for.

Dependency licences (the `license` scanner) are findings only in the categories trivy calls `forbidden` and
`restricted` (`trivy/license/<category>`, at trivy's severity); the others are counted (`license_counts`), and
every package's licences go to the stage's licence inventory (`license_inventory`, mlsec_actions/licenses.py).

A report that is not trivy's (`{}`, another schema, wrong types) is a `ReportError`: the run fails closed.
Secrets whose value is a documented placeholder (`decoys.py`) are dropped, each as a coverage gap.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlsec_actions import redact
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Rule, Severity
from mlsec_actions.licenses import PackageLicense
from mlsec_actions.tools import decoys


class ReportError(ValueError):
    """The output is JSON but not a trivy report."""


def validate(report: Any) -> dict[str, Any]:
    """The report when it has trivy's shape; `ReportError` otherwise (`{}` is not a clean result)."""
    if not isinstance(report, dict):
        raise ReportError("not a JSON object")
    if report.get("SchemaVersion") != 2 or not isinstance(report.get("ArtifactType"), str):
        raise ReportError("no SchemaVersion 2 / ArtifactType")
    results = report.get("Results", [])
    if not isinstance(results, list) or not all(isinstance(r, dict) and isinstance(r.get("Target"), str)
                                                for r in results):
        raise ReportError("Results is not a list of objects with a Target")
    for r in results:
        for key in ("Secrets", "Misconfigurations", "Vulnerabilities", "Licenses"):
            entries = r.get(key) or []
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise ReportError(f"{key} of {r['Target']!r} is not a list of objects")
    return report


def parse_report(report: dict[str, Any], root: Path | None = None) -> tuple[list[Finding], list[CoverageGap]]:
    """Findings, and the gaps for placeholder secrets dropped (their value is read from `root`)."""
    findings: list[Finding] = []
    gaps: list[CoverageGap] = []
    for finding, raw in _all(report):
        why = decoys.placeholder(root, finding.location.path, raw) if raw is not None else None
        if why:
            gaps.append(CoverageGap(GapKind.ALLOW_RULE, f"{finding.rule.id} match at line "
                                    f"{finding.location.start_line or '?'} dropped as a placeholder ({why})",
                                    path=finding.location.path))
        else:
            findings.append(redact.finding(finding))
    return findings, gaps


LICENSE_FINDINGS = ("forbidden", "restricted")
"""trivy's licence categories that are findings; `reciprocal`, `notice`, `permissive`, `unencumbered` and
`unknown` are only counted."""


def license_counts(report: dict[str, Any]) -> dict[str, int]:
    """Packages per licence category, every category (for the run's notes)."""
    counts: dict[str, int] = {}
    for result in report.get("Results") or []:
        for lic in result.get("Licenses") or []:
            category = _category(lic)
            counts[category] = counts.get(category, 0) + 1
    return counts


def license_inventory(report: dict[str, Any]) -> tuple[PackageLicense, ...]:
    """Every package trivy listed (`--list-all-pkgs`) with the licences its metadata declares (none: an empty
    tuple), plus those the licence scanner attributes to a package of a manifest; `mlsec_actions.licenses`."""
    found: dict[tuple[str, str, str], tuple[str, str, list[str]]] = {}  # (path, name, version) -> (type, ., lics)
    names: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for result in report.get("Results") or []:
        target, kind = str(result.get("Target", "")), str(result.get("Type") or "")
        for pkg in result.get("Packages") if isinstance(result.get("Packages"), list) else []:
            if not isinstance(pkg, dict) or not isinstance(pkg.get("Name"), str):
                continue
            path = str(pkg.get("FilePath") or target)
            key = (path, pkg["Name"][:200], str(pkg.get("Version") or "")[:100])
            lics = [str(x)[:200] for x in pkg.get("Licenses") or [] if isinstance(x, str)] \
                if isinstance(pkg.get("Licenses"), list) else []
            entry = found.setdefault(key, (kind, key[1], []))
            entry[2].extend(x for x in lics if x not in entry[2])
            names.setdefault((path, key[1]), []).append(key)
    for result in report.get("Results") or []:
        for lic in result.get("Licenses") or []:
            name, pkg = str(lic.get("Name") or ""), str(lic.get("PkgName") or "")
            for key in names.get((str(lic.get("FilePath") or result.get("Target", "")), pkg), []) if name else []:
                if name[:200] not in found[key][2]:
                    found[key][2].append(name[:200])
    return tuple(PackageLicense(kind, name, key[2], tuple(lics), key[0])
                 for key, (kind, name, lics) in sorted(found.items()))


def _category(lic: dict[str, Any]) -> str:
    return "".join(c for c in str(lic.get("Category") or "unknown").lower() if c.isalpha())[:20] or "unknown"


def _all(report: dict[str, Any]) -> Iterator[tuple[Finding, dict[str, Any] | None]]:
    by_name = _package_lines_by_name(report)
    for result in report.get("Results") or []:
        target = str(result.get("Target", ""))
        for secret in result.get("Secrets") or []:
            yield _secret(target, secret), secret
        for mis in result.get("Misconfigurations") or []:
            if mis.get("Status", "FAIL") == "FAIL":
                yield _misconfig(target, mis), None
        lines = _package_lines(result.get("Packages"))
        for vuln in result.get("Vulnerabilities") or []:
            yield _vulnerability(target, vuln, lines), None
        for lic in result.get("Licenses") or []:
            if _category(lic) in LICENSE_FINDINGS:
                yield _license(target, lic, by_name), None


def _package_lines_by_name(report: dict[str, Any]) -> dict[tuple[str, str], tuple[int | None, int | None]]:
    """(manifest, package name) -> its line: licence results name the package but carry no line."""
    out: dict[tuple[str, str], tuple[int | None, int | None]] = {}
    for result in report.get("Results") or []:
        for pkg in result.get("Packages") if isinstance(result.get("Packages"), list) else []:
            locs = pkg.get("Locations") if isinstance(pkg, dict) else None
            first = _dict(locs[0]) if isinstance(locs, list) and locs else {}
            if isinstance(pkg, dict) and isinstance(pkg.get("Name"), str):
                out.setdefault((str(result["Target"]), pkg["Name"]), (_int(first.get("StartLine")),
                                                                      _int(first.get("EndLine"))))
    return out


def _license(target: str, lic: dict[str, Any], lines: dict[tuple[str, str], tuple[int | None, int | None]]
             ) -> Finding:
    category = _category(lic)
    name, pkg = str(lic.get("Name") or "unknown")[:200], str(lic.get("PkgName") or "")[:200]
    path = str(lic.get("FilePath") or target)
    rule = Rule(id=f"trivy/license/{category}", name=_camel(f"license {category}"),
                short_description=f"Dependency under a {category} licence",
                full_description=f"A dependency is under a licence trivy classifies as {category}: using or "
                                 "distributing it may oblige you to release your own code or forbid the use.",
                help_text="Check the licence with whoever approves them; replace the dependency, or record the "
                          "approval as a waiver of this rule for the package's manifest.",
                help_uri="https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/code-scan.md#trivylicense",
                tags=("license", "dependency", category))
    start, end = lines.get((path, pkg), (None, None))
    return Finding(rule=rule, severity=_severity(lic.get("Severity")),
                   message=f"{pkg or 'a file'} is under {name} ({category} licence) in {path}",
                   location=Location(path, start, end, logical=pkg or None, logical_kind="package"),
                   properties=(("package", pkg), ("license", name), ("license-category", category)))


def _package_lines(packages: Any) -> dict[str, tuple[int | None, int | None]]:
    """Package id (and UID) -> its line in the manifest: trivy puts Locations on packages, not on vulns."""
    out: dict[str, tuple[int | None, int | None]] = {}
    for pkg in packages if isinstance(packages, list) else []:
        locs = pkg.get("Locations") if isinstance(pkg, dict) else None
        first = _dict(locs[0]) if isinstance(locs, list) and locs else {}
        span = (_int(first.get("StartLine")), _int(first.get("EndLine")))
        for key in (pkg.get("ID"), _dict(pkg.get("Identifier")).get("UID")):
            if isinstance(key, str):
                out[key] = span
    return out


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
    cause = _dict(m.get("CauseMetadata"))
    code = _dict(cause.get("Code"))
    lines = [str(ln.get("Content", "")) for ln in code.get("Lines") or [] if isinstance(ln, dict) and ln.get("IsCause")]
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
                                     logical=str(cause.get("Resource") or "") or None, logical_kind="resource"))


def _vulnerability(target: str, v: dict[str, Any], lines: dict[str, tuple[int | None, int | None]]) -> Finding:
    vid = str(v.get("VulnerabilityID", "unknown"))
    pkg, installed, fixed = str(v.get("PkgName", "")), str(v.get("InstalledVersion", "")), v.get("FixedVersion")
    score = _cvss(_dict(v.get("CVSS")))
    fix = f"Upgrade {pkg} to {fixed}." if fixed else f"No fixed version of {pkg} yet; assess and mitigate."
    rule = Rule(id=f"trivy/vuln/{vid}", name=_camel(vid), short_description=f"{vid}: {v.get('Title') or pkg}",
                full_description=str(v.get("Description") or v.get("Title") or vid).strip()[:4000],
                help_text=fix, help_uri=v.get("PrimaryURL") or None, tags=("vulnerability", "dependency"))
    ident = _dict(v.get("PkgIdentifier")).get("UID")
    start, end = lines.get(str(v.get("PkgID")), lines.get(str(ident), (None, None)))
    return Finding(rule=rule, severity=_severity(v.get("Severity")), score=score,
                   message=f"{pkg} {installed} is affected by {vid}. {fix}",
                   location=Location(target, start, end, logical=f"{pkg}@{installed}", logical_kind="package"),
                   properties=(("package", pkg), ("installed", installed), ("fixed", str(fixed or ""))))


def _cvss(cvss: dict[str, Any]) -> float | None:
    scores = [float(s[k]) for s in cvss.values() if isinstance(s, dict) for k in ("V3Score", "V40Score")
              if isinstance(s.get(k), int | float)]
    return min(10.0, max(0.0, max(scores))) if scores else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _camel(text: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return "".join(w[:1].upper() + w[1:] for w in words)[:80] or "Rule"
