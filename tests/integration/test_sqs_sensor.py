"""The sensor's ``sqs`` mode against a real SQS-compatible server (fauxqs, an npm package, on
loopback, driven over HTTP by boto3 as AWS would be) and a real Dagster instance."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context

from talent_assets.core.video_id import video_id_for
from talent_assets.definitions import build_definitions
from talent_assets.defs.resources import build_resources
from talent_assets.defs.sensors import build_s3_video_sensor, evaluate_queue_tick
from talent_assets.devstack.local_sqs import LocalSQSServer
from talent_assets.infra.settings import Settings
from tests.support.s3_events import s3_event_body, s3_event_record, s3_test_event_body

BUCKET = "talent"


@pytest.fixture(scope="module")
def sqs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSQSServer]:
    with LocalSQSServer(tmp_path_factory.mktemp("sqs")) as server:
        yield server


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sensor's SQS client signs with boto3's default chain, as in production."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sensor-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sensor-test-secret")


@pytest.fixture
def queue(sqs_server: LocalSQSServer, request: pytest.FixtureRequest) -> str:
    return sqs_server.create_queue(f"videos-{request.node.name[:40]}-{time.time_ns()}")


def _settings(sqs_server: LocalSQSServer, queue_url: str, **extra: str) -> Settings:
    env = {"TALENT_BUCKET": BUCKET, **sqs_server.environment(queue_url), **extra}
    return Settings.from_env(env)


def _tick(instance: DagsterInstance, settings: Settings, cursor: str | None, visibility_s=60):
    """One evaluation of the sensor; partition requests applied as the daemon would."""
    with build_sensor_context(
        instance=instance, cursor=cursor, resources=build_resources(settings)
    ) as context:
        if visibility_s == 60:
            result = build_s3_video_sensor(settings)(context)
        else:
            resources = build_resources(settings)
            result = evaluate_queue_tick(
                context, resources["storage"], resources["video_events"],
                settings.sensor_max_per_tick, visibility_s,
            )  # fmt: skip
    assert isinstance(result, SensorResult)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result


def _record_runs(instance: DagsterInstance, settings: Settings, result: SensorResult) -> None:
    """Create the runs the daemon would create for the tick's run requests."""
    job = build_definitions(settings).get_job_def("process_video")
    for request in result.run_requests:
        instance.create_run_for_job(
            job_def=job,
            tags={**request.tags, "dagster/run_key": request.run_key,
                  "dagster/partition": request.partition_key},
        )  # fmt: skip


def _counts(sqs_server: LocalSQSServer, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages."""
    attributes = sqs_server.client().get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["All"]
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def _send(sqs_server: LocalSQSServer, queue_url: str, *bodies: str) -> None:
    client = sqs_server.client()
    for body in bodies:
        client.send_message(QueueUrl=queue_url, MessageBody=body)


def test_new_videos_are_requested_once_and_deleted_after_their_runs_are_recorded(
    sqs_server: LocalSQSServer, queue: str, dagster_instance: DagsterInstance
) -> None:
    settings = _settings(sqs_server, queue)
    assert settings.sensor_source == "sqs"
    keys = ["videos/a.mp4", "videos/b b.MOV", "videos/sub/c.webm"]
    events = [s3_event_body(s3_event_record(BUCKET, k, f"e{i}", 100)) for i, k in enumerate(keys)]
    _send(sqs_server, queue, *events, events[0], s3_test_event_body(BUCKET),
          s3_event_body(s3_event_record(BUCKET, "videos/notes.txt", "t", 1)))  # fmt: skip

    first = _tick(dagster_instance, settings, None)
    assert sorted(r.tags["talent/key"] for r in first.run_requests) == sorted(keys)
    assert len({r.run_key for r in first.run_requests}) == 3  # the duplicate asks nothing more
    partitions = set(dagster_instance.get_dynamic_partitions("videos"))
    assert partitions == {video_id_for(BUCKET, k, "videos/") for k in keys}
    # The test event and the text file were deleted at once; the video messages wait.
    assert _counts(sqs_server, queue) == (0, 4)

    # Nothing recorded yet (say the daemon died before creating the runs): nothing deleted.
    unrecorded = _tick(dagster_instance, settings, first.cursor)
    assert unrecorded.run_requests == [] and _counts(sqs_server, queue) == (0, 4)
    assert json.loads(unrecorded.cursor) == {"pending": []}

    # With the runs recorded, the next tick deletes their messages.
    _record_runs(dagster_instance, settings, first)
    second = _tick(dagster_instance, settings, first.cursor)
    assert second.run_requests == [] and second.skip_reason
    assert "deleted 4 handled messages" in second.skip_reason.skip_message
    assert _counts(sqs_server, queue) == (0, 0)


def test_a_message_redelivered_after_a_lost_tick_is_asked_again_under_the_same_run_key(
    sqs_server: LocalSQSServer, queue: str, dagster_instance: DagsterInstance
) -> None:
    settings = _settings(sqs_server, queue)
    _send(sqs_server, queue, s3_event_body(s3_event_record(BUCKET, "videos/r.mp4", "e1", 5)))
    first = _tick(dagster_instance, settings, None, visibility_s=1)
    assert len(first.run_requests) == 1
    time.sleep(2.5)  # the tick's cursor is lost and the visibility timeout passes
    again = _tick(dagster_instance, settings, None, visibility_s=1)
    assert [r.run_key for r in again.run_requests] == [first.run_requests[0].run_key]
    _record_runs(dagster_instance, settings, again)
    settled = _tick(dagster_instance, settings, again.cursor)
    assert settled.run_requests == [] and _counts(sqs_server, queue) == (0, 0)


def test_at_most_max_per_tick_messages_are_taken_per_tick(
    sqs_server: LocalSQSServer, queue: str, dagster_instance: DagsterInstance
) -> None:
    settings = _settings(sqs_server, queue, TALENT_SENSOR_MAX_PER_TICK="12")
    _send(sqs_server, queue, *(s3_event_body(s3_event_record(BUCKET, f"videos/{i}.mp4", "e", 1))
                               for i in range(30)))  # fmt: skip
    first = _tick(dagster_instance, settings, None)
    assert len(first.run_requests) == 12
    assert _counts(sqs_server, queue) == (18, 12)
    _record_runs(dagster_instance, settings, first)
    second = _tick(dagster_instance, settings, first.cursor)
    assert len(second.run_requests) == 12
    assert not {r.run_key for r in second.run_requests} & {r.run_key for r in first.run_requests}
    assert _counts(sqs_server, queue) == (6, 12)


def test_a_body_that_is_no_s3_event_goes_to_the_dead_letter_queue(
    sqs_server: LocalSQSServer, queue: str, dagster_instance: DagsterInstance, tmp_path: Path
) -> None:
    client = sqs_server.client()
    dead = sqs_server.create_queue(f"dlq-{time.time_ns()}")
    dead_arn = client.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    client.set_queue_attributes(
        QueueUrl=queue,
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "2"})
        },
    )
    settings = _settings(sqs_server, queue)
    _send(sqs_server, queue, "this is not an S3 notification")
    cursor = None
    for _ in range(3):
        result = _tick(dagster_instance, settings, cursor, visibility_s=1)
        assert result.run_requests == []
        cursor = result.cursor
        time.sleep(1.5)
    assert _counts(sqs_server, queue) == (0, 0)
    moved = client.receive_message(QueueUrl=dead, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in moved] == ["this is not an S3 notification"]
