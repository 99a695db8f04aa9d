"""Helpers for end-to-end tests: run a video through the real assets, read its outputs."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
)

from modal_gpu.schema import FACE_DETECTIONS_SCHEMA
from talent_assets.apps.runner import RunOutcome, process_partition
from talent_assets.core.objects import ObjectNotFoundError
from talent_assets.core.video_id import output_stem, video_id_for
from talent_assets.defs.resources import build_resources
from talent_assets.devstack.local_s3 import LocalS3Server
from talent_assets.infra.s3 import bucket_store
from talent_assets.infra.settings import Settings
from talent_assets.infra.storage import S3ObjectStore
from talent_assets.infra.warehouse import Warehouse

TABLES = ("videos", "face_detections", "identity_clusters", "selected_frames")


def start_s3_server(folder: Path, bucket: str, key_prefix: str) -> LocalS3Server:
    """A started SeaweedFS server on loopback with fresh credentials and ``bucket``."""
    server = LocalS3Server(
        folder,
        access_key=f"{key_prefix}{secrets.token_hex(4)}",
        secret_key=secrets.token_urlsafe(24),
    )
    server.start()
    server.ensure_bucket(bucket)
    return server


def point_pipeline_at(
    server: LocalS3Server, bucket: str, monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> Settings:
    """Set the pipeline's environment to ``server``/``bucket`` (local CPU detector, bundled
    pack, 2 samples/s, defaults for the rest); returns the settings it now reads."""
    env = {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_REGION": "us-east-1",
        "TALENT_S3_ENDPOINT_URL": server.endpoint_url,
        "TALENT_BUCKET": bucket,
        "TALENT_DETECTOR": "local",
        "TALENT_MODEL_PACK": "bundled",
        "TALENT_SAMPLE_FPS": "2",
        "TALENT_CACHE_DIR": str(cache_dir),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("TALENT_WAREHOUSE", "TALENT_VIDEO_PREFIX", "TALENT_OUTPUT_PREFIX", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    return Settings.from_env()


# The asset checks each asset declares (README: "asset checks (schema, unit-norm embeddings,
# frames analysed, every face assigned, one person per frame, contiguous person ids)").
ASSET_CHECKS = {
    ("face_detections", "schema_matches"),
    ("face_detections", "embeddings_unit_norm"),
    ("face_detections", "frames_analyzed"),
    ("identity_clusters", "every_face_assigned"),
    ("identity_clusters", "one_person_per_frame"),
    ("selected_frames", "person_ids_contiguous"),
}


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


def check_evaluations(
    instance: DagsterInstance, run_id: str
) -> dict[tuple[str, str], AssetCheckEvaluation]:
    """The asset check evaluations a run recorded, by (asset, check name)."""
    found: dict[tuple[str, str], AssetCheckEvaluation] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        assert entry.dagster_event is not None
        evaluation = entry.dagster_event.event_specific_data
        assert isinstance(evaluation, AssetCheckEvaluation)
        key = (evaluation.asset_key.to_user_string(), evaluation.check_name)
        assert key not in found, f"{key} evaluated twice in run {run_id}"
        found[key] = evaluation
    return found


def materializations(instance: DagsterInstance, asset: str, video_id: str) -> list[Any]:
    """Every materialisation record of ``asset`` for the partition ``video_id``, newest first."""
    return list(
        instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[video_id]),
            limit=100,
        ).records
    )


def latest_metadata(instance: DagsterInstance, asset: str, video_id: str) -> dict[str, Any]:
    """Metadata values of the newest materialisation of ``asset`` for ``video_id``."""
    records = materializations(instance, asset, video_id)
    assert records, f"{asset} was never materialised for {video_id}"
    metadata = records[0].asset_materialization.metadata
    return {name: getattr(value, "value", value) for name, value in metadata.items()}


def assert_same_face_rows(got: pa.Table, want: pa.Table) -> None:
    """Two ``face_detections`` tables hold the same faces in the same frames, row for row."""
    assert got.schema.equals(FACE_DETECTIONS_SCHEMA)
    assert got.num_rows == want.num_rows
    for exact in ("video_id", "frame_index", "face_index", "timestamp_s", "model_pack"):
        assert got[exact].to_pylist() == want[exact].to_pylist(), exact
    for name in ("x1", "y1", "x2", "y2", "det_score", "face_quality", "sharpness"):
        np.testing.assert_allclose(
            got[name].to_numpy(), want[name].to_numpy(), atol=1e-3, err_msg=name
        )
    for name, width in (("embedding", 512), ("landmarks", 10)):
        a, b = (
            t[name].combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
            for t in (got, want)
        )
        np.testing.assert_allclose(a, b, atol=1e-4, err_msg=name)


def run_downstream(
    settings: Settings,
    instance: DagsterInstance,
    video_id: str,
    *,
    run_config: dict[str, Any],
    selection: tuple[str, ...] = ("identity_clusters", "selected_frames"),
) -> Any:
    """Materialise only ``selection`` for ``video_id`` with ``run_config``, as a UI
    "Materialize selected" with new config does (no source-key tag: assets read the
    ``videos`` table). Returns Dagster's in-process result."""
    from dagster import materialize

    from talent_assets.defs.assets import ALL_ASSETS

    return materialize(
        ALL_ASSETS,
        selection=list(selection),
        partition_key=video_id,
        instance=instance,
        resources=build_resources(settings),
        run_config=run_config,
        raise_on_error=False,
    )
