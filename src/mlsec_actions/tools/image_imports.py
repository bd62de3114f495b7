"""Import third-party image scan reports into SARIF: Grype JSON (`grype -o json`), Snyk Container JSON
(`snyk container test --json`) and Docker Scout SARIF (`docker scout cves --format sarif`).

Each report is hostile input: bounded size and depth (`inputs.load_json`), and one that is not of its format is
an `InputError` (exit 2) naming the file. Rule ids are `<format>/<advisory id>`; help links are the
report's advisory URL. Each finding keeps what the report says about its layer (Grype's `layerID`, Snyk's
`dockerfileInstruction`) so the stage can map it to a Dockerfile line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlsec_actions import redact
from mlsec_actions.errors import InputError
from mlsec_actions.findings import Finding, Location, Rule, Severity
from mlsec_actions.tools.trivy_image import ImageFinding

MAX_REPORT = 256 * 1024 * 1024
FORMATS = ("grype", "snyk", "scout")


def parse_import(value: str) -> tuple[str, Path]:
    """`FORMAT:FILE` (argparse type)."""
    import argparse

    fmt, sep, file = value.partition(":")
    if not sep or fmt not in FORMATS or not file:
        raise argparse.ArgumentTypeError(f"{value!r}: expected FORMAT:FILE with FORMAT one of {', '.join(FORMATS)}")
    return fmt, Path(file)


def _severity(text: Any) -> Severity:
    try:
        return Severity.parse(str(text or "unknown"))
    except ValueError:
        return Severity.MEDIUM


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._:-]", "-", text)[:120] or "unknown"


def _rule(fmt: str, vid: str, title: str, description: str, fix: str, url: Any) -> Rule:
    name = "".join(w[:1].upper() + w[1:] for w in re.split(r"[^A-Za-z0-9]+", f"{fmt} {vid}") if w)[:80]
    return Rule(id=f"{fmt}/{_safe_id(vid)}", name=name or "Imported", short_description=f"{vid}: {title}"[:300],
                full_description=(description or title or vid)[:4000], help_text=fix,
                help_uri=url if isinstance(url, str) and url.startswith("https://") else None,
                tags=("vulnerability", "container", f"imported-{fmt}"))


def _vuln(fmt: str, vid: str, pkg: str, installed: str, fixed: str, severity: Severity, score: float | None,
          title: str, description: str, url: Any, where: str) -> Finding:
    fix = f"Upgrade {pkg} to {fixed}." if fixed else f"No fixed version of {pkg} yet; assess and mitigate."
    return redact.finding(Finding(
        rule=_rule(fmt, vid, title or pkg, description, fix, url), severity=severity, score=score,
        message=f"{pkg} {installed} is affected by {vid} ({fmt} report). {fix}",
        location=Location(where, logical=f"{pkg}@{installed}", logical_kind="package"),
        properties=(("package", pkg), ("installed", installed), ("fixed", fixed), ("imported-from", fmt))))


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _score(value: Any) -> float | None:
    return min(10.0, max(0.0, float(value))) if isinstance(value, int | float) and not isinstance(value, bool) else None


def grype(doc: Any, path: Path) -> Iterator[ImageFinding]:
    if not isinstance(doc, dict) or not isinstance(doc.get("matches"), list):
        raise InputError(path, "not a Grype JSON report (no `matches` list)")
    for match in doc["matches"]:
        vuln, art = _obj(_obj(match).get("vulnerability")), _obj(_obj(match).get("artifact"))
        if not vuln.get("id") or not art.get("name"):
            raise InputError(path, "a Grype match without vulnerability.id or artifact.name")
        scores = [_score(_obj(_obj(c).get("metrics")).get("baseScore")) for c in vuln.get("cvss") or []
                  if isinstance(c, dict)]
        fixed = ", ".join(str(v) for v in _obj(vuln.get("fix")).get("versions") or [])
        urls = vuln.get("urls") if isinstance(vuln.get("urls"), list) else []
        locations = art.get("locations") if isinstance(art.get("locations"), list) else []
        layer = str(_obj(locations[0]).get("layerID") or "") if locations else ""
        where = str(_obj(locations[0]).get("path") or "") if locations else ""
        yield ImageFinding(_vuln("grype", str(vuln["id"]), str(art["name"]), str(art.get("version", "")), fixed,
                                 _severity(vuln.get("severity")), max((s for s in scores if s is not None),
                                                                       default=None),
                                 str(vuln.get("description") or ""), str(vuln.get("description") or ""),
                                 urls[0] if urls else vuln.get("dataSource"), where), layer)


def snyk(doc: Any, path: Path) -> Iterator[ImageFinding]:
    projects = doc if isinstance(doc, list) else [doc]
    if not projects or not all(isinstance(p, dict) and isinstance(p.get("vulnerabilities"), list) for p in projects):
        raise InputError(path, "not a Snyk JSON report (no `vulnerabilities` list)")
    for project in projects:
        for v in project["vulnerabilities"]:
            v = _obj(v)
            if not v.get("id") or not v.get("packageName"):
                raise InputError(path, "a Snyk vulnerability without id or packageName")
            ids = _obj(v.get("identifiers")).get("CVE") or []
            vid = str(ids[0]) if isinstance(ids, list) and ids else str(v["id"])
            fixed = ", ".join(str(x) for x in v.get("fixedIn") or []) if isinstance(v.get("fixedIn"), list) else ""
            url = f"https://security.snyk.io/vuln/{_safe_id(str(v['id']))}"
            found = _vuln("snyk", vid, str(v["packageName"]), str(v.get("version", "")), fixed,
                          _severity(v.get("severity")), _score(v.get("cvssScore")), str(v.get("title") or ""),
                          str(v.get("description") or ""), url, "")
            instruction = v.get("dockerfileInstruction") or v.get("dockerFileInstruction") or ""
            yield ImageFinding(found, "", str(instruction))


def scout(doc: Any, path: Path) -> Iterator[ImageFinding]:
    from mlsec_actions.sarif_read import read_sarif

    del doc  # read again by the SARIF reader, which checks it as SARIF
    for run in read_sarif(path):
        for f in run.result.findings:
            vid = f.rule.id.split("/", 1)[-1]
            rule = Rule(id=f"scout/{_safe_id(vid)}", name=f.rule.name, short_description=f.rule.short_description,
                        full_description=f.rule.full_description,
                        help_text=f.rule.help_text or f.rule.short_description,
                        help_uri=f.rule.help_uri if (f.rule.help_uri or "").startswith("https://") else None,
                        tags=("vulnerability", "container", "imported-scout"))
            yield ImageFinding(redact.finding(Finding(rule, f.message, f.severity, Location(
                "", logical=f.location.path or None, logical_kind="object"), score=f.score,
                properties=(("imported-from", "scout"),))), "")


READERS: dict[str, Callable[[Any, Path], Iterator[ImageFinding]]] = {"grype": grype, "snyk": snyk, "scout": scout}


def read(fmt: str, path: Path) -> list[ImageFinding]:
    """Every finding of one report; `InputError` (exit 2) when it is not a report of that format."""
    from mlsec_actions.inputs import load_json

    doc = load_json(path, f"{fmt} report", MAX_REPORT)
    return list(READERS[fmt](doc, path))
