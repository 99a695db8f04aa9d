"""The queue that S3 event notifications land in, for the sensor's ``sqs`` mode.

Plain boto3 over HTTP: AWS SQS in production, any SQS-compatible server elsewhere (the tests
run fauxqs on loopback). Credentials come from boto3's default chain, as for S3.
"""

from __future__ import annotations

from typing import Any

from talent_assets.core.sensor_plan import QueueMessage

# SQS returns at most 10 messages per ReceiveMessage and deletes at most 10 per batch.
SQS_BATCH = 10
# Seconds one receive call waits for messages (long polling): short enough for a sensor tick,
# long enough that an empty answer means an empty queue (short polls sample a subset of
# SQS's servers and can come back empty while messages wait).
RECEIVE_WAIT_S = 1
MAX_VISIBILITY_S = 12 * 3600


def sqs_client(endpoint_url: str | None, region: str | None) -> Any:
    """An SQS client with standard retries; ``endpoint_url`` only for a non-AWS server."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        config=Config(retries={"total_max_attempts": 5, "mode": "standard"}),
    )


class VideoEventQueue:
    """Receive and delete S3 event notification messages of one queue."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def receive(self, limit: int, visibility_s: int) -> list[QueueMessage]:
        """Up to ``limit`` messages, each hidden from other readers for ``visibility_s``."""
        messages: list[QueueMessage] = []
        while len(messages) < limit:
            answer = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_BATCH, limit - len(messages)),
                VisibilityTimeout=min(visibility_s, MAX_VISIBILITY_S),
                WaitTimeSeconds=RECEIVE_WAIT_S if not messages else 0,
            )
            batch = answer.get("Messages", [])
            if not batch:
                break
            messages.extend(
                QueueMessage(m["MessageId"], m["ReceiptHandle"], m.get("Body", "")) for m in batch
            )
        return messages

    def delete(self, receipt_handles: list[str]) -> list[str]:
        """Delete messages in batches; returns the error messages of those not deleted
        (an expired receipt handle: the message was received again meanwhile)."""
        errors: list[str] = []
        for start in range(0, len(receipt_handles), SQS_BATCH):
            chunk = receipt_handles[start : start + SQS_BATCH]
            answer = self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)],
            )
            errors.extend(
                f"{f.get('Code', 'error')}: {f.get('Message', '')}".strip()
                for f in answer.get("Failed", [])
            )
        return errors
