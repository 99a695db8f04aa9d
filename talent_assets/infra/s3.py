"""S3 access outside a Dagster run: the configured bucket as an object store.

Clients come from the one factory, :func:`modal_gpu.s3.s3_client` (SigV4, retries, a fresh
session each time; credentials from boto3's default chain unless a caller holds them).
"""

from __future__ import annotations

from modal_gpu.s3 import s3_client
from talent_assets.infra.settings import Settings
from talent_assets.infra.storage import S3ObjectStore

__all__ = ["bucket_store", "s3_client"]


def bucket_store(settings: Settings) -> S3ObjectStore:
    """The configured bucket outside a Dagster run (CLI, demo, API, tests).

    Credentials come from boto3's default chain (the same environment variables), never from
    arguments, so they cannot leak into logs or metadata.
    """
    client = s3_client(endpoint_url=settings.endpoint_url, region=settings.region)
    return S3ObjectStore(client, settings.bucket)
