"""The S3 sensor's decision per tick, pure: which listed objects (``list`` mode) or queued S3
event notifications (``sqs`` mode) become runs, and the cursor.

Tested without Dagster; ``defs/sensors.py`` wraps it in the ``s3_video_sensor``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from talent_assets.core.objects import ObjectInfo
from talent_assets.core.s3_events import parse_s3_event_message
from talent_assets.core.video_id import is_video_key, video_id_for

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


# --- the sqs mode: S3 event notifications read from a queue -------------------------------


@dataclass(frozen=True)
class QueueMessage:
    """One message received from the queue (its receipt handle is what deletes it)."""

    message_id: str
    receipt_handle: str
    body: str


@dataclass(frozen=True)
class PendingMessage:
    """A message whose videos were requested: deleted once all its run keys are recorded."""

    receipt_handle: str
    run_keys: tuple[str, ...]


@dataclass
class QueueCursor:
    """The sqs mode's cursor: the messages of the last tick that still await deletion."""

    pending: list[PendingMessage] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: str | None) -> QueueCursor:
        # A cursor left by the list mode (switching modes) has no "pending": start afresh.
        data = json.loads(raw) if raw else {}
        return cls(
            pending=[
                PendingMessage(receipt_handle=p[0], run_keys=tuple(p[1]))
                for p in data.get("pending", [])
            ]
        )

    def dump(self) -> str:
        return json.dumps(
            {"pending": [[p.receipt_handle, list(p.run_keys)] for p in self.pending]},
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class VideoRequest:
    """A video to run: its object key, ETag, partition key and run key."""

    key: str
    etag: str
    video_id: str

    @property
    def run_key(self) -> str:
        return run_key_for(self.video_id, self.etag)


@dataclass(frozen=True)
class QueuePlan:
    """What one sqs tick decided.

    ``requested``: one request per run key (a message redelivered, or the same upload in two
    messages, asks once); ``pending``: messages to delete after their runs are recorded;
    ``discard``: receipt handles of messages with nothing to run (test events, other keys),
    deleted at once; ``rejected``: (message id, why) of bodies that are no S3 notification,
    left on the queue for its dead-letter queue; ``ignored``: why records were skipped.
    """

    requested: list[VideoRequest]
    pending: list[PendingMessage]
    discard: list[str]
    rejected: list[tuple[str, str]]
    ignored: list[str]


def plan_queue_tick(messages: list[QueueMessage], bucket: str, prefix: str) -> QueuePlan:
    """Turn received messages into run requests and what to do with each message."""
    requested: dict[str, VideoRequest] = {}
    pending: list[PendingMessage] = []
    discard: list[str] = []
    rejected: list[tuple[str, str]] = []
    ignored: list[str] = []
    for message in messages:
        parsed = parse_s3_event_message(message.body, bucket, prefix)
        ignored.extend(parsed.ignored)
        if parsed.error:
            rejected.append((message.message_id, parsed.error))
            continue
        keys = []
        for event in parsed.videos:
            request = VideoRequest(event.key, event.etag, video_id_for(bucket, event.key, prefix))
            requested.setdefault(request.run_key, request)
            keys.append(request.run_key)
        if keys:
            pending.append(PendingMessage(message.receipt_handle, tuple(dict.fromkeys(keys))))
        else:
            discard.append(message.receipt_handle)
    return QueuePlan(list(requested.values()), pending, discard, rejected, ignored)


def queue_visibility_s(sensor_interval_s: int) -> int:
    """How long a received message stays hidden: long enough that the next tick (which
    deletes it) comes well before it would be delivered again, even with a busy daemon."""
    return max(60, 4 * sensor_interval_s)


def settle_pending(
    pending: list[PendingMessage], recorded_run_keys: set[str]
) -> tuple[list[str], list[PendingMessage]]:
    """Split last tick's messages into those safe to delete (every run key recorded) and
    those whose runs are not recorded (left alone: they return after the visibility timeout
    and are requested again, which the run keys make harmless)."""
    done = [p.receipt_handle for p in pending if set(p.run_keys) <= recorded_run_keys]
    waiting = [p for p in pending if not set(p.run_keys) <= recorded_run_keys]
    return done, waiting
