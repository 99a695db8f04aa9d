"""``raw_video``: find the object behind a partition, prove it is a video, record it."""

import time
from datetime import UTC, datetime

import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    Backoff,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from modal_gpu.video import VideoError, probe_video
from talent_assets.core.objects import ObjectNotFoundError, UnsafeKeyError
from talent_assets.core.tables import VIDEOS_SCHEMA
from talent_assets.core.video_id import is_video_key, video_id_for
from talent_assets.defs.failures import input_failure
from talent_assets.defs.partitions import videos_partitions
from talent_assets.defs.resources import TalentStorage
from talent_assets.defs.tags import SOURCE_KEY_TAG, SOURCE_URL_TAG


def resolve_source_key(
    context: AssetExecutionContext, storage: TalentStorage, video_id: str
) -> str:
    """The object key of a partition.

    Runs started by the sensor, the CLI or the API carry the key in a tag; a run started from
    the UI falls back to the ``videos`` table, then to a listing of the video prefix. Either
    way the key must hash to this partition, so a tag can never point a partition at another
    object.
    """
    store = storage.input_store()
    key = context.run.tags.get(SOURCE_KEY_TAG)
    if key is None:
        known = storage.tables().read("videos", video_id)
        if known is not None and known.num_rows:
            key = known["key"][0].as_py()
    if key is None:
        for info in store.list(storage.video_prefix):
            if video_id_for(store.bucket, info.key, storage.video_prefix) == video_id:
                key = info.key
                break
    if key is None:
        raise input_failure(
            f"no object under {store.location(storage.video_prefix)} has video id {video_id}",
            "missing_object",
        )
    if video_id_for(store.bucket, key, storage.video_prefix) != video_id:
        raise input_failure(f"key {key!r} does not belong to video id {video_id}", "bad_request")
    return key


@asset(
    partitions_def=videos_partitions,
    group_name="talent",
    kinds={"s3", "parquet"},
    retry_policy=RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL),
    description=(
        "The source video of one partition: located in S3, probed with PyAV (duration, fps, "
        "size, codec, rotation, frames) and demuxed end to end so corrupt or truncated files "
        "fail here. Writes the `videos` table row."
    ),
)
def raw_video(context: AssetExecutionContext, storage: TalentStorage) -> MaterializeResult:
    video_id = context.partition_key
    started = time.perf_counter()
    key = resolve_source_key(context, storage, video_id)
    store = storage.input_store()
    try:
        head = store.head(key)
    except ObjectNotFoundError:
        raise input_failure(f"missing object: {store.location(key)}", "missing_object") from None
    except UnsafeKeyError as err:
        raise input_failure(str(err), "bad_request") from None
    if not is_video_key(key):
        raise input_failure(f"not a video file name: {key!r}", "invalid_video")
    download_started = time.perf_counter()
    path = storage.video_cache().fetch(store, key, head.etag)
    download_s = time.perf_counter() - download_started
    probe_started = time.perf_counter()
    try:
        info = probe_video(path)
    except VideoError as err:
        storage.video_cache().evict(store, key, head.etag)
        raise input_failure(f"{key}: {err}", "invalid_video") from None
    probe_s = time.perf_counter() - probe_started

    row = {
        "video_id": video_id,
        "bucket": store.bucket,
        "key": key,
        "etag": head.etag,
        "size_bytes": head.size,
        **info.to_dict(),
        "ingested_at": datetime.now(UTC),
    }
    location = storage.tables().write(
        "videos", video_id, pa.Table.from_pylist([row], schema=VIDEOS_SCHEMA)
    )
    return MaterializeResult(
        metadata={
            "source": MetadataValue.text(store.location(key)),
            "bucket": store.bucket,
            "key": key,
            "etag": head.etag,
            "size_bytes": head.size,
            "duration_s": info.duration_s,
            "fps": info.fps,
            "resolution": f"{info.width}x{info.height}",
            "codec": info.codec,
            "rotation": info.rotation,
            "frames": info.frames,
            "table": MetadataValue.path(location),
            "download_s": round(download_s, 3),
            "probe_s": round(probe_s, 3),
            "wall_s": round(time.perf_counter() - started, 3),
            **_source_url(context),
        }
    )


def _source_url(context: AssetExecutionContext) -> dict[str, MetadataValue]:
    """The URL a fetched video came from (its query string already removed: it may carry
    credentials), as metadata; nothing for a video uploaded to the bucket."""
    url = context.run.tags.get(SOURCE_URL_TAG)
    return {"source_url": MetadataValue.url(url)} if url else {}


def recorded_video(storage: TalentStorage, video_id: str) -> dict:
    """The ``videos`` row written by ``raw_video``; downstream assets start from it."""
    table = storage.tables().read("videos", video_id)
    if table is None or table.num_rows == 0:
        raise input_failure(f"raw_video has not been materialised for {video_id}", "out_of_date")
    return table.to_pylist()[0]
