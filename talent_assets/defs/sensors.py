"""``s3_video_sensor``: new or changed videos under the prefix become partitions and runs;
``talent_registry_sensor``: the registry is updated after each successful video run.

Built by :func:`build_s3_video_sensor` from the settings (interval, default status, cap per
tick), so nothing is read from the environment at import time. The decision per tick is the
pure :func:`~talent_assets.core.sensor_plan.plan_tick`.
"""

from __future__ import annotations

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    sensor,
)

from talent_assets.core.sensor_plan import SensorCursor, plan_tick, run_key_for
from talent_assets.core.video_id import is_video_key, video_id_for
from talent_assets.defs.jobs import process_video_job, update_talent_registry_job
from talent_assets.defs.partitions import videos_partitions
from talent_assets.defs.resources import TalentStorage
from talent_assets.defs.tags import REGISTRY_TAG, video_run_tags
from talent_assets.infra.settings import Settings


def build_s3_video_sensor(settings: Settings) -> SensorDefinition:
    """The sensor that lists the video prefix every ``settings.sensor_interval_s`` seconds."""
    max_per_tick = settings.sensor_max_per_tick

    @sensor(
        name="s3_video_sensor",
        job=process_video_job,
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=(
            DefaultSensorStatus.RUNNING if settings.sensor_running else DefaultSensorStatus.STOPPED
        ),
        description=(
            "Lists TALENT_VIDEO_PREFIX in the bucket; each new or re-uploaded video file "
            "becomes a `videos` partition and a run of the four assets (at most "
            "TALENT_SENSOR_MAX_PER_TICK per tick)."
        ),
    )
    def s3_video_sensor(
        context: SensorEvaluationContext, storage: TalentStorage
    ) -> SensorResult | SkipReason:
        return evaluate_tick(context, storage, max_per_tick)

    return s3_video_sensor


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
    """One tick: list the prefix, plan, and turn the plan into partition and run requests."""
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
    ids = {o.key: video_id_for(store.bucket, o.key, storage.video_prefix) for o in plan.requested}
    existing = set(context.instance.get_dynamic_partitions(videos_partitions.name))
    new_partitions = sorted({vid for vid in ids.values() if vid not in existing})
    if plan.waiting:
        context.log.info(f"{plan.waiting} more new videos wait for the next tick")
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=run_key_for(ids[o.key], o.etag),
                partition_key=ids[o.key],
                tags=video_run_tags(o.key, ids[o.key]),
            )
            for o in plan.requested
        ],
        dynamic_partitions_requests=[videos_partitions.build_add_request(new_partitions)]
        if new_partitions
        else [],
        cursor=plan.cursor.dump(),
    )
