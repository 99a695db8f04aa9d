"""S3 event notifications as S3 writes them to SQS (AWS's "Event message structure",
version 2.1), for the tests of the sensor's ``sqs`` mode. SeaweedFS, our S3 server, has no
bucket notifications in S3's format, so the tests publish what S3 would."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus


def s3_event_record(
    bucket: str, key: str, etag: str, size: int, event_name: str = "ObjectCreated:Put"
) -> dict[str, Any]:
    """One record; the key URL-encoded the way S3 encodes it (a space becomes ``+``)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURI"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "talent-new-videos",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": size,
                "eTag": etag,
                "sequencer": "0055AED6DCD90281E5",
            },
        },
    }


def s3_event_body(*records: dict[str, Any]) -> str:
    """A message body as S3 sends it to SQS."""
    return json.dumps({"Records": list(records)})


def s3_test_event_body(bucket: str) -> str:
    """The message S3 sends once when a notification configuration is saved."""
    return json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "Bucket": bucket,
            "RequestId": "5582815E1AEA5ADF",
            "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
        }
    )


def sns_envelope(message: str) -> str:
    """``message`` as SNS delivers it to an SQS subscriber without raw delivery."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:talent-uploads",
            "Subject": "Amazon S3 Notification",
            "Message": message,
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
    )
