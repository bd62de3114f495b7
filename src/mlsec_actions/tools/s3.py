"""S3 (or an S3-compatible server) through boto3, configured only by the environment we name.

boto3 normally reads `~/.aws/config`, `~/.aws/credentials`, `AWS_PROFILE`, container and instance metadata:
a repository that sets `HOME` or plants a profile must not choose where we upload or whose keys we use.
Here the config and credential files are `/dev/null`, the credentials are exactly `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) when set, else requests are unsigned (public buckets);
the endpoint is `MLSEC_S3_ENDPOINT_URL` (an S3-compatible server), else AWS's default. Secrets are never
printed: error texts go through `tools.base.safe`, which redacts them.
"""

from __future__ import annotations

import os
from typing import Any

ENDPOINT_ENV = "MLSEC_S3_ENDPOINT_URL"
CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def secrets() -> tuple[str, ...]:
    """The credential values in the environment (what no log line may contain)."""
    return tuple(v for k in CREDENTIAL_ENV if (v := os.environ.get(k)))


def client(timeout: float) -> Any:
    """An S3 client that reads no file and no profile: endpoint and keys from the environment only."""
    import botocore.session
    from botocore import UNSIGNED
    from botocore.config import Config

    session = botocore.session.Session()
    for variable in ("config_file", "credentials_file"):
        session.set_config_variable(variable, os.devnull)
    session.set_config_variable("profile", None)
    key, secret, token = (os.environ.get(k) or None for k in CREDENTIAL_ENV)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    connect = max(1.0, min(timeout, 30.0))
    config = Config(connect_timeout=connect, read_timeout=max(1.0, min(timeout, 120.0)),
                    retries={"max_attempts": 2, "mode": "standard"},
                    signature_version=UNSIGNED if not (key and secret) else None)
    return session.create_client("s3", region_name=region, endpoint_url=os.environ.get(ENDPOINT_ENV) or None,
                                 aws_access_key_id=key if key and secret else None,
                                 aws_secret_access_key=secret if key and secret else None,
                                 aws_session_token=token if key and secret else None, config=config)
