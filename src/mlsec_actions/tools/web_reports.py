"""Imported web-scanner reports for `dast`: Burp Suite XML, Acunetix XML and OWASP ZAP JSON, read into findings.

The reports are hostile input: read bounded (`inputs.read_regular`), and XML is parsed entity-safe: a document
that declares any entity (`<!ENTITY`, the way to a billion-laughs bomb or an external entity) is refused before
parsing; the internal DTD Burp writes (`<!ELEMENT>`, `<!ATTLIST>` only) is accepted; nothing is ever fetched.

- Burp Suite ("Report issues" as XML): `<issues burpVersion=...>` of `<issue>` with `name`, `host`, `path`,
  `location`, `severity` (High, Medium, Low, Information), `confidence`, `issueBackground`,
  `remediationBackground`, `issueDetail`.
- Acunetix (XML export): `<ScanGroup><Scan>` with `StartURL` and `<ReportItems>` of `<ReportItem>` with `Name`,
  `Affects`, `Parameter`, `Severity` (high, medium, low, info), `IsFalsePositive`, `Description`,
  `Recommendation`, `CWEList`.
- ZAP (`report_json.json` of the baseline scan / `-J`): `site[]` with `@name` and `alerts[]` of `name`,
  `riskcode` (0-3), `confidence`, `desc`, `solution`, `cweid`, `instances[]` (`uri`, `method`, `param`).
"""

from __future__ import annotations

import json
import re
import urllib.parse
import xml.etree.ElementTree as ET  # entity declarations are refused before parsing (_parse_xml)
from pathlib import Path
from typing import Any

from mlsec_actions.errors import InputError
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Rule, Severity
from mlsec_actions.inputs import read_regular

DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/dast.md"
MAX_REPORT_BYTES = 64 * 1024 * 1024
MAX_ITEMS = 20_000
_TEXT = 2000
_BURP_SEVERITY = {"high": Severity.HIGH, "medium": Severity.MEDIUM, "low": Severity.LOW,
                  "information": Severity.INFO, "info": Severity.INFO}
_ACUNETIX_SEVERITY = {"critical": Severity.CRITICAL, "high": Severity.HIGH, "medium": Severity.MEDIUM,
                      "low": Severity.LOW, "info": Severity.INFO, "informational": Severity.INFO}
_ZAP_RISK = {0: Severity.INFO, 1: Severity.LOW, 2: Severity.MEDIUM, 3: Severity.HIGH}
_TAGS = re.compile(r"<[^>]{0,500}>")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "issue"


def _plain(text: str | None) -> str:
    """Report HTML (Burp and ZAP write markup in descriptions) as bounded plain text."""
    return re.sub(r"\s+", " ", _TAGS.sub(" ", text or "")).strip()[:_TEXT]


def _rule(tool: str, name: str, desc: str, fix: str, anchor: str) -> Rule:
    return Rule(id=f"{tool}/{_slug(name)}", name=tool.title() + _slug(name).title().replace("-", ""),
                short_description=f"{tool}: {name}"[:200], full_description=desc or name,
                help_text=fix or f"See the {tool} report's remediation for this issue.",
                help_uri=f"{DOCS}#{anchor}", tags=("dast", "web", "imported"))


def _where(url: str, path: str = "") -> str:
    parts = urllib.parse.urlsplit(url.strip())
    host = parts.hostname or "unknown-host"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}/{(path or parts.path).lstrip('/')}"[:600]


def _parse_xml(path: Path, what: str) -> ET.Element:
    data = read_regular(path, what, MAX_REPORT_BYTES)
    if b"<!ENTITY" in data or b"<!entity" in data.lower():
        raise InputError(path, f"{what} declares XML entities; refused (entity expansion is never done)")
    try:
        return ET.fromstring(data)  # noqa: S314 -- no entity can be declared (checked above); nothing is fetched
    except ET.ParseError as e:
        raise InputError(path, f"not a well-formed {what} ({e})") from None


def _text(node: ET.Element | None, tag: str) -> str:
    found = node.find(tag) if node is not None else None
    return (found.text or "").strip() if found is not None else ""


def _capped(items: list[Any], tool: str, path: Path, gaps: list[CoverageGap]) -> list[Any]:
    if len(items) > MAX_ITEMS:
        gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"{tool} report has {len(items)} issues; the first "
                                                       f"{MAX_ITEMS} were read", path.name))
    return items[:MAX_ITEMS]


