"""Lock sources hf://, models:/ and runs:/: what parses, what is refused (mutable references, hostile repository
names and paths, bad server URIs), and the Hugging Face redirect and token rules, without any server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions import cli
from mlsec_actions.errors import InputError, UsageError
from mlsec_actions.supply import hf_fetch, lock, mlflow_fetch, sources
from mlsec_actions.tools.mlflow_rest import RegistryError, Server

SHA = "0123456789abcdef0123456789abcdef01234567"
LOCK = Path("mlsec.lock")


@pytest.mark.parametrize(("url", "host", "path", "revision"), [
    (f"hf://org/repo@{SHA}/model.safetensors", "org/repo", "model.safetensors", SHA),
    (f"hf://datasets/org/data.set@{SHA}/train/part-0.parquet", "datasets/org/data.set", "train/part-0.parquet", SHA),
    (f"hf://spaces/org/demo@{SHA}/app.py", "spaces/org/demo", "app.py", SHA),
    ("models:/fraud-clf/12/files/model.pkl", "fraud-clf", "files/model.pkl", "12"),
    ("runs:/0a1b2c3d4e5f/model/weights.bin", "0a1b2c3d4e5f", "model/weights.bin", ""),
])
def test_good_sources_parse(url: str, host: str, path: str, revision: str) -> None:
    got = lock.parse_url(url, "artifacts[0].url", LOCK)
    assert (got.host, got.path, got.revision, got.url) == (host, path, revision, url)


@pytest.mark.parametrize(("url", "why"), [
    ("hf://org/repo@main/model.bin", "not a full 40-hex commit"),
    ("hf://org/repo@v1.0/model.bin", "not a full 40-hex commit"),
    (f"hf://org/repo@{SHA[:7]}/model.bin", "not a full 40-hex commit"),
    (f"hf://org/repo@{SHA.upper()}/model.bin", "not a full 40-hex commit"),
    (f"hf://org/repo@{SHA}0/model.bin", "not a full 40-hex commit"),
    ("hf://org/repo/model.bin", "needs a commit"),
    (f"hf://org/repo@{SHA}", "no file path"),
    (f"hf://org/repo@{SHA}/", "no file path"),
    (f"hf://org/repo@{SHA}/../../etc/passwd", "'..'"),
    (f"hf://org/repo@{SHA}/a/%2e%2e/b", "'%'"),
    (f"hf://org/repo@{SHA}/%2e%2e%2fx", "'%'"),
    (f"hf://org/repo@{SHA}//etc/passwd", "absolute"),
    (f"hf://org/repo@{SHA}/a\\..\\b", "backslash"),
    (f"hf://org/repo@{SHA}/a/./b", "'.'"),
    (f"hf://org/repo@{SHA}/a?x=1", "'?'"),
    (f"hf://org/repo@{SHA}/a#x", "'#'"),
    (f"hf://org/../repo@{SHA}/x", "not a Hugging Face repository"),
    (f"hf://../repo@{SHA}/x", "not a Hugging Face repository"),
    (f"hf://repo@{SHA}/x", "not a Hugging Face repository"),
    (f"hf://a/b/c@{SHA}/x", "not a Hugging Face repository"),
    (f"hf://models/org/repo@{SHA}/x", "not a Hugging Face repository"),
    (f"hf://org/re..po@{SHA}/x", "not a Hugging Face repository"),
    (f"hf://org/-repo@{SHA}/x", "not a Hugging Face repository"),
    (f"hf://org/repo.git@{SHA}/x", "not a Hugging Face repository"),
    (f"hf://or%2fg/repo@{SHA}/x", "not a Hugging Face repository"),
    (f"hf://org/repo@{SHA}/a\x00b", "control character"),
    ("models:/clf@champion/model.pkl", "alias, stage or 'latest'"),
    ("models:/clf/latest/model.pkl", "alias, stage or 'latest'"),
    ("models:/clf/Production/model.pkl", "alias, stage or 'latest'"),
    ("models:/clf/0/model.pkl", "alias, stage or 'latest'"),
    ("models:/clf/1.0/model.pkl", "alias, stage or 'latest'"),
    ("models:/clf/3", "no file path"),
    ("models:/clf/3/../../mlruns/x", "'..'"),
    ("models:/clf/3/%2e%2e/x", "'%'"),
    ("models:/../3/x", "model name"),
    ("models://host/clf/3/x", "not an MLflow URI"),
    ("runs:/abc/../../etc/passwd", "'..'"),
    ("runs:/abc", "no file path"),
    ("runs:/-abc/x", "run id"),
    ("runs://abc/x", "not an MLflow URI"),
])
def test_hostile_or_mutable_sources_are_refused(url: str, why: str) -> None:
    with pytest.raises(InputError, match=r"artifacts\[3\]\.url") as e:
        lock.parse_url(url, "artifacts[3].url", LOCK)
    assert why in e.value.problem


def _lock(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "mlsec.lock"
    path.write_text(json.dumps({"version": 1, "artifacts": [{"name": "m.bin", "url": url, "sha256": "0" * 64}]}))
    return path


@pytest.mark.parametrize("url", ["hf://org/repo@main/m.bin", "models:/clf@prod/m.bin", "models:/clf/Staging/m.bin"])
def test_cli_mutable_reference_is_exit_2_naming_lock_and_entry(tmp_path: Path, url: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = _lock(tmp_path, url)
    assert cli.main(["fetch", str(tmp_path), "--lock", str(path), "--sarif", str(tmp_path / "o.sarif")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "artifacts[0].url" in err and "not a pin" in err
    assert not (tmp_path / "m.bin").exists()


@pytest.mark.parametrize(("var", "value", "url"), [
    ("HF_ENDPOINT", "http://hub.example.org", f"hf://org/repo@{SHA}/m.bin"),
    ("HF_ENDPOINT", "https://user:pw@hub.example.org", f"hf://org/repo@{SHA}/m.bin"),
    ("HF_ENDPOINT", "ftp://hub.example.org", f"hf://org/repo@{SHA}/m.bin"),
    ("MLFLOW_TRACKING_URI", "http://mlflow.example.org", "models:/clf/1/m.bin"),
    ("MLFLOW_TRACKING_URI", "databricks", "runs:/abc/m.bin"),
    ("MLFLOW_TRACKING_URI", "", "runs:/abc/m.bin"),
])
def test_bad_server_in_the_environment_is_exit_2_before_download(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        var: str, value: str, url: str) -> None:
    monkeypatch.setenv(var, value)
    path = _lock(tmp_path, url)
    assert cli.main(["fetch", str(tmp_path), "--lock", str(path), "--sarif", str(tmp_path / "o.sarif")]) == 2
    err = capsys.readouterr().err
    assert var in err and "pw" not in err


def test_server_uri_rules() -> None:
    assert sources.check_server("http://127.0.0.1:5000/", "V") == "http://127.0.0.1:5000"
    assert sources.check_server("https://hub.example.org/mirror", "V") == "https://hub.example.org/mirror"
    for bad in ("http://10.0.0.1", "https://h/x?q=1", "https://h/#f", "https://:0x", "https://", "file:///etc"):
        with pytest.raises(UsageError, match=r"^V: "):
            sources.check_server(bad, "V")


def test_resolve_url_quotes_the_path_and_keeps_the_commit() -> None:
    src = lock.parse_url(f"hf://datasets/org/repo@{SHA}/dir/a b+c.json".replace(" ", "_"), "u", LOCK)
    assert hf_fetch.resolve_url("https://hub", src) == f"https://hub/datasets/org/repo/resolve/{SHA}/dir/a_b%2Bc.json"


@pytest.mark.parametrize(("target", "allowed"), [
    ("https://cdn.example.org/x", True),
    ("http://127.0.0.1:9/x", True),
    ("http://cdn.example.org/x", False),
    ("file:///etc/passwd", False),
    ("ftp://127.0.0.1/x", False),
    ("https:///nohost", False),
])
def test_redirects_only_to_https_or_loopback_http_from_a_loopback_endpoint(target: str, allowed: bool) -> None:
    assert hf_fetch.redirect_allowed("http://127.0.0.1:8000", target) is allowed
    assert hf_fetch.redirect_allowed("https://huggingface.co", target) is target.startswith("https://cdn")


def test_token_goes_only_to_the_endpoint_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    endpoint = "https://huggingface.co"
    assert hf_fetch.headers_for(endpoint, endpoint + "/o/r/resolve/x/y")["Authorization"] == "Bearer hf_secret_value"
    assert "Authorization" in hf_fetch.headers_for(endpoint, "https://HuggingFace.co:443/o/r")
    for other in ("https://cdn-lfs.huggingface.co/x", "https://huggingface.co:8443/x", "http://huggingface.co/x",
                  "https://huggingface.co.evil.example/x"):
        assert "Authorization" not in hf_fetch.headers_for(endpoint, other), other
    monkeypatch.delenv("HF_TOKEN")
    assert "Authorization" not in hf_fetch.headers_for(endpoint, endpoint + "/x")


@pytest.mark.parametrize(("root", "why"), [
    ("s3://bucket/1/abc/artifacts", "does not serve"),
    ("file:///srv/mlruns/1/abc/artifacts", "does not serve"),
    ("mlflow-artifacts://other.example.org/1/abc", "another server"),
    ("mlflow-artifacts:/1/../../etc", "'..'"),
])
def test_artifact_locations_the_proxy_does_not_serve_are_refused(root: str, why: str) -> None:
    server = Server("http://127.0.0.1:5000", 5)
    with pytest.raises(RegistryError, match=why):
        mlflow_fetch.proxy_path(server, root, "m.bin")


def test_proxy_path_joins_and_quotes() -> None:
    server = Server("http://127.0.0.1:5000", 5)
    got = mlflow_fetch.proxy_path(server, "mlflow-artifacts:/1/abc/artifacts/files", "sub/m+1.pkl")
    assert got == "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/files/sub/m%2B1.pkl"
    assert mlflow_fetch.proxy_path(server, "mlflow-artifacts://127.0.0.1:5000/1/x", "m").endswith("/1/x/m")
