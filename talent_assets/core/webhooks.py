"""Completion webhooks, the pure part: the event, its signature, and the retry schedule.

A finished ``process_video`` run becomes one event (``video.succeeded`` / ``video.failed``),
POSTed as JSON to ``TALENT_WEBHOOK_URL`` or the run's own URL (``talent/webhook_url``).
With ``TALENT_WEBHOOK_SECRET`` set, each attempt is signed like Stripe's webhooks:
``Talent-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``; the timestamp is
part of what is signed, so a receiver that checks it (:func:`verify_signature`) rejects
replays of an old delivery. ``Talent-Event-Id`` is the same on every attempt for one run and
outcome, so a receiver can drop the duplicates that at-least-once delivery implies.

The schedule (:class:`RetryPolicy`) and what an attempt's outcome means for the next one
(:func:`settle`) live here too, so the daemon's sensor and the blocking
:func:`~talent_assets.infra.webhook_delivery.deliver` follow the same rules. The format is
documented for receivers in docs/webhooks.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

SUCCEEDED = "video.succeeded"
FAILED = "video.failed"
EventName = Literal["video.succeeded", "video.failed"]

SIGNATURE_HEADER = "Talent-Signature"
EVENT_ID_HEADER = "Talent-Event-Id"
# Longest recorded reason: run tags are for reading in the UI, not for stack traces.
MAX_REASON_CHARS = 300
_URL = re.compile(r"(https?)://\S+", re.IGNORECASE)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one event is delivered.

    Attempt ``n`` (from 1) that fails with a retryable outcome is followed by attempt
    ``n + 1`` no earlier than ``first_delay_s * factor ** (n - 1)`` seconds later: 1, 2, 4,
    8 s by default, five attempts in all, each given ``timeout_s`` to answer.
    """

    max_attempts: int = 5
    first_delay_s: float = 1.0
    factor: float = 2.0
    timeout_s: float = 10.0

    def delay_after(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        return self.first_delay_s * self.factor ** max(0, attempts - 1)


#: The documented schedule (docs/webhooks.md).
DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class AttemptOutcome:
    """What one POST came to: an HTTP status, or no answer (``error`` says why).

    ``refused`` marks a URL the SSRF guard would not call: retrying cannot change that.
    """

    status: int | None = None
    error: str = ""
    refused: bool = False

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Worth another attempt: no answer (connection error, timeout), 429 or 5xx.

        Other 4xx mean the receiver rejects this request as such, and redirects are not
        followed (a POST must not be re-sent to wherever a 3xx points), so neither is retried.
        """
        if self.refused:
            return False
        return self.status is None or self.status == 429 or self.status >= 500

    def describe(self) -> str:
        if self.status is not None:
            return f"HTTP {self.status}"
        return self.error or "no answer"


@dataclass(frozen=True)
class PendingDelivery:
    """One event on its way: kept in the sensor's cursor between attempts.

    The body is built once, so every attempt sends the same bytes; the URL is not kept (it
    is looked up again from the run's tag or the settings at each attempt), so a URL whose
    path or query is itself a secret never lands in the cursor, which the UI shows.
    """

    run_id: str
    event: str
    body: str
    attempts: int = 0
    due_at: float = 0.0
    last_error: str = ""

    @property
    def event_id(self) -> str:
        return event_id(self.run_id, self.event)


@dataclass(frozen=True)
class Settled:
    """After an attempt: the line to record, and the delivery again if it is retried."""

    record: str
    retry: PendingDelivery | None = None


def event_id(run_id: str, event: str) -> str:
    """Stable per run and outcome: every attempt and redelivery of one event carries it."""
    return f"{run_id}.{event}"


def iso_utc(timestamp: float) -> str:
    """``2026-01-31T12:00:00.123Z``: the event's ``occurred_at``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_event(
    *,
    event: EventName,
    video_id: str,
    run_id: str,
    source: str | None,
    occurred_at: float,
    people: int | None = None,
    manifest: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The JSON event for one finished run; ``error`` is the one-line reason of a failure."""
    return {
        "event": event,
        "video_id": video_id,
        "status": "success" if event == SUCCEEDED else "failure",
        "run_id": run_id,
        "source": source,
        "people": people,
        "manifest": manifest,
        "error": error.splitlines()[0] if error else None,
        "occurred_at": iso_utc(occurred_at),
    }


def encode_event(payload: dict[str, Any]) -> str:
    """The body as sent: compact JSON (the signature covers these exact bytes)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` with ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Talent-Signature`` value: ``t=<timestamp>,v1=<signature>``."""
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def request_headers(
    body: bytes, event_id: str, secret: str | None, now: float | None = None
) -> dict[str, str]:
    """Headers of one attempt: JSON, the event id, and the signature when there is a secret
    (signed afresh per attempt, so a late retry is not mistaken for a replay)."""
    headers = {"Content-Type": "application/json", EVENT_ID_HEADER: event_id}
    if secret:
        timestamp = int(time.time() if now is None else now)
        headers[SIGNATURE_HEADER] = signature_header(secret, timestamp, body)
    return headers


def verify_signature(
    secret: str, header: str, body: bytes, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """Whether ``header`` (a ``Talent-Signature`` value) signs ``body`` with ``secret``,
    made within ``tolerance_s`` of ``now``. Stdlib only, for receivers to copy.

    Every ``v1`` entry is tried (a sender may sign with an old and a new secret while the
    secret is rotated), each with a constant-time comparison.
    """
    timestamp, signatures = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in signatures)


def settle(
    pending: PendingDelivery, outcome: AttemptOutcome, now: float, policy: RetryPolicy
) -> Settled:
    """What follows an attempt: delivered, retried later (per the policy) or given up."""
    attempts = pending.attempts + 1
    noun = "attempt" if attempts == 1 else "attempts"
    if outcome.delivered:
        return Settled(f"delivered {outcome.status} after {attempts} {noun}")
    reason = _clip(outcome.describe())
    if outcome.retryable and attempts < policy.max_attempts:
        retry = replace(
            pending,
            attempts=attempts,
            due_at=now + policy.delay_after(attempts),
            last_error=reason,
        )
        return Settled(f"retrying: attempt {attempts} of {policy.max_attempts}: {reason}", retry)
    return Settled(f"failed after {attempts} {noun}: {reason}")


def redact_url(message: str) -> str:
    """``message`` with every URL in it cut down to its origin (``scheme://host:port``):
    webhook URLs can carry their secret in the path (``/hooks/T0/B0/XXXX``) or the query,
    and reasons are recorded where every UI user reads them."""

    def origin(match: re.Match[str]) -> str:
        text = match.group(0)
        tail = text[len(text.rstrip(":,;.)")) :]
        netloc = urlsplit(text.rstrip(":,;.)")).netloc.rpartition("@")[2]
        return f"{match.group(1)}://{netloc}{tail}"

    return _URL.sub(origin, message)


def _clip(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no answer"
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…"


@dataclass(frozen=True)
class WebhookCursor:
    """The sensor's state: how far it has read each kind of run-end event (event log storage
    ids), and the deliveries still to be attempted."""

    after: dict[str, int]
    pending: tuple[PendingDelivery, ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> WebhookCursor | None:
        """The cursor, or None for none or one this version cannot read (then the sensor
        starts afresh from the newest events)."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
            after = {str(k): int(v) for k, v in data["after"].items()}
            pending = tuple(PendingDelivery(**p) for p in data.get("pending", []))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return cls(after, pending)

    def dump(self) -> str:
        return json.dumps(
            {"after": self.after, "pending": [asdict(p) for p in self.pending]},
            separators=(",", ":"),
            sort_keys=True,
        )
