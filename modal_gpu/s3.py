"""The one factory of boto3 S3 clients, for the worker and (through ``talent_assets.infra.s3``)
for the pipeline, the front ends and the local stack.

It lives in the lowest layer because the GPU image carries ``modal_gpu`` only. Always a fresh
``boto3.session.Session`` (the default session resolves credentials once per process and would
keep stale ones), always SigV4 (presigned links must be SigV4; dagster-aws's
``S3Resource.get_client()`` signs with SigV2), standard retries. Credentials are passed only
by callers that hold them explicitly (a Dagster resource resolving its ``EnvVar``s, the local
stack's generated pair); otherwise boto3's default chain reads the environment (or the Modal
Secret), so no code of ours handles them.
"""

from __future__ import annotations

import os
from typing import Any

DEFAULT_MAX_ATTEMPTS = 5


def s3_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    **config: Any,
) -> Any:
    """A SigV4 S3 client with standard retries from a new boto3 session.

    ``config`` is merged into the ``botocore.config.Config`` (e.g. path-style addressing or
    short timeouts for the local server; ``retries`` replaces the default retry policy).
    """
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {
        "signature_version": "s3v4",
        # total_max_attempts counts the first call; botocore reads max_attempts as retries.
        "retries": {"total_max_attempts": max_attempts, "mode": "standard"},
        **config,
    }
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        config=Config(**options),
    )


def s3_client_from_env() -> Any:
    """The worker's client: endpoint and region from the environment (the Modal Secret)."""
    return s3_client(
        endpoint_url=os.environ.get("TALENT_S3_ENDPOINT_URL") or None,
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
    )
