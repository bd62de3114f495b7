"""Whether trivy's vulnerability-DB hosts certainly cannot be reached by name, so `vuln-db: auto` may skip a
download attempt that cannot succeed (one trivy process offline instead of three).

"Certainly" is narrow on purpose: every host the DB would come from (trivy's default repositories, or those
of `--db-repository`) must fail `getaddrinfo` with a "no such name" answer within a short time. A slow or
temporary resolver failure, an answer, an IP literal, or a proxy in the environment (trivy would reach the
registry through it whatever our resolver says) is uncertain: then the download is tried as before. A
skipped download is the same `vulnerabilities-not-scanned` gap as a failed one (tools/trivy.py), never silence.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping

DEFAULT_REPOSITORIES = ("mirror.gcr.io/aquasec/trivy-db:2", "ghcr.io/aquasecurity/trivy-db:2")
"""trivy's own `--db-repository` default (0.76), tried in this order."""
DOCKER_HUB = "index.docker.io"
"""The registry of a reference without one (`aquasec/trivy-db`), as go-containerregistry reads it."""
RESOLVE_TIMEOUT = 1.0
"""Seconds the lookups may take together; a resolver slower than this is an uncertain answer."""
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
"""With any of these set, trivy resolves the registry through the proxy, not here."""
_NO_SUCH_NAME = frozenset({socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)})
"""The answers that say the name does not exist (not "try again", not "resolver failed")."""


def registry_host(repository: str) -> str:
    """The registry host of an OCI reference: `ghcr.io/aquasecurity/trivy-db:2` -> `ghcr.io`,
    `127.0.0.1:5000/db` -> `127.0.0.1`, `[::1]:5000/db` -> `::1`, `aquasec/trivy-db` -> Docker Hub's."""
    first, slash, _ = repository.strip().partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        return DOCKER_HUB
    if first.startswith("["):
        return first[1:].partition("]")[0]
    return first.rpartition(":")[0] if first.count(":") == 1 else first


def hosts(db_repository: str | None) -> tuple[str, ...]:
    """The hosts a DB download would contact: those of `--db-repository` (comma-separated), or trivy's defaults."""
    refs = [r for r in (db_repository or "").split(",") if r.strip()] or list(DEFAULT_REPOSITORIES)
    return tuple(dict.fromkeys(registry_host(r) for r in refs))


def _lookup(host: str, answers: dict[str, bool]) -> None:
    try:
        socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        answers[host] = e.errno in _NO_SUCH_NAME
    except (OSError, UnicodeError, ValueError):
        answers[host] = False
    else:
        answers[host] = False


def known_offline(db_repository: str | None = None, *, timeout: float = RESOLVE_TIMEOUT,
                  environ: Mapping[str, str] | None = None) -> bool:
    """True only when every DB host certainly does not resolve; anything uncertain is False (download tried)."""
    env = os.environ if environ is None else environ
    if any(env.get(name) for name in PROXY_VARIABLES):
        return False
    names = hosts(db_repository)
    answers: dict[str, bool] = {}
    # Daemon threads: a resolver that hangs past the timeout is abandoned, not waited for.
    threads = [threading.Thread(target=_lookup, args=(h, answers), daemon=True) for h in names]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:  # the lookups run at the same time; all of them get `timeout` together
        t.join(max(0.0, deadline - time.monotonic()))
    return bool(names) and all(answers.get(h, False) for h in names)
