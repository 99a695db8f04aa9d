"""The sqs mode's pure parts: reading S3 event notifications and planning a tick."""

from __future__ import annotations

import pytest

from talent_assets.core.s3_events import parse_s3_event_message
from talent_assets.core.sensor_plan import (
    PendingMessage,
    QueueCursor,
    QueueMessage,
    SensorCursor,
    plan_queue_tick,
    run_key_for,
    settle_pending,
)
from talent_assets.core.video_id import video_id_for
from talent_assets.infra.settings import Settings, SettingsError
from tests.support.s3_events import (
    s3_event_body,
    s3_event_record,
    s3_test_event_body,
    sns_envelope,
)

BUCKET, PREFIX = "talent", "videos/"


def test_a_created_video_is_read_with_its_key_decoded_and_etag() -> None:
    body = s3_event_body(s3_event_record(BUCKET, "videos/Day 1/take (2).MOV", "abc123", 4096))
    parsed = parse_s3_event_message(body, BUCKET, PREFIX)
    assert parsed.error is None and parsed.ignored == []
    [video] = parsed.videos
    assert (video.key, video.etag, video.size) == ("videos/Day 1/take (2).MOV", "abc123", 4096)


def test_several_records_in_one_message_and_multipart_etags() -> None:
    body = s3_event_body(
        s3_event_record(BUCKET, "videos/a.mp4", "e1", 1),
        s3_event_record(BUCKET, "videos/b.webm", "9b2cf535f27731c974343645a3985328-5", 2,
                        "ObjectCreated:CompleteMultipartUpload"),
    )  # fmt: skip
    parsed = parse_s3_event_message(body, BUCKET, PREFIX)
    assert [(v.key, v.etag) for v in parsed.videos] == [
        ("videos/a.mp4", "e1"),
        ("videos/b.webm", "9b2cf535f27731c974343645a3985328-5"),
    ]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (s3_event_record(BUCKET, "videos/a.mp4", "e", 1, "ObjectRemoved:Delete"), "not an object"),
        (s3_event_record("other", "videos/a.mp4", "e", 1), "not the configured bucket"),
        (s3_event_record(BUCKET, "elsewhere/a.mp4", "e", 1), "outside videos/"),
        (s3_event_record(BUCKET, "videos/notes.txt", "e", 1), "not a video file"),
        (s3_event_record(BUCKET, "videos/../etc/a.mp4", "e", 1), "unsafe object key"),
        ({"eventSource": "aws:sqs"}, "not an S3 record"),
    ],
)
def test_records_that_are_not_new_videos_here_are_ignored_with_a_reason(
    record: dict, reason: str
) -> None:
    parsed = parse_s3_event_message(s3_event_body(record), BUCKET, PREFIX)
    assert parsed.videos == [] and parsed.error is None
    assert reason in parsed.ignored[0]


def test_test_event_and_sns_envelope() -> None:
    assert parse_s3_event_message(s3_test_event_body(BUCKET), BUCKET, PREFIX).ignored == [
        "s3:TestEvent"
    ]
    wrapped = sns_envelope(s3_event_body(s3_event_record(BUCKET, "videos/x.mkv", "e", 1)))
    assert [v.key for v in parse_s3_event_message(wrapped, BUCKET, PREFIX).videos] == [
        "videos/x.mkv"
    ]


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"hello": "world"}'])
def test_bodies_that_are_no_s3_notification_are_errors(body: str) -> None:
    parsed = parse_s3_event_message(body, BUCKET, PREFIX)
    assert parsed.error and parsed.videos == []


def _message(n: int, body: str) -> QueueMessage:
    return QueueMessage(message_id=f"m{n}", receipt_handle=f"r{n}", body=body)


def test_plan_asks_once_per_upload_and_sorts_messages() -> None:
    video = s3_event_body(s3_event_record(BUCKET, "videos/a.mp4", "e1", 1))
    messages = [
        _message(1, video),
        _message(2, video),  # the same upload delivered twice
        _message(3, s3_test_event_body(BUCKET)),
        _message(4, s3_event_body(s3_event_record(BUCKET, "videos/readme.txt", "e", 1))),
        _message(5, "garbage"),
        _message(6, s3_event_body(s3_event_record(BUCKET, "videos/a.mp4", "e2", 1))),
    ]
    plan = plan_queue_tick(messages, BUCKET, PREFIX)
    vid = video_id_for(BUCKET, "videos/a.mp4", PREFIX)
    assert [r.run_key for r in plan.requested] == [run_key_for(vid, "e1"), run_key_for(vid, "e2")]
    assert {r.video_id for r in plan.requested} == {vid}
    assert plan.pending == [
        PendingMessage("r1", (run_key_for(vid, "e1"),)),
        PendingMessage("r2", (run_key_for(vid, "e1"),)),
        PendingMessage("r6", (run_key_for(vid, "e2"),)),
    ]
    assert plan.discard == ["r3", "r4"]
    assert [m for m, _ in plan.rejected] == ["m5"]


def test_a_message_is_deleted_only_when_all_its_runs_are_recorded() -> None:
    pending = [PendingMessage("r1", ("a", "b")), PendingMessage("r2", ("c",))]
    done, waiting = settle_pending(pending, {"a", "c"})
    assert done == ["r2"] and waiting == [pending[0]]
    assert settle_pending(pending, set()) == ([], pending)


def test_queue_cursor_round_trip_and_a_list_mode_cursor() -> None:
    cursor = QueueCursor([PendingMessage("r1", ("a", "b"))])
    assert QueueCursor.parse(cursor.dump()) == cursor
    # Switching a deployment from list to sqs: the old cursor means nothing pending.
    assert QueueCursor.parse(SensorCursor().dump()) == QueueCursor()
    assert QueueCursor.parse(None) == QueueCursor()


def test_sqs_mode_needs_a_queue_url() -> None:
    with pytest.raises(SettingsError, match="TALENT_SQS_QUEUE_URL"):
        Settings.from_env({"TALENT_SENSOR_SOURCE": "sqs"})
    with pytest.raises(SettingsError, match="TALENT_SENSOR_SOURCE"):
        Settings.from_env({"TALENT_SENSOR_SOURCE": "kafka"})
    settings = Settings.from_env(
        {"TALENT_SENSOR_SOURCE": "SQS", "TALENT_SQS_QUEUE_URL": "https://sqs.x/1/q"}
    )
    assert (settings.sensor_source, settings.sqs_queue_url) == ("sqs", "https://sqs.x/1/q")
    assert Settings.from_env({}).sensor_source == "list"