def burp(path: Path) -> tuple[list[Finding], list[CoverageGap]]:
    """Findings from a Burp Suite XML issues report."""
    root = _parse_xml(path, "Burp Suite XML report")
    if root.tag != "issues":
        raise InputError(path, f"not a Burp Suite XML report (root element {root.tag[:40]!r}, expected 'issues')")
    gaps: list[CoverageGap] = []
    findings = []
    for issue in _capped(root.findall("issue"), "Burp Suite", path, gaps):
        name = _text(issue, "name")[:200] or "Burp issue"
        rule = _rule("burp", name, _plain(_text(issue, "issueBackground")),
                     _plain(_text(issue, "remediationBackground")), "burp-suite-import")
        severity = _BURP_SEVERITY.get(_text(issue, "severity").lower(), Severity.MEDIUM)
        host, where = _text(issue, "host"), _text(issue, "path")
        detail = _plain(_text(issue, "issueDetail"))[:300]
        location = _text(issue, "location")[:300]
        findings.append(Finding(rule, f"{name} at {location or where}" + (f": {detail}" if detail else ""), severity,
                                Location(_where(host, where), logical=location or None),
                                properties=(("confidence", _text(issue, "confidence")[:20]),
                                            ("url", f"{host}{where}"[:600]), ("imported-from", "burp"))))
    return findings, gaps


def acunetix(path: Path) -> tuple[list[Finding], list[CoverageGap]]:
    """Findings from an Acunetix XML export; items marked false positive are left out, as a gap."""
    root = _parse_xml(path, "Acunetix XML report")
    if root.tag != "ScanGroup":
        raise InputError(path, f"not an Acunetix XML report (root element {root.tag[:40]!r}, expected 'ScanGroup')")
    gaps: list[CoverageGap] = []
    findings = []
    items = [(scan, item) for scan in root.findall("Scan") for item in scan.findall("ReportItems/ReportItem")]
    for scan, item in _capped(items, "Acunetix", path, gaps):
        name = _text(item, "Name")[:200] or "Acunetix issue"
        affects, parameter = _text(item, "Affects")[:300], _text(item, "Parameter")[:200]
        if _text(item, "IsFalsePositive").lower() == "true":
            gaps.append(CoverageGap(GapKind.ALLOW_RULE, f"Acunetix item {name!r} at {affects} is marked false "
                                                        "positive in the report; not imported", path.name))
            continue
        rule = _rule("acunetix", name, _plain(_text(item, "Description")), _plain(_text(item, "Recommendation")),
                     "acunetix-import")
        severity = _ACUNETIX_SEVERITY.get(_text(item, "Severity").lower(), Severity.MEDIUM)
        cwes = ",".join((c.text or "").strip()[:20] for c in item.findall("CWEList/CWE"))[:200]
        start = _text(scan, "StartURL")
        findings.append(Finding(rule, f"{name} at {affects}" + (f" (parameter {parameter})" if parameter else ""),
                                severity, Location(_where(start, affects), logical=parameter or None),
                                properties=(("cwe", cwes), ("url", f"{start.rstrip('/')}{affects}"[:600]),
                                            ("imported-from", "acunetix"))))
    return findings, gaps


def zap(path: Path) -> tuple[list[Finding], list[CoverageGap]]:
    """Findings from a ZAP JSON report: one per alert instance."""
    try:
        doc = json.loads(read_regular(path, "ZAP JSON report", MAX_REPORT_BYTES))
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError(path, f"not a ZAP JSON report ({type(e).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("site"), list):
        raise InputError(path, "not a ZAP JSON report (no site list)")
    gaps: list[CoverageGap] = []
    pairs = [(site, alert, inst) for site in doc["site"] if isinstance(site, dict)
             for alert in (site.get("alerts") or []) if isinstance(alert, dict)
             for inst in (alert.get("instances") or [{}]) if isinstance(inst, dict)]
    findings = []
    for site, alert, inst in _capped(pairs, "ZAP", path, gaps):
        name = str(alert.get("name") or alert.get("alert") or "ZAP alert")[:200]
        rule = _rule("zap", name, _plain(str(alert.get("desc") or "")), _plain(str(alert.get("solution") or "")),
                     "zap-import")
        try:
            risk = int(str(alert.get("riskcode", "2")))
        except ValueError:
            risk = 2
        uri = str(inst.get("uri") or site.get("@name") or "")[:600]
        param = str(inst.get("param") or "")[:200]
        findings.append(Finding(rule, f"{name} at {uri}" + (f" (parameter {param})" if param else ""),
                                _ZAP_RISK.get(risk, Severity.MEDIUM), Location(_where(uri), logical=param or None),
                                properties=(("cwe", str(alert.get("cweid") or "")[:20]), ("url", uri),
                                            ("imported-from", "zap"))))
    return findings, gaps
