"""``s3_video_sensor``: new or changed videos under the prefix become partitions and runs;
``talent_registry_sensor``: the registry is updated after each successful video run.

Built by :func:`build_s3_video_sensor` from the settings (interval, default status, cap per
tick, source), so nothing is read from the environment at import time. Two sources:

- ``list`` (default): each tick lists the prefix, O(objects under it): one S3 LIST request
  per 1,000 keys per tick. The decision is the pure
  :func:`~talent_assets.core.sensor_plan.plan_tick`.
- ``sqs``: each tick reads S3 event notifications from an SQS queue, O(new uploads)
  whatever the bucket's size; :func:`~talent_assets.core.sensor_plan.plan_queue_tick`.
  A message is deleted only on the tick after its runs are recorded (Dagster records a
  sensor's run requests after the function returns); until then it stays invisible for
  the visibility timeout, and if the daemon dies first it comes back and is asked again,
  which the run key (video id + ETag) turns into a no-op.
"""

from __future__ import annotations

from typing import Any

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    sensor,
)

from talent_assets.core.sensor_plan import (
    QueueCursor,
    SensorCursor,
    VideoRequest,
    plan_queue_tick,
    plan_tick,
    queue_visibility_s,
    settle_pending,
)
from talent_assets.core.video_id import is_video_key, video_id_for
from talent_assets.defs.jobs import process_video_job, update_talent_registry_job
from talent_assets.defs.partitions import videos_partitions
from talent_assets.defs.resources import S3EventQueue, TalentStorage
from talent_assets.defs.tags import REGISTRY_TAG, video_run_tags
from talent_assets.infra.settings import Settings

SENSOR_NAME = "s3_video_sensor"
# Dagster's own tag on every run a sensor requested with a run key.
RUN_KEY_TAG = "dagster/run_key"


def build_s3_video_sensor(settings: Settings) -> SensorDefinition:
    """The sensor that finds new videos every ``settings.sensor_interval_s`` seconds, by
    listing the prefix or from the S3 event queue (``settings.sensor_source``)."""
    max_per_tick = settings.sensor_max_per_tick
    common: dict[str, Any] = {
        "name": SENSOR_NAME,
        "job": process_video_job,
        "minimum_interval_seconds": settings.sensor_interval_s,
        "default_status": (
            DefaultSensorStatus.RUNNING if settings.sensor_running else DefaultSensorStatus.STOPPED
        ),
    }
    if settings.sensor_source == "sqs":
        visibility_s = queue_visibility_s(settings.sensor_interval_s)

        @sensor(description=QUEUE_DESCRIPTION, **common)
        def s3_video_queue_sensor(
            context: SensorEvaluationContext, storage: TalentStorage, video_events: S3EventQueue
        ) -> SensorResult:
            return evaluate_queue_tick(context, storage, video_events, max_per_tick, visibility_s)

        return s3_video_queue_sensor

    @sensor(description=LIST_DESCRIPTION, **common)
    def s3_video_sensor(
        context: SensorEvaluationContext, storage: TalentStorage
    ) -> SensorResult | SkipReason:
        return evaluate_tick(context, storage, max_per_tick)

    return s3_video_sensor


LIST_DESCRIPTION = (
    "Lists TALENT_VIDEO_PREFIX in the bucket; each new or re-uploaded video file becomes a "
    "`videos` partition and a run of the four assets (at most TALENT_SENSOR_MAX_PER_TICK per "
    "tick)."
)
QUEUE_DESCRIPTION = (
    "Reads S3 event notifications from TALENT_SQS_QUEUE_URL; each new or re-uploaded video "
    "file under TALENT_VIDEO_PREFIX becomes a `videos` partition and a run of the four assets "
    "(at most TALENT_SENSOR_MAX_PER_TICK messages per tick)."
)


def build_registry_sensor(settings: Settings) -> SensorDefinition:
    """The sensor that requests a registry update after every successful video run.

    A run status sensor rather than declarative automation: ``eager``-style conditions take
    an update that lands while the registry is being rebuilt as handled, so a video finishing
    meanwhile could wait for the next one. One request per video run (its run id is the run
    key), queued one at a time by the stack's tag limit; redundant updates are cheap and
    harmless. Its cursor survives a daemon restart.
    """

    @run_status_sensor(
        name="talent_registry_sensor",
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[process_video_job],
        request_job=update_talent_registry_job,
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=(
            DefaultSensorStatus.RUNNING if settings.sensor_running else DefaultSensorStatus.STOPPED
        ),
        description="Updates the talent registry after each successful video run.",
    )
    def talent_registry_sensor(context: RunStatusSensorContext) -> RunRequest:
        return RunRequest(run_key=context.dagster_run.run_id, tags=REGISTRY_TAG)

    return talent_registry_sensor


