"""Completion webhooks, the pure part: the event, the signature, the schedule, the cursor."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest

from talent_assets.core.webhooks import (
    FAILED,
    SUCCEEDED,
    AttemptOutcome,
    PendingDelivery,
    RetryPolicy,
    WebhookCursor,
    build_event,
    encode_event,
    redact_url,
    request_headers,
    settle,
    signature_header,
    verify_signature,
)

SECRET = "whsec-unit-test"
BODY = b'{"event":"video.succeeded","video_id":"abc"}'
NOW = 1_760_000_000
DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, NOW, BODY) == f"t={NOW},v1={expected}"


def test_a_fresh_signature_verifies() -> None:
    header = signature_header(SECRET, NOW, BODY)
    assert verify_signature(SECRET, header, BODY, now=NOW + 299)
    assert verify_signature(SECRET, header, BODY, now=NOW - 299)  # a receiver's clock ahead


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("another secret", BODY, NOW),  # wrong key
        (SECRET, BODY.replace(b"abc", b"abd"), NOW),  # tampered body
        (SECRET, BODY, NOW + 301),  # replayed after the tolerance
    ],
)
def test_a_wrong_key_a_tampered_body_or_an_old_timestamp_fails(
    secret: str, body: bytes, now: int
) -> None:
    assert not verify_signature(secret, signature_header(SECRET, NOW, BODY), body, now=now)


@pytest.mark.parametrize(
    "header",
    ["", "garbage", f"t={NOW}", "v1=00", f"t=x,v1={'0' * 64}", f"t={NOW},v0=abc"],
)
def test_malformed_headers_fail(header: str) -> None:
    assert not verify_signature(SECRET, header, BODY, now=NOW)


def test_a_timestamp_moved_forward_breaks_the_signature() -> None:
    """The timestamp is signed: an attacker cannot refresh an old delivery's ``t``."""
    signature = signature_header(SECRET, NOW, BODY).split(",v1=")[1]
    assert not verify_signature(SECRET, f"t={NOW + 1000},v1={signature}", BODY, now=NOW + 1000)


def test_any_of_several_v1_signatures_may_match_during_a_secret_rotation() -> None:
    good = signature_header(SECRET, NOW, BODY).split(",v1=")[1]
    assert verify_signature(SECRET, f"t={NOW},v1={'0' * 64},v1={good}", BODY, now=NOW)


def test_headers_are_signed_only_with_a_secret_and_carry_a_stable_event_id() -> None:
    signed = request_headers(BODY, "run-1.video.succeeded", SECRET, now=NOW)
    assert signed["Content-Type"] == "application/json"
    assert signed["Talent-Event-Id"] == "run-1.video.succeeded"
    assert verify_signature(SECRET, signed["Talent-Signature"], BODY, now=NOW)
    unsigned = request_headers(BODY, "run-1.video.succeeded", None, now=NOW)
    assert "Talent-Signature" not in unsigned
    assert SECRET not in json.dumps(signed)


def test_events_carry_every_documented_field() -> None:
    success = build_event(
        event=SUCCEEDED,
        video_id="vid",
        run_id="run-1",
        source="s3://talent/videos/a.mp4",
        occurred_at=NOW + 0.25,
        people=3,
        manifest="s3://talent/processed/a/manifest.json",
    )
    assert success == {
        "event": "video.succeeded",
        "video_id": "vid",
        "status": "success",
        "run_id": "run-1",
        "source": "s3://talent/videos/a.mp4",
        "people": 3,
        "manifest": "s3://talent/processed/a/manifest.json",
        "error": None,
        "occurred_at": "2025-10-09T08:53:20.250Z",
    }
    failure = build_event(
        event=FAILED,
        video_id="vid",
        run_id="run-2",
        source=None,
        occurred_at=NOW,
        error="not a video: no streams\nTraceback ...",
    )
    assert failure["status"] == "failure"
    assert failure["error"] == "not a video: no streams"
    assert failure["people"] is None and failure["manifest"] is None
    assert json.loads(encode_event(failure)) == failure


def test_the_documented_schedule_is_1_2_4_8_seconds_over_5_attempts() -> None:
    policy = RetryPolicy()
    assert [policy.delay_after(n) for n in range(1, 5)] == [1, 2, 4, 8]
    assert (policy.max_attempts, policy.timeout_s) == (5, 10)


