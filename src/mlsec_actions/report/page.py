"""report.html: one self-contained file from collect.py's document.

- No external request: no link, image, font or script is loaded; the CSP (a meta tag) says `default-src 'none'`
  and allows only this page's own style and script by their SHA-256.
- Everything is escaped: static parts with `html.escape` (quotes too), the findings as a JSON data block
  whose `<`, `>` and `&` are `\\u` escapes (so `</script>` in a finding cannot end the block), read by the
  script with `JSON.parse` and shown with `textContent`.
- The verdict, why, the stage timeline, the chart, coverage, waivers, SBOM and signatures are plain HTML (and
  SVG), readable without the script; only the findings table needs it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import Any

from mlsec_actions.report.assets import SCRIPT, STYLE
from mlsec_actions.report.collect import SEVERITIES


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


CSP = (f"default-src 'none'; script-src {_hash(SCRIPT)}; style-src {_hash(STYLE)}; img-src 'none'; "
       "connect-src 'none'; font-src 'none'; base-uri 'none'; form-action 'none'")


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _table(head: tuple[str, ...], rows: list[tuple[Any, ...]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{_e(empty)}</p>'
    cells = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    heads = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{cells}</tbody></table>"


def _timeline(stages: list[dict[str, Any]]) -> str:
    """One bar per stage from its start to its end (SVG attributes, so no inline style is needed)."""
    if not stages:
        return '<p class="muted">No stage timeline (the report was not made by mlsec run).</p>'
    end = max((s["started"] + s["seconds"] for s in stages), default=0.0) or 1.0
    width, left, row = 900, 130, 20
    parts = [f'<svg role="img" aria-label="stage timeline" width="{width + left + 60}" '
             f'height="{row * len(stages) + 24}" xmlns="http://www.w3.org/2000/svg">']
    for i, s in enumerate(stages):
        x = left + s["started"] / end * width
        w = max(2.0, s["seconds"] / end * width)
        cls = "ok" if s["exit"] == 0 else "bad"
        y = i * row + 4
        parts.append(f'<text x="0" y="{y + 12}">{_e(s["stage"])}</text>'
                     f'<rect class="{cls}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 6}"/>'
                     f'<text x="{x + w + 4:.1f}" y="{y + 12}">{s["seconds"]:.1f}s</text>')
    parts.append(f'<text x="{left}" y="{row * len(stages) + 18}">0 s</text>'
                 f'<text x="{left + width - 40}" y="{row * len(stages) + 18}">{end:.1f} s</text></svg>')
    rows = [(s["stage"], "ok" if s["exit"] == 0 else f"exit {s['exit']}", f"{s['started']:.1f}", f"{s['seconds']:.1f}",
             "" if s["findings"] is None else s["findings"], s["cause"]) for s in stages]
    return "".join(parts) + _table(("stage", "status", "started at (s)", "took (s)", "findings", "cause"), rows, "")


def _chart(chart: dict[str, dict[str, int]]) -> str:
    """Findings by stage and severity: a stacked bar per stage, and the numbers as a table."""
    if not chart:
        return '<p class="muted">No SARIF was read.</p>'
    most = max((sum(c.values()) for c in chart.values()), default=0) or 1
    width, left, row = 600, 130, 20
    parts = [f'<svg role="img" aria-label="findings by stage and severity" width="{width + left + 60}" '
             f'height="{row * len(chart) + 4}" xmlns="http://www.w3.org/2000/svg">']
    for i, (stage, counts) in enumerate(sorted(chart.items())):
        y, x = i * row + 2, float(left)
        parts.append(f'<text x="0" y="{y + 12}">{_e(stage)}</text>')
        for sev in SEVERITIES:
            w = counts.get(sev, 0) / most * width
            if w:
                parts.append(f'<rect class="sev-{sev}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 6}">'
                             f'<title>{_e(stage)}: {counts[sev]} {sev}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 12}">{sum(counts.values())}</text>')
    parts.append("</svg>")
    rows = [(stage, *(counts.get(sev, 0) for sev in SEVERITIES)) for stage, counts in sorted(chart.items())]
    return "".join(parts) + _table(("stage", *SEVERITIES), rows, "")


def _data_block(doc: dict[str, Any]) -> str:
    data = {"findings": {k: doc["findings"][k] for k in ("stages", "tools", "rules", "help", "rows")},
            "severities": list(SEVERITIES)}
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(doc: dict[str, Any]) -> str:
    """The whole page."""
    verdict = doc["verdict"] if doc["verdict"] in ("pass", "fail") else "missing"
    f = doc["findings"]
    why = "".join(f"<li><strong>{_e(v['kind'])}</strong> {_e(v['stage'])}: {_e(v['message'])} "
                  f'<span class="muted">({_e(v["rule"])})</span></li>' for v in doc["violations"])
    not_run = [(stage, reason) for key, reason in (("left-out", "left out (--only/--skip)"),
                                                   ("not-started", "not started: an earlier stage failed"),
                                                   ("unavailable", "not available in this version"))
               for stage in doc["not_run"].get(key, [])]
    gaps = [(g["stage"], g["tool"], g["kind"], g["path"], g["detail"]) for g in f["gaps"]]
    waivers = [(status, w["id"], w["owner"], w["expires"], w["matched"], w["reason"])
               for status in ("used", "expired") for w in doc["waivers"][status]]
    sbom = [(p["type"], (p["parent"] + "/" if p["parent"] else "") + p["name"], p["version"], " ".join(p["hashes"]))
            for p in doc["sbom"]]
    signed = [(s["artifact"], s["bundle"], s["status"]) for s in doc["signed"]]
    controls = [(c["framework"], c["control"], c["title"], c["findings"]) for c in f["controls"]]
    config = doc["config"]
    config_line = (f"config {_e(config.get('path'))} ({_e(config.get('source'))}, sha256 "
                   f"<code>{_e(config.get('sha256'))}</code>)" if config.get("path") else "no config file")
    problems = "".join(f"<li>{_e(p)}</li>" for p in doc["problems"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mlsec report: {_e(verdict.upper())}</title>
<style>{STYLE}</style></head>
<body>
<header id="verdict" class="{verdict}"><h1>Verdict: <span id="verdict-word">{_e(verdict.upper())}</span></h1>
<p>run <code>{_e(doc["run_id"])}</code> · policy {_e(doc["policy"])} · {config_line} · {_e(doc["generated_at"])}</p>
</header>
{f'<section id="problems"><h2>Inputs the report could not read</h2><ul>{problems}</ul></section>' if problems else ""}
<section id="why"><h2>Why</h2>{f"<ul>{why}</ul>" if why else '<p class="muted">No policy violation.</p>'}
{_table(("stage", "why it did not run (never counted as passed)"), not_run, "")}
<p class="muted">Expected stages: {_e(", ".join(doc["expected"]) or "none recorded")}</p></section>
<section id="timeline"><h2>Stages</h2>{_timeline(doc["stages"])}</section>
<section id="chart"><h2>Findings by stage and severity</h2>{_chart(f["chart"])}
{f'<p class="muted">{f["dropped"]} findings were counted by their stage but not kept in its SARIF '
 "(GitHub's limit); they are in the counts, not in the table.</p>" if f["dropped"] else ""}</section>
<section id="compliance"><h2>Findings by framework control</h2>
{_table(("framework", "control", "title", "findings"), controls, "No finding maps to a framework control.")}
<p class="muted">Mappings: docs/compliance.md. A finding can map to several controls.</p></section>
<section id="coverage"><h2>Coverage gaps ({f["gap_total"]})</h2>
{_table(("stage", "tool", "kind", "path", "what was not checked"), gaps, "No coverage gap recorded.")}</section>
<section id="findings"><h2>Findings ({len(f["rows"])})</h2>
<div id="filters"><label>stage <select id="f-stage"><option value="">all</option></select></label>
<label>severity at least <select id="f-severity"><option value="">any</option></select></label>
<label>tool <select id="f-tool"><option value="">all</option></select></label>
<label>path contains <input id="f-path" type="search" autocomplete="off"></label></div>
<p id="shown" class="muted">The findings table needs JavaScript.</p>
<table id="findings-table"><thead><tr><th>severity</th><th>stage</th><th>tool</th><th>rule</th><th>location</th>
<th>message</th></tr></thead><tbody></tbody></table><button id="more" type="button" hidden>Show more</button></section>
<section id="waivers"><h2>Waivers used and expired</h2>
{_table(("status", "id", "owner", "expires", "matched", "reason"), waivers, "No waiver was used or expired.")}</section>
<section id="sbom"><h2>SBOM: models and datasets</h2>
{_table(("type", "name", "version", "digests"), sbom, "No model or dataset in the SBOM (or no SBOM).")}</section>
<section id="signed"><h2>Signed artifacts</h2>
{_table(("artifact", "bundle", "status"), signed, "Nothing was signed in this run.")}</section>
<script type="application/json" id="mlsec-data">{_data_block(doc)}</script>
<script>{SCRIPT}</script>
</body></html>
"""
