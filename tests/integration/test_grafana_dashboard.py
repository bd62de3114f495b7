"""The shipped Grafana dashboard (monitoring/grafana/mlsec-actions.json): its JSON model is checked, and every
query it holds runs on a real Prometheus (Debian's `prometheus`) scraping a real Pushgateway that `mlsec notify`
pushed two runs to. Grafana itself is not packaged for Debian; what it would send is what this test sends."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions import cli
from mlsec_actions.notify import pushgateway as pg
from mlsec_actions.notify.model import Summary
from tests.integration.test_notify import _results
from tests.notify_servers import pushgateway
from tests.supply_servers import _wait, free_port

DASHBOARD = Path(__file__).resolve().parents[2] / "monitoring" / "grafana" / "mlsec-actions.json"
PANEL_TYPES = {"stat", "bargauge", "timeseries", "table", "gauge"}
VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def _dashboard() -> dict[str, Any]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def _exprs(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in doc["panels"] for t in p["targets"]]


def test_the_dashboard_json_model_holds_together() -> None:
    doc = _dashboard()
    assert isinstance(doc["title"], str) and re.fullmatch(r"[a-z0-9-]{1,40}", doc["uid"])
    assert isinstance(doc["schemaVersion"], int) and doc["schemaVersion"] >= 36
    names = [v["name"] for v in doc["templating"]["list"]]
    assert len(set(names)) == len(names) and "datasource" in names
    ids = [p["id"] for p in doc["panels"]]
    assert len(set(ids)) == len(ids) == 8
    cells: set[tuple[int, int]] = set()
    for p in doc["panels"]:
        assert p["type"] in PANEL_TYPES and p["title"] and p["description"]
        g = p["gridPos"]
        assert all(isinstance(g[k], int) and g[k] >= 0 for k in ("x", "y", "w", "h"))
        assert g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"panel {p['title']} overlaps another"
        cells |= mine
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(set(refs)) == len(refs)
    # Every variable a query uses is defined, and every metric it reads is one notify pushes.
    pushed = set(re.findall(r"^# TYPE (\w+) gauge$", pg.exposition(Summary("fail", 0, (), ())), re.MULTILINE))
    queries = [e for _, e in _exprs(doc)] + [v["definition"] for v in doc["templating"]["list"] if "definition" in v]
    for q in queries:
        assert set(VARIABLE.findall(q)) <= set(names), q
        metrics = set(re.findall(r"\b(mlsec_\w+)", q))
        assert metrics and metrics <= pushed, q


@contextmanager
def prometheus(tmp: Path, target: str) -> Iterator[str]:
    """A real Prometheus on a loopback port scraping `target` every second (labels of the pushed groups kept)."""
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: pushgateway\n"
                      f"    honor_labels: true\n    static_configs:\n      - targets: ['{target}']\n", encoding="utf-8")
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            _wait(f"{url}/-/ready", proc, 120)
        except RuntimeError as e:
            tail = (tmp / "prometheus.log").read_text(encoding="utf-8", errors="replace")[-800:]
            raise RuntimeError(f"{e}: {tail}") from None
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def _api(url: str, path: str, **params: str) -> Any:
    with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=10) as r:
        doc = json.loads(r.read())
    assert doc["status"] == "success", doc
    return doc["data"]


def _push(tmp: Path, gateway: str, repository: str, pipeline: str, monkeypatch: pytest.MonkeyPatch) -> None:
    results = _results(tmp)
    record = json.loads((results / "run.json").read_text(encoding="utf-8"))
    record["pipeline"] = pipeline
    (results / "run.json").write_text(json.dumps(record), encoding="utf-8")
    monkeypatch.setenv("GITHUB_REPOSITORY", repository)
    assert cli.main(["notify", str(results), "--channel", "pushgateway", "--pushgateway-url", gateway,
                     "--timeout", "20", "--retries", "1"]) == 0


def test_every_panel_query_answers_on_a_real_prometheus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = _dashboard()
    with pushgateway(tmp_path) as gateway:
        _push(tmp_path / "a", gateway, "acme/models", "mlsecops", monkeypatch)
        _push(tmp_path / "b", gateway, "acme/service", "devsecops", monkeypatch)
        with prometheus(tmp_path, gateway.removeprefix("http://")) as prom:
            deadline = time.monotonic() + 60
            while len(_api(prom, "/api/v1/query", query="mlsec_gate_passed")["result"]) < 2:
                assert time.monotonic() < deadline, "Prometheus never scraped the Pushgateway"
                time.sleep(0.5)
            # The variables' queries, as Grafana runs label_values(): both repositories, then the chosen one's pipeline.
            repos = _api(prom, "/api/v1/label/repository/values", **{"match[]": "mlsec_gate_passed"})
            assert repos == ["acme/models", "acme/service"]
            pipelines = _api(prom, "/api/v1/label/pipeline/values",
                             **{"match[]": 'mlsec_gate_passed{repository=~"acme/models"}'})
            assert pipelines == ["mlsecops"]
            chosen = {"repository": "acme/models", "pipeline": "mlsecops"}
            for title, expr in _exprs(doc):
                query = VARIABLE.sub(lambda m: re.escape(chosen[m.group(1)]), expr)
                result = _api(prom, "/api/v1/query", query=query)["result"]
                assert result, f"panel {title!r}: {query} returned nothing"
            gate = _api(prom, "/api/v1/query", query=VARIABLE.sub(lambda m: chosen[m.group(1)], _exprs(doc)[0][1]))
            assert [r["value"][1] for r in gate["result"]] == ["0"]  # the example's gate fails
            # "All" (Grafana's allValue .*) sums both repositories.
            everything = VARIABLE.sub(".*", dict(_exprs(doc))["Policy violations"])
            one = VARIABLE.sub(lambda m: chosen[m.group(1)], dict(_exprs(doc))["Policy violations"])
            total = float(_api(prom, "/api/v1/query", query=everything)["result"][0]["value"][1])
            single = float(_api(prom, "/api/v1/query", query=one)["result"][0]["value"][1])
            assert total == 2 * single > 0
