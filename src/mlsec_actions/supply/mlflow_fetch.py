"""MLflow downloads: `models:/NAME/VERSION/PATH` and `runs:/RUN_ID/PATH` from `MLFLOW_TRACKING_URI`.

Spoken through `tools/mlflow_rest.py` (its URI check, credentials from `MLFLOW_TRACKING_TOKEN` or user and
password, and its opener without a redirect handler: every request goes to the tracking host and nowhere
else). The version or run is resolved with the REST API (`model-versions/get-download-uri`, `runs/get`) to
its artifact location, which must be the server's own artifact proxy (`mlflow-artifacts:`, the server started
with `--serve-artifacts` or `--artifacts-destination`); the file is then streamed from
`/api/2.0/mlflow-artifacts/artifacts/...`. An artifact store the server does not proxy (a bucket, a path on
the server) is a download error. The lock's digest decides either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

from mlsec_actions.supply import sources
from mlsec_actions.supply.lock import Source
from mlsec_actions.tools.mlflow_rest import RegistryError, Server, scrub

PROXY = "mlflow-artifacts"
MAX_ARTIFACT_URI = 4096


def artifact_root(server: Server, source: Source) -> str:
    """The artifact location of the model version or run `source` names (its artifact URI, as the server says)."""
    if source.scheme == sources.MODELS_SCHEME:
        doc = server.call("GET", "/api/2.0/mlflow/model-versions/get-download-uri",
                          query={"name": source.host, "version": source.revision})
        uri = doc.get("artifact_uri")
    else:
        run = server.call("GET", "/api/2.0/mlflow/runs/get", query={"run_id": source.host}).get("run")
        info = run.get("info") if isinstance(run, dict) else None
        uri = info.get("artifact_uri") if isinstance(info, dict) else None
    if not isinstance(uri, str) or not uri or len(uri) > MAX_ARTIFACT_URI:
        raise RegistryError("MLflow named no artifact location")
    return uri


def proxy_path(server: Server, root: str, rel: str) -> str:
    """The artifact-proxy path of `rel` under `root`; RegistryError when the server does not proxy `root`."""
    parts = urlsplit(root)
    if parts.scheme != PROXY or parts.query or parts.fragment:
        raise RegistryError(f"the artifacts are at {root[:200]}, which the tracking server does not serve "
                            f"(only {PROXY}:/ locations are downloaded)")
    if parts.netloc and parts.netloc.lower() != urlsplit(server.uri).netloc.lower():
        raise RegistryError(f"the artifacts are on another server ({parts.netloc[:100]}); only the tracking "
                            "server is contacted")
    base = parts.path.strip("/")
    problem = sources.path_problem(base) if base else None
    if problem:
        raise RegistryError(f"MLflow's artifact location {root[:200]} {problem}")
    full = f"{base}/{rel}" if base else rel
    return f"/api/2.0/mlflow-artifacts/artifacts/{quote(full, safe='/')}"


def stream(source: Source, timeout: float) -> tuple[int | None, Iterator[bytes], Any]:
    """Open the download of `source`: (announced length, chunks, closable response)."""
    from mlsec_actions.supply.download import CHUNK, DownloadError

    server = Server(sources.mlflow_uri(), max(1.0, min(timeout, 60.0)))
    try:
        path = proxy_path(server, artifact_root(server, source), source.path)
        response = server.download(path)
    except RegistryError as e:
        raise DownloadError(f"MLflow: {e}") from None
    length = response.headers.get("Content-Length")
    announced = int(length) if length and length.isdigit() else None
    return announced, _chunks(response, CHUNK), response


def _chunks(response: Any, size: int) -> Iterator[bytes]:
    from mlsec_actions.supply.download import DownloadError

    try:
        yield from iter(lambda: response.read(size), b"")
    except (OSError, ValueError) as e:
        raise DownloadError(scrub(f"MLflow download interrupted: {e}")) from None