@pytest.mark.parametrize(
    ("outcome", "retried"),
    [
        (AttemptOutcome(status=503), True),
        (AttemptOutcome(status=500), True),
        (AttemptOutcome(status=429), True),
        (AttemptOutcome(error="timed out after 10 s"), True),
        (AttemptOutcome(error="ConnectionRefusedError: [Errno 111]"), True),
        (AttemptOutcome(status=400), False),
        (AttemptOutcome(status=404), False),
        (AttemptOutcome(status=302), False),
        (AttemptOutcome(error="refused: 10.0.0.1 is private", refused=True), False),
    ],
)
def test_what_is_retried(outcome: AttemptOutcome, retried: bool) -> None:
    settled = settle(PendingDelivery("r", SUCCEEDED, "{}"), outcome, NOW, RetryPolicy())
    assert (settled.retry is not None) is retried
    if not retried:
        assert settled.record.startswith("failed after 1 attempt: ")


def test_settle_schedules_backoff_then_gives_up_after_the_last_attempt() -> None:
    policy = RetryPolicy()
    pending = PendingDelivery("r", FAILED, "{}")
    due = []
    for _ in range(policy.max_attempts - 1):
        settled = settle(pending, AttemptOutcome(status=503), NOW, policy)
        assert settled.retry is not None
        pending = settled.retry
        due.append(pending.due_at - NOW)
    assert due == [1, 2, 4, 8]
    assert settled.record == "retrying: attempt 4 of 5: HTTP 503"
    final = settle(pending, AttemptOutcome(error="timed out after 10 s"), NOW, policy)
    assert final.retry is None
    assert final.record == "failed after 5 attempts: timed out after 10 s"


def test_settle_records_delivery_with_status_and_attempts() -> None:
    first = settle(
        PendingDelivery("r", SUCCEEDED, "{}"), AttemptOutcome(status=200), NOW, RetryPolicy()
    )
    assert first.record == "delivered 200 after 1 attempt" and first.retry is None
    later = settle(
        PendingDelivery("r", SUCCEEDED, "{}", attempts=2),
        AttemptOutcome(status=204),
        NOW,
        RetryPolicy(),
    )
    assert later.record == "delivered 204 after 3 attempts"


def test_recorded_reasons_keep_only_the_origin_of_urls() -> None:
    message = "http://hooks.example.com:8443/services/T0/B0/XXXX?token=abc: timed out after 10 s"
    assert redact_url(message) == "http://hooks.example.com:8443: timed out after 10 s"
    assert redact_url("https://u:p@h.example/x, then") == "https://h.example, then"
    long = settle(
        PendingDelivery("r", SUCCEEDED, "{}"), AttemptOutcome(error="x" * 1000), NOW, RetryPolicy()
    )
    assert len(long.record) < 400


def test_the_cursor_round_trips_and_unreadable_cursors_start_afresh() -> None:
    cursor = WebhookCursor(
        {"RUN_SUCCESS": 7, "RUN_FAILURE": 3},
        (PendingDelivery("r", FAILED, '{"a":1}', attempts=2, due_at=5.5, last_error="HTTP 503"),),
    )
    assert WebhookCursor.parse(cursor.dump()) == cursor
    for raw in (None, "", "not json", '{"pending": []}', '{"after": 3}'):
        assert WebhookCursor.parse(raw) is None


def _doc_snippet(doc: Path) -> str:
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), re.DOTALL)
    verifiers = [b for b in blocks if "def verify_signature" in b]
    assert verifiers, f"{doc.name} has no Python verify_signature snippet"
    return verifiers[0]


@pytest.mark.parametrize("doc", [DOC, DOC.parents[1] / "README.md"], ids=lambda p: p.name)
def test_the_receivers_snippet_in_the_docs_verifies_what_we_send(doc: Path) -> None:
    """The copy-paste verifiers of docs/webhooks.md and the README agree with the sender,
    stdlib only."""
    snippet = _doc_snippet(doc)
    imports = set(re.findall(r"^\s*(?:import|from) (\w+)", snippet, re.MULTILINE))
    assert imports <= {"hashlib", "hmac", "time"}, imports
    namespace: dict = {}
    exec(snippet, namespace)  # our own documentation
    verify = namespace["verify_signature"]
    header = request_headers(BODY, "e", SECRET)["Talent-Signature"]
    assert verify(SECRET, header, BODY)
    assert not verify(SECRET, header, BODY + b" ")
    assert not verify("wrong", header, BODY)
    old = signature_header(SECRET, NOW, BODY)
    assert not verify(SECRET, old, BODY)  # years ago: outside the tolerance
