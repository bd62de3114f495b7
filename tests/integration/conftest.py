"""Session fixtures shared by the integration tests: the supply-chain stages' real services
(tests/supply_servers.py), registered here once so every module uses the same server processes."""

from __future__ import annotations

from tests.supply_servers import clamav_db, http_server, mlflow_server, s3_server

__all__ = ["clamav_db", "http_server", "mlflow_server", "s3_server"]
