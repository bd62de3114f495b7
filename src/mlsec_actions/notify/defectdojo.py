"""defectdojo: each stage's SARIF imported into DefectDojo (API v2), product and engagement found by name and
created when missing, one test per stage titled `mlsec/<stage>`: `import-scan` the first time, `reimport-scan`
into that test afterwards (DefectDojo then closes what was fixed and keeps its triage of the rest).

What is sent: without `--details`, a reduced copy of each SARIF: rule ids, levels, fingerprints and the rules'
titles; finding messages, locations, snippets, code flows and fixes are removed (they may quote a secret the
scan found). With `--details`, the SARIF file as written. The API key (MLSEC_DEFECTDOJO_TOKEN) goes in the
`Authorization: Token` header only.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import urllib.parse
from pathlib import Path
from typing import Any

from mlsec_actions import inputs
from mlsec_actions.errors import MlsecError, UsageError
from mlsec_actions.notify.http import Client, check_url, host_of
from mlsec_actions.notify.model import Channel, NotifyFailed, Settings, Summary

CREDENTIAL_ENV = "MLSEC_DEFECTDOJO_TOKEN"
_PROPERTIES_KEEP = frozenset({"security-severity", "mlsec-severity", "mlsec-stage", "mlsec-run-id"})
_RESULT_KEEP = ("ruleId", "ruleIndex", "rule", "level", "kind", "partialFingerprints", "fingerprints", "properties")


def check(s: Settings) -> None:
    if s.secret(CREDENTIAL_ENV) is None:
        raise UsageError(f"defectdojo: set {CREDENTIAL_ENV} (an API v2 key)")
    url = s.option("defectdojo_url")
    if url is None:
        raise UsageError("defectdojo: set --defectdojo-url (MLSEC_DEFECTDOJO_URL)")
    check_url(url, "--defectdojo-url")
    for opt in ("defectdojo_product", "defectdojo_engagement"):
        value = s.option(opt)
        if value is None or not value.strip() or len(value) > 200 or not value.isprintable():
            raise UsageError(f"defectdojo: --{opt.replace('_', '-')} must be a name (printable, at most 200)")


def reduced(doc: dict[str, Any]) -> dict[str, Any]:
    """A SARIF log without finding text: each result keeps its rule, level and fingerprints, its message
    becomes its rule's title."""
    runs = []
    for run in doc.get("runs") or []:
        if not isinstance(run, dict):
            continue
        driver = ((run.get("tool") or {}).get("driver") or {}) if isinstance(run.get("tool"), dict) else {}
        raw_rules = driver.get("rules") if isinstance(driver, dict) else None
        rules: list[Any] = raw_rules if isinstance(raw_rules, list) else []
        titles = {r.get("id"): (r["shortDescription"].get("text") if isinstance(r.get("shortDescription"), dict)
                                else None) for r in rules if isinstance(r, dict)}
        results = []
        for res in run.get("results") or []:
            if not isinstance(res, dict):
                continue
            kept = {k: res[k] for k in _RESULT_KEEP if k in res and k != "properties"}
            props = res.get("properties") if isinstance(res.get("properties"), dict) else {}
            kept["properties"] = {k: v for k, v in (props or {}).items() if k in _PROPERTIES_KEEP}
            kept["message"] = {"text": str(titles.get(res.get("ruleId")) or res.get("ruleId") or "finding")}
            results.append(kept)
        invocations = [{"executionSuccessful": inv.get("executionSuccessful", True) is not False}
                       for inv in run.get("invocations") or [] if isinstance(inv, dict)]
        props = run.get("properties") if isinstance(run.get("properties"), dict) else {}
        runs.append({**{k: run[k] for k in ("tool", "automationDetails") if k in run},
                     "invocations": invocations or [{"executionSuccessful": True}],
                     "properties": {k: v for k, v in (props or {}).items() if k in _PROPERTIES_KEEP},
                     "results": results})
    return {"version": doc.get("version", "2.1.0"), "$schema": doc.get("$schema", ""), "runs": runs}


