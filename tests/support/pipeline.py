"""Helpers for end-to-end tests: run a video through the real assets, read its outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dagster import DagsterInstance

from talent_assets.apps.runner import RunOutcome, process_partition
from talent_assets.core.objects import ObjectNotFoundError
from talent_assets.core.video_id import output_stem, video_id_for
from talent_assets.defs.resources import build_resources
from talent_assets.infra.s3 import bucket_store
from talent_assets.infra.settings import Settings
from talent_assets.infra.storage import S3ObjectStore
from talent_assets.infra.warehouse import Warehouse

TABLES = ("videos", "face_detections", "identity_clusters", "selected_frames")


def store_for(settings: Settings) -> S3ObjectStore:
    """The test bucket, as the pipeline sees it."""
    return bucket_store(settings)


def upload(settings: Settings, path: Path, key: str) -> None:
    store_for(settings).put_bytes(key, path.read_bytes(), "video/mp4")


def run_key(settings: Settings, instance: DagsterInstance, key: str) -> tuple[str, RunOutcome]:
    """Materialise the four assets for ``s3://bucket/key``; returns (video_id, outcome)."""
    video_id = video_id_for(settings.bucket, key, settings.video_prefix)
    outcome = process_partition(
        video_id, key, resources=build_resources(settings), instance=instance
    )
    return video_id, outcome


def manifest_of(settings: Settings, key: str) -> dict[str, Any] | None:
    base = f"{settings.output_prefix}{output_stem(key, settings.video_prefix)}/"
    try:
        return json.loads(store_for(settings).get_bytes(base + "manifest.json"))
    except ObjectNotFoundError:
        return None


def output_keys(settings: Settings, key: str) -> list[str]:
    base = f"{settings.output_prefix}{output_stem(key, settings.video_prefix)}/"
    return sorted(info.key for info in store_for(settings).list(base))


def warehouse(settings: Settings) -> Warehouse:
    return Warehouse(store_for(settings), "warehouse/")


def warehouse_keys(settings: Settings, video_id: str) -> list[str]:
    store = store_for(settings)
    return sorted(
        info.key for info in store.list("warehouse/") if f"video_id={video_id}/" in info.key
    )
