"""Run the four assets for one video in-process, then the talent registry: the CLI's and
the API's way in (a video URL is first fetched into the bucket)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

from dagster import DagsterInstance, Definitions

from talent_assets.core.hls import PlaylistError
from talent_assets.core.url_policy import UrlRefusedError, display_url
from talent_assets.core.video_id import url_video_key, video_id_for
from talent_assets.defs.assets import ALL_ASSETS, talent_registry
from talent_assets.defs.failures import (  # re-exported: callers have long found them here
    first_failure,
    first_failure_with_kind,
    run_failure_message,
)
from talent_assets.defs.jobs import process_video_job, update_talent_registry_job
from talent_assets.defs.partitions import videos_partitions
from talent_assets.defs.tags import PARTITION_TAG, REGISTRY_TAG, SOURCE_URL_TAG, video_run_tags
from talent_assets.infra.s3 import bucket_store
from talent_assets.infra.settings import Settings
from talent_assets.infra.url_fetch import UrlFetchError
from talent_assets.infra.url_video import VideoFetchError, ingest_url_video

__all__ = [
    "RunOutcome",
    "first_failure",
    "first_failure_with_kind",
    "process_partition",
    "process_url",
    "record_failed_run",
    "run_failure_message",
    "update_registry_in_process",
]

#: What fetching a video URL can fail with, and the error kind each is (failures.py).
FETCH_ERRORS = (UrlRefusedError, UrlFetchError, PlaylistError, VideoFetchError)
FETCH_ERROR_KINDS: dict[type, str] = {
    UrlRefusedError: "bad_request",
    PlaylistError: "invalid_video",
    VideoFetchError: "invalid_video",
    UrlFetchError: "unreachable_source",
}

# Keep Dagster's own console logging quiet: the CLI owns stdout and stderr.
_QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: the first failure's one-line reason and its kind (see failures.py;
    ``internal`` for anything that is not the input's fault)."""

    success: bool
    run_id: str
    message: str = ""
    error_kind: str = ""
    # The video succeeded but the registry update after it failed (the manifest then has no
    # talent ids until the next update): its one-line reason.
    registry_message: str = ""


def process_partition(
    video_id: str,
    key: str,
    *,
    resources: dict[str, Any],
    instance: DagsterInstance,
    run_config: dict[str, Any] | None = None,
    quiet: bool = True,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> RunOutcome:
    """Register ``video_id`` as a partition and run the ``process_video`` job for it.

    Runs in this process (so a CLI or API call needs no daemon) but against a real instance,
    so with the stack's ``DAGSTER_HOME`` the run shows in the UI like any other. ``run_id``
    lets a caller hand out the id before the run starts (the API's ``"wait": false``);
    ``tags`` are added to the run's (a source URL, a per-request webhook).
    """
    instance.add_dynamic_partitions(videos_partitions.name, [video_id])
    config = dict(run_config or {})
    if quiet:
        config.update(_QUIET_RUN_CONFIG)
        logging.getLogger("dagster").setLevel(logging.CRITICAL)
    result = _execute(
        resources,
        process_video_job.name,
        instance=instance,
        run_config=config,
        partition_key=video_id,
        tags={**(tags or {}), **video_run_tags(key, video_id)},
        run_id=run_id,
    )
    if not result.success:
        message, kind = first_failure_with_kind(result.all_events)
        return RunOutcome(False, result.run_id, message, kind)
    registry = update_registry_in_process(resources, instance=instance, quiet=quiet)
    return RunOutcome(True, result.run_id, registry_message=registry.message)


def process_url(
    url: str,
    *,
    settings: Settings,
    resources: dict[str, Any],
    instance: DagsterInstance,
    quiet: bool = True,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> tuple[str, RunOutcome]:
    """Fetch ``url`` into the bucket (``infra/url_video.py``), then run it like an upload.

    Returns (object key, outcome). A fetch that fails (refused, unreachable, not a video)
    is recorded as a failed run of the video's partition with its one-line reason, so the
    UI, ``GET /videos/{id}`` and the completion webhooks see it like any other failure.
    """
    key = url_video_key(url, settings.video_prefix)
    video_id = video_id_for(settings.bucket, key, settings.video_prefix)
    run_tags = {**(tags or {}), SOURCE_URL_TAG: display_url(url)}
    try:
        ingest_url_video(url, settings, bucket_store(settings))
    except FETCH_ERRORS as error:
        kind = FETCH_ERROR_KINDS.get(type(error), "unreachable_source")
        failed = record_failed_run(
            video_id, key, str(error), resources=resources, instance=instance, run_id=run_id,
            tags=run_tags,
        )  # fmt: skip
        return key, RunOutcome(False, failed, str(error), kind)
    outcome = process_partition(
        video_id, key, resources=resources, instance=instance, quiet=quiet, run_id=run_id,
        tags=run_tags,
    )  # fmt: skip
    return key, outcome


def record_failed_run(
    video_id: str,
    key: str,
    message: str,
    *,
    resources: dict[str, Any],
    instance: DagsterInstance,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """A failed ``process_video`` run for ``video_id`` that never started, with ``message``
    as its reason (a source that could not be fetched); returns its run id."""
    instance.add_dynamic_partitions(videos_partitions.name, [video_id])
    job = _definitions(resources).resolve_job_def(process_video_job.name)
    run = instance.create_run_for_job(
        job_def=job,
        run_id=run_id,
        tags={**(tags or {}), **video_run_tags(key, video_id), PARTITION_TAG: video_id},
    )
    instance.report_run_failed(run, message)
    return run.run_id


def update_registry_in_process(
    resources: dict[str, Any], *, instance: DagsterInstance, quiet: bool = True
) -> RunOutcome:
    """Run the ``update_talent_registry`` job in this process (after a video, or by hand)."""
    result = _execute(
        resources,
        update_talent_registry_job.name,
        instance=instance,
        run_config=dict(_QUIET_RUN_CONFIG) if quiet else {},
        tags=REGISTRY_TAG,
    )
    if result.success:
        return RunOutcome(True, result.run_id)
    message, kind = first_failure_with_kind(result.all_events)
    return RunOutcome(False, result.run_id, message, kind)


def _definitions(resources: dict[str, Any]) -> Definitions:
    return Definitions(
        assets=[*ALL_ASSETS, talent_registry],
        jobs=[process_video_job, update_talent_registry_job],
        resources=resources,
    )


def _execute(resources: dict[str, Any], job_name: str, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = _definitions(resources).resolve_job_def(job_name)
        return job.execute_in_process(raise_on_error=False, **kwargs)
