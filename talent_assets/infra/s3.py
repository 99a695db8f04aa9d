"""The one place that builds boto3 S3 clients.

Always a fresh ``boto3.session.Session`` (the default session resolves credentials once per
process and would keep stale ones), always SigV4 (presigned links must be SigV4; dagster-aws's
``S3Resource.get_client()`` would sign with SigV2), standard retries. Credentials are passed
only when a caller holds them explicitly (a Dagster resource resolving its ``EnvVar``s, the
local stack's generated pair); otherwise boto3's default chain reads the environment, so no
code of ours ever handles them.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from talent_assets.infra.settings import Settings
from talent_assets.infra.storage import S3ObjectStore

DEFAULT_MAX_ATTEMPTS = 5


def s3_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Any:
    """A SigV4 S3 client with standard retries from a new boto3 session."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        config=Config(
            signature_version="s3v4",
            retries={"max_attempts": max_attempts, "mode": "standard"},
        ),
    )


def bucket_store(settings: Settings) -> S3ObjectStore:
    """The configured bucket outside a Dagster run (CLI, demo, API, tests).

    Credentials come from boto3's default chain (the same environment variables), never from
    arguments, so they cannot leak into logs or metadata.
    """
    client = s3_client(endpoint_url=settings.endpoint_url, region=settings.region)
    return S3ObjectStore(client, settings.bucket)
