"""The stack with the sensor in ``sqs`` mode: a real daemon reads S3 event notifications from
a real SQS-compatible server (fauxqs on loopback) and processes the video they name.

SeaweedFS keeps no S3-style bucket notifications (PutBucketNotificationConfiguration is not
implemented), so the test publishes the event exactly as S3 would after the upload.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from talent_assets.defs.tags import SOURCE_KEY_TAG
from talent_assets.devstack.local_sqs import LocalSQSServer
from talent_assets.devstack.stack import LocalStack, wait_for_runs
from talent_assets.infra.s3 import bucket_store
from talent_assets.infra.settings import Settings
from tests.support.s3_events import s3_event_body, s3_event_record, s3_test_event_body

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _queue_counts(sqs: LocalSQSServer, queue_url: str) -> tuple[int, int]:
    attributes = sqs.client().get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
    values = attributes["Attributes"]
    return int(values["ApproximateNumberOfMessages"]), int(
        values["ApproximateNumberOfMessagesNotVisible"]
    )


def _wait_for_empty_queue(sqs: LocalSQSServer, queue_url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _queue_counts(sqs, queue_url) != (0, 0):
        assert time.monotonic() < deadline, f"queue not drained: {_queue_counts(sqs, queue_url)}"
        time.sleep(1)


def test_a_video_announced_on_the_queue_is_processed_once(
    tmp_path: Path, three_person, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalSQSServer(tmp_path / "sqs") as sqs:
        queue_url = sqs.create_queue("talent-new-videos")
        for name, value in sqs.environment(queue_url).items():
            monkeypatch.setenv(name, value)
        stack = LocalStack(
            tmp_path / ".talent",
            bucket="talent",
            sensor_interval_s=2,
            credentials=(f"sqs{secrets.token_hex(4)}", secrets.token_urlsafe(24)),
        )
        with stack:
            for name, value in stack.environment().items():
                monkeypatch.setenv(name, value)
            store = bucket_store(Settings.from_env())
            key = "videos/from queue/three people.mp4"
            store.put_bytes(key, three_person[0].read_bytes(), "video/mp4")
            head = store.head(key)
            event = s3_event_body(s3_event_record("talent", key, head.etag, head.size))
            client = sqs.client()
            client.send_message(QueueUrl=queue_url, MessageBody=s3_test_event_body("talent"))
            client.send_message(QueueUrl=queue_url, MessageBody=event)

            run = wait_for_runs(stack.dagster_home, [key], timeout_s=600)[key]
            assert run.status == DagsterRunStatus.SUCCESS
            _wait_for_empty_queue(sqs, queue_url, timeout_s=60)

            # S3 delivers at least once: the same event again starts nothing new.
            client.send_message(QueueUrl=queue_url, MessageBody=event)
            _wait_for_empty_queue(sqs, queue_url, timeout_s=60)
            with DagsterInstance.from_config(str(stack.dagster_home)) as instance:
                runs = instance.get_runs(filters=RunsFilter(tags={SOURCE_KEY_TAG: key}))
            assert [r.run_id for r in runs] == [run.run_id]
