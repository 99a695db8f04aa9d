"""Completion webhooks against real receivers (HTTP servers on loopback) and a real Dagster
instance: the blocking delivery, and the sensor's ticks over real finished runs.

Receivers: one that verifies signatures, one that answers 503 twice and then 200, one that
accepts connections and never answers, one that answers 404. No mocks: every request goes
through ``url_fetch.post`` and the SSRF guard (``TALENT_URL_ALLOW=127.0.0.1``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    SensorResult,
    build_sensor_context,
)

from talent_assets.apps.runner import run_failure_message
from talent_assets.core.url_policy import UrlAllowList
from talent_assets.core.webhooks import (
    FAILED,
    SUCCEEDED,
    PendingDelivery,
    RetryPolicy,
    WebhookCursor,
    verify_signature,
)
from talent_assets.definitions import build_definitions
from talent_assets.defs.jobs import process_video_job
from talent_assets.defs.resources import build_resources
from talent_assets.defs.tags import (
    PARTITION_TAG,
    SOURCE_KEY_TAG,
    VIDEO_TAG,
    WEBHOOK_TAG,
    WEBHOOK_URL_TAG,
)
from talent_assets.defs.webhook_sensor import build_webhook_sensor
from talent_assets.infra.settings import Settings
from talent_assets.infra.webhook_delivery import deliver
from tests.support.pipeline import manifest_of, run_key, upload
from tests.support.webhook_receiver import Receiver, serve_receiver

SECRET = "whsec-integration-Zk81"
LOOPBACK = UrlAllowList.parse("127.0.0.1")
# Short waits so retries and timeouts take a fraction of a second here; the schedule's shape
# (attempts, what is retried) is the documented one.
FAST = RetryPolicy(max_attempts=3, first_delay_s=0.05, factor=2.0, timeout_s=0.5)


@pytest.fixture
def verifying() -> Iterator[Receiver]:
    """200 for a valid signature, 401 otherwise."""
    receiver = Receiver(lambda n, h, b: None, secret=SECRET)
    receiver.answer = lambda n, h, b: 200 if receiver.requests[n - 1][2] else 401
    with serve_receiver(receiver) as served:
        yield served


@pytest.fixture
def flaky() -> Iterator[Receiver]:
    """503, 503, then 200."""
    with serve_receiver(Receiver(lambda n, h, b: 503 if n <= 2 else 200, secret=SECRET)) as served:
        yield served


@pytest.fixture
def silent() -> Iterator[Receiver]:
    """Accepts every connection and request, never answers."""
    with serve_receiver(Receiver(lambda n, h, b: None)) as served:
        yield served


@pytest.fixture
def rejecting() -> Iterator[Receiver]:
    with serve_receiver(Receiver(lambda n, h, b: 404)) as served:
        yield served


def _pending(run_id: str = "run-1", event: str = SUCCEEDED) -> PendingDelivery:
    return PendingDelivery(run_id, event, json.dumps({"event": event, "run_id": run_id}))


# -- the blocking delivery ---------------------------------------------------------------


def test_a_signed_event_is_verified_and_a_tampered_or_old_one_is_not(verifying: Receiver) -> None:
    delivery = deliver(verifying.url, _pending(), SECRET, LOOPBACK, FAST)
    assert delivery.record == "delivered 200 after 1 attempt"
    headers, body, verified = verifying.requests[0]
    assert verified
    assert headers["Content-Type"] == "application/json"
    assert headers["Talent-Event-Id"] == "run-1.video.succeeded"
    signature = headers["Talent-Signature"]
    stamp = int(signature.split(",")[0].removeprefix("t="))
    assert abs(stamp - time.time()) < 5
    # The receiver's own check: a changed body, or the same request much later, fails.
    assert not verify_signature(SECRET, signature, body.replace(b"run-1", b"run-2"))
    assert not verify_signature(SECRET, signature, body, now=stamp + 301)
    # Sent with a wrong secret, the receiver refuses it (401, not retried).
    wrong = deliver(verifying.url, _pending(), "not-the-secret", LOOPBACK, FAST)
    assert wrong.record == "failed after 1 attempt: HTTP 401"
    assert len(verifying.requests) == 2


def test_503_twice_is_retried_with_backoff_and_the_same_bytes(flaky: Receiver) -> None:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    delivery = deliver(flaky.url, _pending(), SECRET, LOOPBACK, FAST, sleep=sleep)
    assert delivery.record == "delivered 200 after 3 attempts"
    assert len(flaky.requests) == 3
    assert len({body for _, body, _ in flaky.requests}) == 1
    assert {h["Talent-Event-Id"] for h, _, _ in flaky.requests} == {"run-1.video.succeeded"}
    assert all(verified for *_, verified in flaky.requests)
    # 0.05 s, then 0.1 s after the failed attempts (less the time the attempt itself took).
    assert len(sleeps) == 2 and sleeps[0] <= 0.05 < sleeps[1] <= 0.1


def test_a_receiver_that_never_answers_times_out_each_attempt_then_fails(silent: Receiver) -> None:
    started = time.monotonic()
    delivery = deliver(silent.url, _pending(), None, LOOPBACK, FAST)
    assert delivery.record == (
        f"failed after 3 attempts: {silent.url.split('/hooks')[0]}: timed out after 0.5 s"
    )
    assert len(silent.requests) == 3
    assert "Talent-Signature" not in silent.requests[0][0]  # no secret: unsigned
    assert time.monotonic() - started < 3 * 0.5 + 2


def test_other_4xx_are_not_retried(rejecting: Receiver) -> None:
    assert deliver(rejecting.url, _pending(), None, LOOPBACK, FAST).record == (
        "failed after 1 attempt: HTTP 404"
    )
    assert len(rejecting.requests) == 1


def test_a_url_the_ssrf_guard_refuses_is_failed_at_once_and_never_called(
    verifying: Receiver,
) -> None:
    delivery = deliver(verifying.url, _pending(), SECRET, UrlAllowList(), FAST)
    assert delivery.record.startswith("failed after 1 attempt: refused: refused 127.0.0.1")
    assert "loopback" in delivery.record and "/hooks" not in delivery.record
    assert verifying.requests == []


def test_connection_errors_are_retried() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as server:
        closed = f"http://127.0.0.1:{server.server_address[1]}/hook"
    delivery = deliver(closed, _pending(), None, LOOPBACK, FAST)
    assert delivery.attempts == 3
    assert delivery.record.startswith("failed after 3 attempts: http://127.0.0.1:")
    assert "ConnectionRefusedError" in delivery.record


# -- the sensor over runs in a real instance ------------------------------------------------


def _tick(
    instance: DagsterInstance,
    settings: Settings,
    cursor: str | None,
    policy: RetryPolicy = FAST,
    log: list[str] | None = None,
) -> SensorResult:
    with build_sensor_context(
        instance=instance, cursor=cursor, resources=build_resources(settings)
    ) as context:
        if log is not None:  # what the tick logs (the UI shows it with the tick)
            handler = logging.Handler()
            handler.emit = lambda record: log.append(record.getMessage())  # type: ignore[method-assign]
            context.log.addHandler(handler)
        result = build_webhook_sensor(settings, policy)(context)
    assert isinstance(result, SensorResult)
    assert result.run_requests in (None, [])
    return result


def _finished_run(
    instance: DagsterInstance, status: str, tags: dict[str, str] | None = None, message: str = ""
) -> str:
    """A ``process_video`` run in the instance that has ended with ``status``."""
    run = instance.create_run_for_job(
        job_def=build_definitions(Settings()).get_job_def(process_video_job.name),
        tags={
            VIDEO_TAG: "vid",
            PARTITION_TAG: "vid",
            SOURCE_KEY_TAG: "videos/a.mp4",
            **(tags or {}),
        },
    )
    if status == "failure":
        instance.report_run_failed(run, message or "the worker died")
    elif status == "canceled":
        instance.report_run_canceled(run)
    else:
        event = DagsterEvent(DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name)
        instance.report_dagster_event(event, run_id=run.run_id)
    return run.run_id


def _tags(instance: DagsterInstance, run_id: str) -> dict[str, str]:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return dict(run.tags)


def test_the_sensor_starts_from_now_then_delivers_each_new_outcome_once(
    talent_env: Settings, dagster_instance: DagsterInstance, verifying: Receiver
) -> None:
    settings = talent_env.replace(
        webhook_url=verifying.url, webhook_secret=SECRET, url_allow="127.0.0.1"
    )
    before = _finished_run(dagster_instance, "success")
    first = _tick(dagster_instance, settings, None)
    assert "started" in str(first.skip_reason)
    assert WEBHOOK_TAG not in _tags(dagster_instance, before)  # ended before the sensor existed

    ok = _finished_run(dagster_instance, "success")
    bad = _finished_run(dagster_instance, "failure", message="the worker died")
    canceled = _finished_run(dagster_instance, "canceled")
    result = _tick(dagster_instance, settings, first.cursor)
    events = verifying.bodies()
    (stopped,) = [e for e in events if e["run_id"] == canceled]
    assert (stopped["event"], stopped["error"]) == (FAILED, "the run was canceled")
    verifying.requests[:] = [r for r in verifying.requests if canceled.encode() not in r[1]]
    # Attempts run side by side: the order of arrival is not fixed.
    by_event = {b["event"]: b for b in verifying.bodies()}
    assert len(verifying.requests) == 2 and set(by_event) == {SUCCEEDED, FAILED}
    assert all(verified for *_, verified in verifying.requests)
    success, failure = by_event[SUCCEEDED], by_event[FAILED]
    assert success["run_id"] == ok and failure["run_id"] == bad
    assert success["source"] == f"s3://{settings.bucket}/videos/a.mp4"
    assert failure["error"] == "the worker died" and failure["status"] == "failure"
    for run_id in (ok, bad, canceled):
        assert _tags(dagster_instance, run_id)[WEBHOOK_TAG] == "delivered 200 after 1 attempt"
    assert WebhookCursor.parse(result.cursor).pending == ()  # type: ignore[union-attr]
    # Later ticks send nothing again.
    _tick(dagster_instance, settings, result.cursor)
    assert len(verifying.requests) == 2


def test_retries_wait_for_their_time_and_survive_a_restart(
    talent_env: Settings, dagster_instance: DagsterInstance, flaky: Receiver
) -> None:
    settings = talent_env.replace(
        webhook_url=flaky.url, webhook_secret=SECRET, url_allow="127.0.0.1"
    )
    # Waits long enough that the tick right after the first attempt surely finds it not due.
    policy = RetryPolicy(max_attempts=5, first_delay_s=1.5, factor=1.0, timeout_s=1.0)
    cursor = _tick(dagster_instance, settings, None).cursor
    run_id = _finished_run(dagster_instance, "success")

    cursor = _tick(dagster_instance, settings, cursor, policy).cursor
    assert _tags(dagster_instance, run_id)[WEBHOOK_TAG] == "retrying: attempt 1 of 5: HTTP 503"
    (pending,) = WebhookCursor.parse(cursor).pending  # type: ignore[union-attr]
    assert (pending.attempts, pending.last_error) == (1, "HTTP 503")
    cursor = _tick(dagster_instance, settings, cursor, policy).cursor  # not due yet
    assert len(flaky.requests) == 1

    # A new daemon process: a fresh instance on the same storage, the sensor rebuilt, only
    # the saved cursor carried over.
    home = dagster_instance.root_directory
    with DagsterInstance.from_config(home) as restarted:
        for _ in range(2):
            time.sleep(policy.delay_after(2) + 0.05)
            cursor = _tick(restarted, settings, cursor, policy).cursor
        assert _tags(restarted, run_id)[WEBHOOK_TAG] == "delivered 200 after 3 attempts"
    assert len(flaky.requests) == 3
    assert len({body for _, body, _ in flaky.requests}) == 1
    assert WebhookCursor.parse(cursor).pending == ()  # type: ignore[union-attr]


def test_a_silent_receiver_is_given_up_after_the_last_attempt_without_long_ticks(
    talent_env: Settings, dagster_instance: DagsterInstance, silent: Receiver
) -> None:
    settings = talent_env.replace(webhook_url=silent.url, url_allow="127.0.0.1")
    cursor = _tick(dagster_instance, settings, None).cursor
    run_ids = [_finished_run(dagster_instance, "failure") for _ in range(6)]
    longest = 0.0
    for _ in range(FAST.max_attempts):
        time.sleep(FAST.delay_after(FAST.max_attempts))
        started = time.monotonic()
        cursor = _tick(dagster_instance, settings, cursor).cursor
        longest = max(longest, time.monotonic() - started)
    # Six silent deliveries per tick cost one timeout (0.5 s), not six (3 s): attempts run
    # side by side.
    assert longest < 2.0
    origin = silent.url.split("/hooks")[0]
    for run_id in run_ids:
        assert _tags(dagster_instance, run_id)[WEBHOOK_TAG] == (
            f"failed after 3 attempts: {origin}: timed out after 0.5 s"
        )
    assert len(silent.requests) == 18
    assert WebhookCursor.parse(cursor).pending == ()  # type: ignore[union-attr]


def test_the_runs_own_url_wins_and_is_guarded(
    talent_env: Settings, dagster_instance: DagsterInstance, verifying: Receiver
) -> None:
    settings = talent_env.replace(
        webhook_url=verifying.url, webhook_secret=SECRET, url_allow="127.0.0.1"
    )
    cursor = _tick(dagster_instance, settings, None).cursor
    metadata_url = "http://169.254.169.254/latest/meta-data/"
    refused = _finished_run(dagster_instance, "success", {WEBHOOK_URL_TAG: metadata_url})
    own = Receiver(lambda n, h, b: 204)
    with serve_receiver(own) as receiver:
        routed = _finished_run(dagster_instance, "success", {WEBHOOK_URL_TAG: receiver.url})
        _tick(dagster_instance, settings, cursor)
    assert verifying.requests == []  # neither went to TALENT_WEBHOOK_URL
    assert [b["run_id"] for b in own.bodies()] == [routed]
    assert _tags(dagster_instance, routed)[WEBHOOK_TAG] == "delivered 204 after 1 attempt"
    record = _tags(dagster_instance, refused)[WEBHOOK_TAG]
    assert record.startswith("failed after 1 attempt: refused: refused 169.254.169.254")
    assert "link-local" in record


def test_nothing_is_sent_without_a_url_for_other_jobs_or_for_runs_dagster_will_retry(
    talent_env: Settings, dagster_instance: DagsterInstance, verifying: Receiver
) -> None:
    quiet = talent_env.replace(webhook_url=None, url_allow="127.0.0.1")
    cursor = _tick(dagster_instance, quiet, None).cursor
    no_url = _finished_run(dagster_instance, "success")
    cursor = _tick(dagster_instance, quiet, cursor).cursor
    assert WEBHOOK_TAG not in _tags(dagster_instance, no_url)

    settings = quiet.replace(webhook_url=verifying.url)
    retried = _finished_run(dagster_instance, "failure", {"dagster/will_retry": "true"})
    registry = dagster_instance.create_run_for_job(
        job_def=build_definitions(Settings()).get_job_def("update_talent_registry")
    )
    dagster_instance.report_dagster_event(
        DagsterEvent(DagsterEventType.RUN_SUCCESS.value, job_name=registry.job_name),
        run_id=registry.run_id,
    )
    cursor = _tick(dagster_instance, settings, cursor).cursor
    assert verifying.requests == []
    assert _tags(dagster_instance, retried)[WEBHOOK_TAG] == "not sent: Dagster retries this run"
    assert WEBHOOK_TAG not in _tags(dagster_instance, registry.run_id)


def test_real_runs_send_people_manifest_and_the_one_line_error_and_never_the_secret(
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    verifying: Receiver,
    three_person,
    bad_inputs: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = talent_env.replace(
        webhook_url=verifying.url, webhook_secret=SECRET, url_allow="127.0.0.1"
    )
    caplog.set_level(logging.DEBUG)
    cursor = _tick(dagster_instance, settings, None).cursor
    good, bad = "videos/hook/three.mp4", "videos/hook/not a video.mp4"
    upload(settings, three_person[0], good)
    upload(settings, bad_inputs["text"], bad)
    good_id, good_outcome = run_key(settings, dagster_instance, good)
    bad_id, bad_outcome = run_key(settings, dagster_instance, bad)
    assert good_outcome.success and not bad_outcome.success

    tick_log: list[str] = []
    result = _tick(dagster_instance, settings, cursor, log=tick_log)
    by_event = {b["event"]: b for b in verifying.bodies()}
    assert set(by_event) == {SUCCEEDED, FAILED}
    assert all(verified for *_, verified in verifying.requests)
    manifest = manifest_of(settings, good)
    assert manifest is not None
    success = by_event[SUCCEEDED]
    assert success["video_id"] == good_id and success["run_id"] == good_outcome.run_id
    assert success["people"] == manifest["people_found"] == len(three_person[1].people)
    assert success["manifest"] == (f"s3://{settings.bucket}/processed/hook/three/manifest.json")
    assert success["source"] == f"s3://{settings.bucket}/{good}"
    failure = by_event[FAILED]
    assert failure["video_id"] == bad_id and failure["people"] is None
    assert failure["error"] == run_failure_message(dagster_instance, bad_outcome.run_id)
    assert failure["error"] == bad_outcome.message and "\n" not in failure["error"]

    # The secret is nowhere: not in tags, cursor, tick result, logs or the runs' events.
    seen = [str(result.skip_reason), result.cursor or "", caplog.text, *tick_log]
    for run_id in (good_outcome.run_id, bad_outcome.run_id):
        seen.append(json.dumps(_tags(dagster_instance, run_id)))
        seen.extend(str(e) for e in dagster_instance.all_logs(run_id))
    assert sum("delivered 200 after 1 attempt" in line for line in tick_log) == 2
    assert not [text for text in seen if SECRET in text]
