"""Session fixtures shared by the integration tests: the supply-chain stages' real services
(tests/supply_servers.py), registered here once so every module uses the same server processes."""

from __future__ import annotations

from tests.supply_servers import clamav_db, http_server, mlflow_server, s3_server
from tests.tls_services import plain_listeners, tls_services

__all__ = ["clamav_db", "http_server", "mlflow_server", "plain_listeners", "s3_server", "tls_services"]
