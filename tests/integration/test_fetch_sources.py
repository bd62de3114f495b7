"""fetch from hf:// and MLflow models:/ and runs:/ sources, end to end through `mlsec fetch` with real clamscan.

Hugging Face: the real Hub cannot be reached here, so `tests/supply_servers.py`'s `hf_hub` is a loopback
stand-in of its resolve route (with a CDN on another origin that large files are redirected to, as the Hub
does); it records every request's headers so the tests can see where the token went. MLflow: a real
`mlflow server` on loopback (SQLite backend, artifacts served by it), filled through its REST API.
Every refusal leaves nothing in the destination."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions import cli
from mlsec_actions.tools.mlflow_rest import Server
from tests.supply_servers import EICAR, HubServer, MlflowServer, hf_hub

pytestmark = pytest.mark.integration
__all__ = ["hf_hub"]

SHA = "4f3e2d1c0b4f3e2d1c0b4f3e2d1c0b4f3e2d1c0b"
TOKEN = "hf_mlsecTestToken0123456789"
REPO = "acme/classifier"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clamav_db: Path) -> Path:
    for var in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS", "MLSEC_RUN_ID", "HF_TOKEN", "HF_ENDPOINT",
                "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLSEC_CLAMAV_DB", str(clamav_db))
    (tmp_path / "proj").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path / "proj"


def _lock(proj: Path, *artifacts: dict[str, Any]) -> Path:
    path = proj / "mlsec.lock"
    path.write_text(json.dumps({"version": 1, "artifacts": list(artifacts)}))
    return path


def _run(proj: Path) -> tuple[int, dict[str, Any]]:
    sarif = proj.parent / "out" / "fetch.sarif"
    code = cli.main(["fetch", str(proj), "--sarif", str(sarif), "--timeout", "60"])
    return code, json.loads(sarif.read_text())["runs"][0]


def _rules(run: dict[str, Any]) -> set[str]:
    return {r["ruleId"] for r in run.get("results", [])}


def _left(proj: Path) -> set[str]:
    return {p.relative_to(proj).as_posix() for p in proj.rglob("*")} - {"mlsec.lock"}


def _message(run: dict[str, Any]) -> str:
    return " ".join(str(n.get("message", {}).get("text", "")) for i in run["invocations"]
                    for n in i.get("toolExecutionNotifications", []))


@pytest.fixture
def hub(hf_hub: HubServer, monkeypatch: pytest.MonkeyPatch, ws: Path) -> HubServer:
    monkeypatch.setenv("HF_ENDPOINT", hf_hub.base)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return hf_hub


def test_hf_files_direct_via_cdn_and_renamed_repo_token_only_to_the_hub(
        ws: Path, hub: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    config, weights, data = b'{"labels": 2}\n', b"\x00weights\x01" * 5000, b"a,b\n1,2\n"
    hub.add(REPO, SHA, "config.json", config)
    hub.add(REPO, SHA, "weights/model.safetensors", weights, cdn=True)
    hub.add("datasets/acme/new-name", SHA, "train.csv", data)
    hub.moved["datasets/acme/old-name"] = "datasets/acme/new-name"
    _lock(ws, {"name": "models/config.json", "url": f"hf://{REPO}@{SHA}/config.json", "sha256": _sha(config)},
          {"name": "models/model.safetensors", "url": f"hf://{REPO}@{SHA}/weights/model.safetensors",
           "sha256": _sha(weights), "size": len(weights)},
          {"name": "data/train.csv", "url": f"hf://datasets/acme/old-name@{SHA}/train.csv", "sha256": _sha(data)})
    code, run = _run(ws)
    assert code == 0 and _rules(run) == set()
    assert (ws / "models/config.json").read_bytes() == config
    assert (ws / "models/model.safetensors").read_bytes() == weights
    assert (ws / "data/train.csv").read_bytes() == data
    paths = [p for s, p, _ in hub.seen if s == "hub"]
    assert f"/{REPO}/resolve/{SHA}/weights/model.safetensors" in paths
    assert f"/datasets/acme/new-name/resolve/{SHA}/train.csv" in paths  # the relative redirect was followed
    hub_auth = [h.get("authorization") for h in hub.headers("hub")]
    assert len(hub_auth) == 4 and set(hub_auth) == {f"Bearer {TOKEN}"}  # same origin: the token goes along
    cdn = hub.headers("cdn")
    assert len(cdn) == 1 and "authorization" not in cdn[0]  # another origin: no token
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err + json.dumps(run)


def test_hf_missing_file_is_a_tool_failure_and_places_nothing(ws: Path, hub: HubServer) -> None:
    hub.add(REPO, SHA, "config.json", b"{}")
    _lock(ws, {"name": "a.json", "url": f"hf://{REPO}@{SHA}/config.json", "sha256": _sha(b"{}")},
          {"name": "b.bin", "url": f"hf://{REPO}@{SHA}/missing.bin", "sha256": "0" * 64})
    code, run = _run(ws)
    assert code == 1 and "fetch/withheld" in _rules(run) and _left(ws) == set()
    assert "HTTP 404" in _message(run) and "EntryNotFound" in _message(run)


@pytest.mark.parametrize("cdn", [False, True])
def test_hf_wrong_digest_leaves_nothing(ws: Path, hub: HubServer, cdn: bool) -> None:
    hub.add(REPO, SHA, "model.bin", b"what the Hub serves now", cdn=cdn)
    _lock(ws, {"name": "model.bin", "url": f"hf://{REPO}@{SHA}/model.bin", "sha256": _sha(b"what was pinned")})
    code, run = _run(ws)
    assert code == 0 and {"fetch/digest-mismatch", "fetch/withheld"} <= _rules(run) and _left(ws) == set()


def test_hf_eicar_from_the_cdn_is_withheld(ws: Path, hub: HubServer) -> None:
    hub.add(REPO, SHA, "model.bin", EICAR, cdn=True)
    _lock(ws, {"name": "model.bin", "url": f"hf://{REPO}@{SHA}/model.bin", "sha256": _sha(EICAR)})
    code, run = _run(ws)
    assert code == 0 and "clamav/malware" in _rules(run) and _left(ws) == set()


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/x", "data:,x"])
def test_hf_redirect_off_https_is_refused_and_the_token_never_leaves(ws: Path, hub: HubServer, target: str) -> None:
    hub.add(REPO, SHA, "model.bin", b"x")
    hub.redirects["model.bin"] = target
    _lock(ws, {"name": "model.bin", "url": f"hf://{REPO}@{SHA}/model.bin", "sha256": _sha(b"x")})
    code, run = _run(ws)
    assert code == 1 and _left(ws) == set() and "redirect" in _message(run) and "refused" in _message(run)
    assert len(hub.seen) == 1 and hub.headers("cdn") == []


def test_hf_redirect_loop_stops(ws: Path, hub: HubServer) -> None:
    hub.moved["acme/a"] = "acme/b"
    hub.moved["acme/b"] = "acme/a"
    _lock(ws, {"name": "m.bin", "url": f"hf://acme/a@{SHA}/m.bin", "sha256": "0" * 64})
    code, run = _run(ws)
    assert code == 1 and "more than 3 redirects" in _message(run) and len(hub.seen) == 4


def test_pin_hf_then_fetch_accepts_it(ws: Path, hub: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    data = b"tokenizer"
    hub.add(REPO, SHA, "tok.json", data, cdn=True)
    url = f"hf://{REPO}@{SHA}/tok.json"
    assert cli.main(["fetch", str(ws), "--pin", url, "--name", "tok.json"]) == 0
    assert json.loads((ws / "mlsec.lock").read_text())["artifacts"] == [
        {"name": "tok.json", "url": url, "sha256": _sha(data), "size": len(data)}]
    assert cli.main(["fetch", str(ws), "--pin", f"hf://{REPO}@main/tok.json", "--name", "t2.json"]) == 2
    assert TOKEN not in capsys.readouterr().err
    assert _run(ws)[0] == 0 and (ws / "tok.json").read_bytes() == data


# --- MLflow -------------------------------------------------------------------------------------------------


def _register(mlflow: MlflowServer, tmp_path: Path, files: dict[str, bytes]) -> tuple[str, str]:
    """A run holding `files` under `model/` and a registered model version from it: (model name, run id)."""
    server = Server(mlflow.uri, 60)
    tag = uuid.uuid4().hex[:10]
    experiment = str(server.call("POST", "/api/2.0/mlflow/experiments/create", {"name": f"fetch-{tag}"})
                     ["experiment_id"])
    info = server.call("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": experiment})["run"]["info"]
    base = str(info["artifact_uri"]).removeprefix("mlflow-artifacts:/")
    for rel, data in files.items():
        local = tmp_path / f"upload-{uuid.uuid4().hex}"
        local.write_bytes(data)
        server.upload(f"{base}/model/{rel}", local)
    name = f"clf-{tag}"
    server.call("POST", "/api/2.0/mlflow/registered-models/create", {"name": name})
    server.call("POST", "/api/2.0/mlflow/model-versions/create",
                {"name": name, "source": f"{info['artifact_uri']}/model", "run_id": info["run_id"]})
    return name, str(info["run_id"])


@pytest.fixture
def mlflow(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, ws: Path) -> MlflowServer:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    return mlflow_server


def test_models_and_runs_sources_fetched_from_a_real_mlflow(ws: Path, mlflow: MlflowServer, tmp_path: Path) -> None:
    weights, card = b"\x80\x04K\x01." + b"0" * 4096, b"# card\n"
    name, run_id = _register(mlflow, tmp_path, {"weights.pkl": weights, "docs/README.md": card})
    _lock(ws, {"name": "models/weights.pkl", "url": f"models:/{name}/1/weights.pkl", "sha256": _sha(weights),
               "size": len(weights)},
          {"name": "models/README.md", "url": f"runs:/{run_id}/model/docs/README.md", "sha256": _sha(card)})
    code, run = _run(ws)
    assert code == 0 and _rules(run) == set()
    assert (ws / "models/weights.pkl").read_bytes() == weights and (ws / "models/README.md").read_bytes() == card


@pytest.mark.parametrize("case", ["version", "file", "run"])
def test_mlflow_missing_version_file_or_run_fails_closed(ws: Path, mlflow: MlflowServer, tmp_path: Path,
                                                         case: str) -> None:
    name, run_id = _register(mlflow, tmp_path, {"m.bin": b"m"})
    url = {"version": f"models:/{name}/2/m.bin", "file": f"models:/{name}/1/other.bin",
           "run": f"runs:/{uuid.uuid4().hex}/model/m.bin"}[case]
    _lock(ws, {"name": "ok.bin", "url": f"runs:/{run_id}/model/m.bin", "sha256": _sha(b"m")},
          {"name": "m.bin", "url": url, "sha256": _sha(b"m")})
    code, run = _run(ws)
    assert code == 1 and "fetch/withheld" in _rules(run) and _left(ws) == set()
    assert "MLflow" in _message(run)


def test_mlflow_wrong_digest_leaves_nothing(ws: Path, mlflow: MlflowServer, tmp_path: Path) -> None:
    name, _ = _register(mlflow, tmp_path, {"m.bin": b"replaced"})
    _lock(ws, {"name": "m.bin", "url": f"models:/{name}/1/m.bin", "sha256": _sha(b"original")})
    code, run = _run(ws)
    assert code == 0 and "fetch/digest-mismatch" in _rules(run) and _left(ws) == set()


def test_pin_models_source(ws: Path, mlflow: MlflowServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name, _ = _register(mlflow, tmp_path, {"m.bin": b"model bytes"})
    url = f"models:/{name}/1/m.bin"
    assert cli.main(["fetch", str(ws), "--pin", url, "--name", "m.bin"]) == 0
    assert json.loads((ws / "mlsec.lock").read_text())["artifacts"][0]["sha256"] == _sha(b"model bytes")
    assert cli.main(["fetch", str(ws), "--pin", f"models:/{name}@champion/m.bin", "--name", "n.bin"]) == 2
    assert "not a pin" in capsys.readouterr().err


def test_mlflow_token_goes_to_the_tracking_host_only_and_no_redirect_is_followed(
        ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loopback stand-in of a tracking server (not MLflow: a real one never redirects) answers the run with
    a proxied artifact location, then redirects the download to another origin: fetch fails closed, the
    tracking host got the token, the other origin got no request at all."""
    import http.server
    import threading

    seen: list[tuple[str, str, str | None]] = []

    def handler(label: str, answer: Any) -> type[http.server.BaseHTTPRequestHandler]:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((label, self.path, self.headers.get("Authorization")))
                answer(self)

            def log_message(self, format: str, *args: object) -> None:
                pass
        return Handler

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler("other", lambda h: h.send_error(404)))

    def tracking_answer(h: http.server.BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/api/2.0/mlflow/runs/get"):
            body = json.dumps({"run": {"info": {"artifact_uri": "mlflow-artifacts:/1/r1/artifacts"}}}).encode()
            h.send_response(200)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        h.send_response(302)
        h.send_header("Location", f"http://127.0.0.1:{other.server_address[1]}/stolen")
        h.send_header("Content-Length", "0")
        h.end_headers()

    tracking = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler("tracking", tracking_answer))
    for server in (other, tracking):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{tracking.server_address[1]}")
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "mlflow-secret-token")
        _lock(ws, {"name": "m.bin", "url": "runs:/r1/model/m.bin", "sha256": "0" * 64})
        code, run = _run(ws)
    finally:
        for server in (other, tracking):
            server.shutdown()
            server.server_close()
    assert code == 1 and _left(ws) == set() and "HTTP 302" in _message(run)
    assert [(label, token) for label, _, token in seen] == [("tracking", "Bearer mlflow-secret-token")] * 2
    assert seen[1][1] == "/api/2.0/mlflow-artifacts/artifacts/1/r1/artifacts/model/m.bin"
    assert "mlflow-secret-token" not in json.dumps(run)


