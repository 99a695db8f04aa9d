"""``s3_video_sensor``: new or changed videos under the prefix become partitions and runs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from talent_assets.core.video_id import is_video_key, video_id_for
from talent_assets.defs.assets.raw_video import SOURCE_KEY_TAG
from talent_assets.defs.jobs import process_video_job
from talent_assets.defs.partitions import videos_partitions
from talent_assets.defs.resources import TalentStorage
from talent_assets.infra.storage import ObjectInfo

DEFAULT_MAX_PER_TICK = 100
# Objects are reconsidered this long after the newest one seen: LastModified has one-second
# resolution and is the *start* of a multipart upload, so a large upload can appear in a
# listing after smaller, later ones. Within the window, (key, ETag) pairs are remembered.
LOOKBACK = timedelta(minutes=15)


@dataclass
class SensorCursor:
    """High-water mark of LastModified, and the (key → ETag) requested within the lookback."""

    high_water: datetime | None = None
    recent: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (etag, iso time)

    @classmethod
    def parse(cls, raw: str | None) -> SensorCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        high = data.get("high_water")
        return cls(
            high_water=datetime.fromisoformat(high) if high else None,
            recent={k: (v[0], v[1]) for k, v in data.get("recent", {}).items()},
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "high_water": self.high_water.isoformat() if self.high_water else None,
                "recent": {k: list(v) for k, v in sorted(self.recent.items())},
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class SensorPlan:
    """What one tick decided: the objects to request now and the cursor afterwards."""

    requested: list[ObjectInfo]
    waiting: int
    cursor: SensorCursor


def plan_tick(objects: list[ObjectInfo], cursor: SensorCursor, max_per_tick: int) -> SensorPlan:
    """Pick the new or changed video objects, oldest first, at most ``max_per_tick``.

    An object is new when it is newer than the lookback window's start and its (key, ETag)
    was not requested before: a re-upload with new content has a new ETag and is picked up
    again, an identical one is not. Pure, so it is tested without Dagster.
    """
    floor = cursor.high_water - LOOKBACK if cursor.high_water else None
    candidates = sorted(
        (
            o
            for o in objects
            if is_video_key(o.key)
            and (floor is None or o.last_modified >= floor)
            and cursor.recent.get(o.key, ("", ""))[0] != o.etag
        ),
        key=lambda o: (o.last_modified, o.key),
    )
    chosen = candidates[:max_per_tick]
    recent = dict(cursor.recent)
    high_water = cursor.high_water
    for o in chosen:
        recent[o.key] = (o.etag, o.last_modified.isoformat())
        if high_water is None or o.last_modified > high_water:
            high_water = o.last_modified
    if high_water is not None:
        keep_from = high_water - LOOKBACK
        recent = {k: v for k, v in recent.items() if datetime.fromisoformat(v[1]) >= keep_from}
    return SensorPlan(
        requested=chosen,
        waiting=len(candidates) - len(chosen),
        cursor=SensorCursor(high_water=high_water, recent=recent),
    )


def run_key_for(video_id: str, etag: str) -> str:
    """One run per content version of an object."""
    return f"{video_id}:{etag}"


def _default_status() -> DefaultSensorStatus:
    running = os.environ.get("TALENT_SENSOR_DEFAULT_STATUS", "stopped").lower() == "running"
    return DefaultSensorStatus.RUNNING if running else DefaultSensorStatus.STOPPED


@sensor(
    name="s3_video_sensor",
    job=process_video_job,
    minimum_interval_seconds=int(os.environ.get("TALENT_SENSOR_INTERVAL_S", "30")),
    default_status=_default_status(),
    description=(
        "Lists TALENT_VIDEO_PREFIX in the bucket; each new or re-uploaded video file becomes "
        "a `videos` partition and a run of the four assets (at most "
        "TALENT_SENSOR_MAX_PER_TICK per tick)."
    ),
)
def s3_video_sensor(
    context: SensorEvaluationContext, storage: TalentStorage
) -> SensorResult | SkipReason:
    max_per_tick = int(os.environ.get("TALENT_SENSOR_MAX_PER_TICK", DEFAULT_MAX_PER_TICK))
    store = storage.input_store()
    objects = list(store.list(storage.video_prefix))
    videos = [o for o in objects if is_video_key(o.key)]
    if not videos:
        return SkipReason(
            f"no video files under {store.location(storage.video_prefix)} "
            f"({len(objects)} other objects)"
        )
    cursor = SensorCursor.parse(context.cursor)
    plan = plan_tick(videos, cursor, max_per_tick)
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
                tags={SOURCE_KEY_TAG: o.key, "talent/video": ids[o.key]},
            )
            for o in plan.requested
        ],
        dynamic_partitions_requests=[videos_partitions.build_add_request(new_partitions)]
        if new_partitions
        else [],
        cursor=plan.cursor.dump(),
    )
