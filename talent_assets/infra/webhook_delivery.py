"""Completion webhooks, the I/O part: one signed POST through the SSRF guard, or a whole
delivery with retries and backoff.

The daemon's sensor (``defs/webhook_sensor.py``) calls :func:`attempt` once per due delivery
per tick and keeps the schedule in its cursor; :func:`deliver` runs the same schedule in
one blocking call, sleeping between attempts, for callers that have no daemon. Both decide
with :func:`~talent_assets.core.webhooks.settle`.

The secret only ever reaches :func:`~talent_assets.core.webhooks.request_headers`; what
comes back (outcomes, recorded lines) holds the status or the reason, with the URL cut
down to its origin.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from talent_assets.core.url_policy import UrlAllowList, UrlRefusedError
from talent_assets.core.webhooks import (
    DEFAULT_POLICY,
    AttemptOutcome,
    PendingDelivery,
    RetryPolicy,
    redact_url,
    request_headers,
    settle,
)
from talent_assets.infra.url_fetch import UrlFetchError, post


@dataclass(frozen=True)
class Delivery:
    """How a blocking delivery ended: the recorded line, attempts made, the last outcome."""

    record: str
    attempts: int
    last: AttemptOutcome

    @property
    def delivered(self) -> bool:
        return self.last.delivered


def attempt(
    url: str,
    pending: PendingDelivery,
    secret: str | None,
    allow: UrlAllowList,
    timeout_s: float,
) -> AttemptOutcome:
    """POST ``pending``'s body to ``url`` once (signed when there is a ``secret``).

    Never raises for the receiver's faults: a refused URL, a connection error or a timeout
    becomes an outcome with the reason (URL reduced to its origin).
    """
    body = pending.body.encode()
    headers = request_headers(body, pending.event_id, secret)
    try:
        return AttemptOutcome(status=post(url, body, headers, allow, timeout_s))
    except UrlRefusedError as error:
        return AttemptOutcome(error=redact_url(f"refused: {error}"), refused=True)
    except UrlFetchError as error:
        return AttemptOutcome(error=redact_url(str(error)))


def deliver(
    url: str,
    pending: PendingDelivery,
    secret: str | None,
    allow: UrlAllowList,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Attempt ``pending`` until it is delivered, given up, or out of attempts, sleeping
    the policy's backoff between attempts."""
    current = pending
    while True:
        outcome = attempt(url, current, secret, allow, policy.timeout_s)
        settled = settle(current, outcome, time.time(), policy)
        if settled.retry is None:
            return Delivery(settled.record, current.attempts + 1, outcome)
        sleep(max(0.0, settled.retry.due_at - time.time()))
        current = settled.retry