@pytest.mark.parametrize("url", [f"hf://{REPO}@main/model.bin", f"hf://{REPO}@{SHA}/../../secret",
                                 f"hf://{REPO}@{SHA}/%2e%2e/%2e%2e/secret", f"hf://{REPO}@{SHA}//etc/passwd",
                                 f"hf://{REPO}@{SHA}/a\\..\\b", f"hf://acme/..@{SHA}/x"])
def test_hf_hostile_lock_is_exit_2_and_the_hub_gets_no_request(ws: Path, hub: HubServer, url: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    lock = _lock(ws, {"name": "m.bin", "url": url, "sha256": "0" * 64})
    assert cli.main(["fetch", str(ws), "--sarif", str(ws.parent / "o.sarif")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(lock) in err and "artifacts[0].url" in err
    assert hub.seen == [] and _left(ws) == set()


def test_hf_body_over_the_pinned_size_is_cut_and_nothing_kept(ws: Path, hub: HubServer) -> None:
    data = b"x" * 100_000
    hub.add(REPO, SHA, "big.bin", data, cdn=True)
    _lock(ws, {"name": "big.bin", "url": f"hf://{REPO}@{SHA}/big.bin", "sha256": _sha(data), "size": 1000})
    code, run = _run(ws)
    assert code == 0 and "fetch/digest-mismatch" in _rules(run) and _left(ws) == set()