def _multipart(fields: dict[str, str], file_name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "mlsec-" + secrets.token_hex(16)
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
                 "Content-Type: application/json\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class _Api:
    def __init__(self, s: Settings, client: Client) -> None:
        self.base = check_url(s.option("defectdojo_url") or "", "--defectdojo-url").rstrip("/") + "/api/v2"
        self.auth = {"Authorization": f"Token {s.secret(CREDENTIAL_ENV)}", "Accept": "application/json"}
        self.client = client

    def call(self, method: str, path: str, doc: dict[str, Any] | None = None,
             query: dict[str, str] | None = None) -> Any:
        url = f"{self.base}/{path}/" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        body = json.dumps(doc).encode() if doc is not None else None
        headers = {**self.auth, **({"Content-Type": "application/json"} if body is not None else {})}
        resp = self.client.request("defectdojo", method, url, body, headers)
        try:
            return json.loads(resp.body or b"{}")
        except ValueError:
            raise NotifyFailed(f"defectdojo: {host_of(url)} answered {path} with no JSON") from None

    def find_or_create(self, path: str, query: dict[str, str], create: dict[str, Any], match: str) -> int:
        found = self.call("GET", path, query=query)
        rows = found.get("results") if isinstance(found, dict) else None
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and row.get(match) == query[match] and isinstance(row.get("id"), int):
                return int(row["id"])
        made = self.call("POST", path, create)
        if not isinstance(made, dict) or not isinstance(made.get("id"), int):
            raise NotifyFailed(f"defectdojo: creating in {path} gave no id")
        return int(made["id"])

    def upload(self, endpoint: str, fields: dict[str, str], name: str, data: bytes) -> Any:
        body, ctype = _multipart(fields, name, data)
        return self.client.request("defectdojo", "POST", f"{self.base}/{endpoint}/", body,
                                   {**self.auth, "Content-Type": ctype})


def _payload(path: Path, details: bool) -> bytes:
    if details:
        return inputs.read_regular(path, "SARIF")
    doc = inputs.load_json(path, "SARIF")
    return json.dumps(reduced(doc if isinstance(doc, dict) else {}), ensure_ascii=True).encode("ascii")


def send(s: Settings, summary: Summary, client: Client) -> str:
    api = _Api(s, client)
    product, engagement = s.option("defectdojo_product") or "", s.option("defectdojo_engagement") or ""
    type_id = api.find_or_create("product_types", {"name": s.option("defectdojo_product_type") or "mlsec"},
                                 {"name": s.option("defectdojo_product_type") or "mlsec"}, "name")
    product_id = api.find_or_create("products", {"name": product},
                                    {"name": product, "description": "created by mlsec notify",
                                     "prod_type": type_id}, "name")
    today = dt.date.today().isoformat()
    engagement_id = api.find_or_create(
        "engagements", {"product": str(product_id), "name": engagement},
        {"name": engagement, "product": product_id, "target_start": today, "target_end": today,
         "engagement_type": "CI/CD", "status": "In Progress"}, "name")
    imported, reimported, skipped = 0, 0, 0
    seen: set[Path] = set()
    for stage in summary.stages:
        if stage.sarif is None or stage.sarif in seen:
            continue
        seen.add(stage.sarif)
        if not stage.readable:
            skipped += 1
            continue
        try:
            data = _payload(stage.sarif, s.details)
        except MlsecError:
            skipped += 1
            continue
        title = f"mlsec/{stage.stage}"
        tests = api.call("GET", "tests", query={"engagement": str(engagement_id), "title": title})
        rows = tests.get("results") if isinstance(tests, dict) else None
        test_id = next((r["id"] for r in rows if isinstance(r, dict) and r.get("title") == title
                        and isinstance(r.get("id"), int)), None) if isinstance(rows, list) else None
        common = {"scan_type": "SARIF", "active": "true", "verified": "false", "minimum_severity": "Info"}
        if test_id is None:
            api.upload("import-scan", {**common, "engagement": str(engagement_id), "test_title": title},
                       f"{stage.stage.replace('/', '_')}.sarif", data)
            imported += 1
        else:
            api.upload("reimport-scan", {**common, "test": str(test_id)}, f"{stage.stage.replace('/', '_')}.sarif",
                       data)
            reimported += 1
    extra = f", {skipped} not readable" if skipped else ""
    return (f"defectdojo: {imported} imported, {reimported} reimported into engagement {engagement_id} "
            f"at {host_of(api.base)}{extra}")


CHANNEL = Channel("defectdojo", "DefectDojo import-scan/reimport-scan of each stage's SARIF", (CREDENTIAL_ENV,),
                  check, send)
