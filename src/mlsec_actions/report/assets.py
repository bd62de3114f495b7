"""The page's one stylesheet and one script, inline and allowed by their SHA-256 in the CSP (page.py).

The script reads the findings from a JSON data block and builds the table with `textContent` only (never
`innerHTML`), so finding text (attacker-controlled) is always text; links are https only, opened with
`noopener noreferrer`. It makes no request of any kind (the CSP forbids it too).
"""

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1280px;padding:0 16px 48px;color:#1b1f24}
h1{margin:0;font-size:24px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
header{padding:16px;border-radius:6px;margin-top:16px}
header.pass{background:#dafbe1}header.fail,header.missing{background:#ffebe9}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eaeef2;
vertical-align:top}th{background:#f6f8fa}td.msg{white-space:pre-wrap;word-break:break-word}
td.loc{word-break:break-all;font-family:ui-monospace,monospace;font-size:12px}
.sev-critical{color:#fff;background:#8b0000}.sev-high{color:#fff;background:#cf222e}
.sev-medium{background:#fb8f44}.sev-low{background:#fff8c5}.sev-info{background:#ddf4ff}
td.sev{font-weight:600;text-align:center;width:5em}
rect.sev-critical{fill:#8b0000}rect.sev-high{fill:#cf222e}rect.sev-medium{fill:#fb8f44}rect.sev-low{fill:#d4a72c}
rect.sev-info{fill:#54aeff}rect.ok{fill:#2da44e}rect.bad{fill:#cf222e}
svg text{font-size:11px;fill:#1b1f24}
#filters{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0}#filters label{display:flex;gap:4px;align-items:center}
.muted{color:#57606a}code{font-family:ui-monospace,monospace;font-size:12px}
button{margin-top:8px}
"""

SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("mlsec-data").textContent);
  var f = data.findings, sevs = data.severities, page = 500, limit = page, timer = null;
  var body = document.querySelector("#findings-table tbody");
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  function fill(id, values) {
    var select = document.getElementById(id);
    values.forEach(function (v, i) { var o = el("option", v); o.value = String(i); select.appendChild(o); });
  }
  fill("f-stage", f.stages); fill("f-tool", f.tools); fill("f-severity", sevs);
  function value(id) { var v = document.getElementById(id).value; return v === "" ? -1 : Number(v); }
  function row(r) {
    var tr = el("tr"), sev = sevs[r[1]], rule = f.rules[r[3]], help = f.help[r[3]];
    tr.appendChild(el("td", sev, "sev sev-" + sev));
    tr.appendChild(el("td", f.stages[r[0]]));
    tr.appendChild(el("td", f.tools[r[2]]));
    var cell = el("td");
    if (help && help.indexOf("https://") === 0) {
      var a = el("a", rule); a.href = help; a.rel = "noopener noreferrer"; a.target = "_blank"; cell.appendChild(a);
    } else { cell.textContent = rule; }
    tr.appendChild(cell);
    tr.appendChild(el("td", r[5] ? r[4] + ":" + r[5] : r[4], "loc"));
    tr.appendChild(el("td", r[6], "msg"));
    return tr;
  }
  function render() {
    var stage = value("f-stage"), severity = value("f-severity"), tool = value("f-tool");
    var path = document.getElementById("f-path").value.toLowerCase(), shown = 0, matched = 0;
    var out = document.createDocumentFragment();
    for (var i = 0; i < f.rows.length; i++) {
      var r = f.rows[i];
      if (stage >= 0 && r[0] !== stage) { continue; }
      if ((severity >= 0 && r[1] > severity) || (tool >= 0 && r[2] !== tool)) { continue; }
      if (path && String(r[4]).toLowerCase().indexOf(path) < 0) { continue; }
      matched++;
      if (shown < limit) { out.appendChild(row(r)); shown++; }
    }
    body.textContent = "";
    body.appendChild(out);
    document.getElementById("shown").textContent =
      matched + " of " + f.rows.length + " findings match" + (shown < matched ? "; showing the first " + shown : "");
    document.getElementById("more").hidden = shown >= matched;
  }
  function again() { limit = page; render(); }
  ["f-stage", "f-severity", "f-tool"].forEach(function (id) {
    document.getElementById(id).addEventListener("change", again);
  });
  document.getElementById("f-path").addEventListener("input", function () {
    clearTimeout(timer); timer = setTimeout(again, 150);
  });
  document.getElementById("more").addEventListener("click", function () { limit += page; render(); });
  render();
})();
"""