def evaluate_tick(
    context: SensorEvaluationContext, storage: TalentStorage, max_per_tick: int
) -> SensorResult | SkipReason:
    """One ``list`` tick: list the prefix, plan, and turn the plan into partition and run
    requests."""
    store = storage.input_store()
    objects = list(store.list(storage.video_prefix))
    videos = [o for o in objects if is_video_key(o.key)]
    if not videos:
        return SkipReason(
            f"no video files under {store.location(storage.video_prefix)} "
            f"({len(objects)} other objects)"
        )
    plan = plan_tick(videos, SensorCursor.parse(context.cursor), max_per_tick)
    if not plan.requested:
        return SkipReason(f"no new or changed videos among {len(videos)}")
    if plan.waiting:
        context.log.info(f"{plan.waiting} more new videos wait for the next tick")
    requests = [
        VideoRequest(o.key, o.etag, video_id_for(store.bucket, o.key, storage.video_prefix))
        for o in plan.requested
    ]
    return video_requests_result(context, requests, plan.cursor.dump())


def evaluate_queue_tick(
    context: SensorEvaluationContext,
    storage: TalentStorage,
    video_events: S3EventQueue,
    max_per_tick: int,
    visibility_s: int,
) -> SensorResult:
    """One ``sqs`` tick: delete last tick's messages whose runs are recorded, then receive
    new messages and request their videos."""
    queue = video_events.queue()
    cursor = QueueCursor.parse(context.cursor)
    wanted = {key for message in cursor.pending for key in message.run_keys}
    done, unrecorded = settle_pending(cursor.pending, recorded_run_keys(context, wanted))
    for error in queue.delete(done):
        context.log.warning(f"a handled message could not be deleted ({error})")
    if unrecorded:
        context.log.warning(
            f"{len(unrecorded)} messages of the last tick have no recorded run; they are "
            "delivered again after the visibility timeout"
        )
    plan = plan_queue_tick(
        queue.receive(max_per_tick, visibility_s), storage.bucket, storage.video_prefix
    )
    for error in queue.delete(plan.discard):
        context.log.warning(f"an ignored message could not be deleted ({error})")
    for message_id, why in plan.rejected:
        context.log.warning(f"message {message_id} left for the dead-letter queue: {why}")
    if plan.ignored:
        context.log.info(f"ignored {len(plan.ignored)} records, e.g. {plan.ignored[0]}")
    next_cursor = QueueCursor(pending=plan.pending).dump()
    if not plan.requested:
        return SensorResult(
            skip_reason=f"no new videos in the queue (deleted {len(done)} handled messages)",
            cursor=next_cursor,
        )
    return video_requests_result(context, plan.requested, next_cursor)


def recorded_run_keys(context: SensorEvaluationContext, run_keys: set[str]) -> set[str]:
    """Those of ``run_keys`` that some run of this sensor's job carries."""
    if not run_keys:
        return set()
    runs = context.instance.get_runs(
        filters=RunsFilter(job_name=process_video_job.name, tags={RUN_KEY_TAG: sorted(run_keys)})
    )
    return {run.tags[RUN_KEY_TAG] for run in runs if RUN_KEY_TAG in run.tags} & run_keys


def video_requests_result(
    context: SensorEvaluationContext, requests: list[VideoRequest], cursor: str
) -> SensorResult:
    """Run requests for ``requests`` (partition = video id, run key = video id + ETag), with
    the partitions that do not exist yet added in the same tick."""
    existing = set(context.instance.get_dynamic_partitions(videos_partitions.name))
    new_partitions = sorted({r.video_id for r in requests if r.video_id not in existing})
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=r.run_key,
                partition_key=r.video_id,
                tags=video_run_tags(r.key, r.video_id),
            )
            for r in requests
        ],
        dynamic_partitions_requests=[videos_partitions.build_add_request(new_partitions)]
        if new_partitions
        else [],
        cursor=cursor,
    )
