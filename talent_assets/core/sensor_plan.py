"""The S3 sensor's decision per tick, pure: which listed objects become runs, and the cursor.

Tested without Dagster; ``defs/sensors.py`` wraps it in the ``s3_video_sensor``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from talent_assets.core.objects import ObjectInfo
from talent_assets.core.video_id import is_video_key

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
