"""The MLflow tracking server's REST API, spoken directly (no MLflow client library: it is large, slow to import,
and reads `~/.mlflow`, `MLFLOW_*` profiles and the current folder).

The server is `MLSEC_MLFLOW_URI` / `--mlflow-uri` (`https://`, or `http://` to loopback only); a URI with a
user or password in it is refused. Credentials only from the environment: `MLFLOW_TRACKING_TOKEN` (bearer)
or `MLFLOW_TRACKING_USERNAME` + `MLFLOW_TRACKING_PASSWORD` (basic). No error text carries them: every message
is scrubbed of their values and redacted (`tools.base.safe`).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsec_actions.tools import http_base
from mlsec_actions.tools.base import safe

TOKEN_ENV = "MLFLOW_TRACKING_TOKEN"  # noqa: S105 -- the variable's name, not a value
USER_ENV, PASSWORD_ENV = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"
MAX_RESPONSE = 16 * 1024 * 1024
CHUNK = 1024 * 1024


class RegistryError(Exception):
    """The server refused or could not be reached; the message is safe to print."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(scrub(message))
        self.code = code


def secrets() -> tuple[str, ...]:
    """Credential values in the environment (what no output may contain)."""
    return tuple(v for k in (TOKEN_ENV, PASSWORD_ENV) if (v := os.environ.get(k)))


def scrub(text: str) -> str:
    """`text` without any credential value, redacted, on one line."""
    for value in secrets():
        text = text.replace(value, "***")
    return safe(text)


def _headers() -> dict[str, str]:
    token = os.environ.get(TOKEN_ENV)
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    return {}


@dataclass(frozen=True)
class Server:
    """One MLflow tracking server."""

    uri: str
    """Base URI, without a trailing slash (checked by `check_uri`)."""
    timeout: float
    """Seconds per request."""

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             query: dict[str, str] | None = None) -> dict[str, Any]:
        """A JSON API call; an error answer raises RegistryError with MLflow's error code."""
        url = f"{self.uri}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {**_headers(), "Content-Type": "application/json"}
        return self._send(urllib.request.Request(url, data=data, method=method, headers=headers))  # noqa: S310

    def upload(self, artifact_path: str, file: Path) -> None:
        """PUT a file into the server's artifact store (`--serve-artifacts`), streamed."""
        quoted = urllib.parse.quote(artifact_path)
        url = f"{self.uri}/api/2.0/mlflow-artifacts/artifacts/{quoted}"
        with file.open("rb") as fh:
            headers = {**_headers(), "Content-Length": str(file.stat().st_size),
                       "Content-Type": "application/octet-stream"}
            self._send(urllib.request.Request(url, data=fh, method="PUT", headers=headers))  # noqa: S310

    def download(self, path: str, query: dict[str, str] | None = None) -> Any:
        """Open a GET of `path` on this server for streaming (the caller reads and closes the response)."""
        url = f"{self.uri}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, headers={**_headers(), "Accept-Encoding": "identity"})  # noqa: S310
        try:
            return http_base.opener().open(request, timeout=self.timeout)  # no redirect followed
        except urllib.error.HTTPError as e:
            raise _answer_error(e) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise RegistryError(f"cannot reach MLflow: {getattr(e, 'reason', e)}") from None

    def _send(self, request: urllib.request.Request) -> dict[str, Any]:
        try:  # no redirect handler: a redirect is an error, never followed
            with http_base.opener().open(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE + 1)
        except urllib.error.HTTPError as e:
            raise _answer_error(e) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise RegistryError(f"cannot reach MLflow: {getattr(e, 'reason', e)}") from None
        if len(raw) > MAX_RESPONSE:
            raise RegistryError("MLflow's answer is too large")
        if not raw.strip():
            return {}
        try:
            doc = json.loads(raw)
        except ValueError:
            raise RegistryError("MLflow's answer is not JSON") from None
        if not isinstance(doc, dict):
            raise RegistryError("MLflow's answer is not a JSON object")
        return doc


def _answer_error(e: urllib.error.HTTPError) -> RegistryError:
    detail = e.read(4096).decode("utf-8", "replace")
    e.close()
    try:
        doc = json.loads(detail)
    except ValueError:
        doc = {}
    code = str(doc.get("error_code", "")) if isinstance(doc, dict) else ""
    message = str(doc.get("message", "")) if isinstance(doc, dict) else ""
    return RegistryError(f"MLflow answered HTTP {e.code} {code} {message[:200]}".strip(), code)


def check_uri(uri: str) -> str:
    """The server URI if it is https:// (or http:// to loopback) without credentials, else ValueError."""
    return http_base.check_base_uri(uri, "MLflow", "MLFLOW_TRACKING_TOKEN")
