"""Run tags: what a run of ``process_video`` carries, set by the sensor, the CLI and the API.

Plain strings (no Dagster import), so the local stack and the API can filter runs by them.
"""

from __future__ import annotations

#: The object key of the video a run processes (``raw_video`` resolves its partition with it).
SOURCE_KEY_TAG = "talent/key"
#: The video id, for humans filtering runs in the UI.
VIDEO_TAG = "talent/video"
#: Dagster's own tag on every partitioned run.
PARTITION_TAG = "dagster/partition"
#: Every run of the pipeline job carries it; the stack's run queue limits concurrency by it.
PIPELINE_TAG_KEY = "talent/pipeline"
PIPELINE_TAG = {PIPELINE_TAG_KEY: "process_video"}
#: Registry updates carry the same key with their own value: the stack's queue runs one at a
#: time (they also share a lease), beside the videos' limit.
REGISTRY_TAG = {PIPELINE_TAG_KEY: "talent_registry"}


def video_run_tags(key: str, video_id: str) -> dict[str, str]:
    """The tags of a run that processes the object ``key`` as partition ``video_id``."""
    return {SOURCE_KEY_TAG: key, VIDEO_TAG: video_id}


#: A run's own webhook (the API's per-request ``webhook_url``), called instead of
#: ``TALENT_WEBHOOK_URL`` when the run finishes.
WEBHOOK_URL_TAG = "talent/webhook_url"
#: The URL a video was fetched from (``talent process https://...``, the API's ``url``).
SOURCE_URL_TAG = "talent/url"
#: The outcome of the run's completion webhook (docs/webhooks.md), written by
#: ``talent_webhook_sensor``.
WEBHOOK_TAG = "talent/webhook"
