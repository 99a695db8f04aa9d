"""S3 event notifications, as S3 delivers them to an SQS queue, read into new-video events.

Pure: the sensor's ``sqs`` mode (``defs/sensors.py``) hands each message body here. Bodies
come in three shapes (AWS's "Event message structure" and SNS fan-out):

- ``{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {...}}]}``:
  S3 straight to SQS, up to a few records per message;
- ``{"Service": "Amazon S3", "Event": "s3:TestEvent", ...}``: sent once when the bucket's
  notification configuration is saved;
- ``{"Type": "Notification", "Message": "<one of the above, as a string>"}``: S3 → SNS → SQS
  without raw message delivery.

Object keys in records are URL-encoded the form way (a space is ``+``), so they are decoded
with ``unquote_plus``. ETags come without quotes, as our object listings store them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from talent_assets.core.objects import UnsafeKeyError, check_key
from talent_assets.core.video_id import is_video_key


@dataclass(frozen=True)
class VideoEvent:
    """A video object created (or overwritten) in the bucket."""

    key: str
    etag: str
    size: int
    event_time: str


@dataclass(frozen=True)
class ParsedMessage:
    """What one message says: its video events, and why other records were ignored.

    ``error`` is set when the body is not an S3 notification at all (such a message is left
    on the queue, so the queue's redrive policy moves it to the dead-letter queue).
    """

    videos: list[VideoEvent] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    error: str | None = None


def parse_s3_event_message(body: str, bucket: str, prefix: str) -> ParsedMessage:
    """The new videos under ``prefix`` in ``bucket`` that the message ``body`` reports."""
    try:
        document = json.loads(body)
    except ValueError:
        return ParsedMessage(error="the message body is not JSON")
    if not isinstance(document, dict):
        return ParsedMessage(error="the message body is not a JSON object")
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        return parse_s3_event_message(document["Message"], bucket, prefix)
    if document.get("Event") == "s3:TestEvent":
        return ParsedMessage(ignored=["s3:TestEvent"])
    records = document.get("Records")
    if not isinstance(records, list):
        return ParsedMessage(error="the message is not an S3 event notification (no Records)")
    parsed = ParsedMessage()
    for record in records:
        reason, event = _read_record(record, bucket, prefix)
        if event is not None:
            parsed.videos.append(event)
        else:
            parsed.ignored.append(reason)
    return parsed


def _read_record(record: Any, bucket: str, prefix: str) -> tuple[str, VideoEvent | None]:
    """One record: a video event, or the reason it is not one."""
    if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
        return "not an S3 record", None
    name = str(record.get("eventName", ""))
    if not name.startswith("ObjectCreated:"):
        return f"{name or 'an unnamed event'} is not an object creation", None
    s3 = record.get("s3") or {}
    record_bucket = (s3.get("bucket") or {}).get("name")
    obj = s3.get("object") or {}
    if record_bucket != bucket:
        return f"bucket {record_bucket!r} is not the configured bucket", None
    if not isinstance(obj.get("key"), str) or not obj.get("eTag"):
        return "a record without an object key or ETag", None
    key = unquote_plus(obj["key"])
    try:
        check_key(key)
    except UnsafeKeyError as error:
        return str(error), None
    if not key.startswith(prefix):
        return f"{key} is outside {prefix or 'the bucket root'}", None
    if not is_video_key(key):
        return f"{key} is not a video file", None
    return "", VideoEvent(
        key=key,
        etag=str(obj["eTag"]).strip('"'),
        size=int(obj.get("size") or 0),
        event_time=str(record.get("eventTime", "")),
    )
