"""The files in deploy/ that wire S3 event notifications to the sensor's queue: valid for the
APIs they are meant for, consistent with the settings, and no wider than the sensor needs."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.validate import validate_parameters

from talent_assets.core.sensor_plan import queue_visibility_s
from talent_assets.devstack.local_sqs import LocalSQSServer
from talent_assets.infra.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
QUEUE_ARN = "arn:aws:sqs:YOUR-REGION:YOUR-ACCOUNT-ID:talent-new-videos"


def _json(name: str) -> dict:
    return json.loads((DEPLOY / name).read_text())


@pytest.fixture(scope="module")
def sqs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSQSServer]:
    with LocalSQSServer(tmp_path_factory.mktemp("sqs")) as server:
        yield server


def test_bucket_notification_is_a_valid_request_for_new_objects_under_the_video_prefix() -> None:
    config = _json("s3-notification.json")
    model = boto3.session.Session().client("s3", region_name="us-east-1").meta.service_model
    shape = model.operation_model("PutBucketNotificationConfiguration").input_shape
    validate_parameters({"Bucket": "YOUR-BUCKET", "NotificationConfiguration": config}, shape)
    [queue] = config["QueueConfigurations"]
    assert queue["QueueArn"] == QUEUE_ARN
    assert queue["Events"] == ["s3:ObjectCreated:*"]
    rules = {r["Name"]: r["Value"] for r in queue["Filter"]["Key"]["FilterRules"]}
    # No suffix rule: S3 suffixes are case-sensitive and one per rule; the sensor filters
    # video extensions itself, in any case.
    assert rules == {"prefix": Settings().video_prefix}


def test_only_the_bucket_may_send_to_the_queue() -> None:
    [statement] = _json("sqs-queue-policy.json")["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage" and statement["Resource"] == QUEUE_ARN
    assert statement["Condition"]["ArnEquals"] == {"aws:SourceArn": "arn:aws:s3:::YOUR-BUCKET"}


def test_the_sensor_needs_only_receive_and_delete() -> None:
    [statement] = _json("sqs-sensor-policy.json")["Statement"]
    assert sorted(statement["Action"]) == ["sqs:DeleteMessage", "sqs:ReceiveMessage"]
    assert statement["Resource"] == QUEUE_ARN
    # The policy covers every SQS call the sensor makes (DeleteMessageBatch is authorised
    # as sqs:DeleteMessage).
    source = (Path(__file__).resolve().parents[2] / "talent_assets/infra/sqs.py").read_text()
    calls = {
        node.func.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == "client"
    }
    assert calls == {"receive_message", "delete_message_batch"}


def test_queue_attributes_are_accepted_by_an_sqs_server(sqs_server: LocalSQSServer) -> None:
    client = sqs_server.client()
    dead = sqs_server.create_queue("talent-new-videos-dlq")
    dead_arn = client.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    attributes = _json("sqs-queue-attributes.json")
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == QUEUE_ARN + "-dlq"
    attributes["RedrivePolicy"] = json.dumps({**redrive, "deadLetterTargetArn": dead_arn})
    url = sqs_server.create_queue("talent-new-videos", **attributes)
    kept = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert kept["VisibilityTimeout"] == attributes["VisibilityTimeout"]
    assert json.loads(kept["RedrivePolicy"])["deadLetterTargetArn"] == dead_arn
    # The sensor asks for its own visibility per receive; the queue's default matches the
    # default tick, for readers that do not ask.
    assert int(attributes["VisibilityTimeout"]) == queue_visibility_s(Settings().sensor_interval_s)
