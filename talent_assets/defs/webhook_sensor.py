"""``talent_webhook_sensor``: tells a webhook when a video's run has succeeded or failed.

A plain sensor with its own cursor, not a ``run_status_sensor``: a run status sensor's
cursor belongs to Dagster and its function is called once per run, so a retry schedule
would have to sleep inside the tick (a long tick holds up the daemon's other sensors, and a
restart mid-sleep loses the retry) or live somewhere else. Here the cursor holds both how
far the run-end events have been read (event log storage ids, one per event type) and the
deliveries still pending with their attempt count and due time. Each tick:

1. reads the ``RUN_SUCCESS`` / ``RUN_FAILURE`` / ``RUN_CANCELED`` events after the cursor (at most
   ``FETCH_LIMIT`` each) and turns the ``process_video`` runs with a webhook URL into
   pending deliveries (body built once: people from the manifest, or the failure reason);
2. makes at most one attempt per due delivery, at most ``MAX_ATTEMPTS_PER_TICK`` of them,
   concurrently, so a tick lasts about one attempt's timeout (10 s) at worst;
3. records each outcome on the video's run (tag ``talent/webhook``) and in the tick's log,
   and returns the new cursor.

Dagster saves the cursor when the tick ends, so a daemon restart resumes the schedule. A
restart after a POST but before the tick ended repeats that POST: delivery is at least once,
and ``Talent-Event-Id`` lets receivers drop the repeat. On its first tick (no cursor) the
sensor starts from the newest events, as Dagster's run status sensors do.

A failed run that Dagster's run retries will re-execute (tag ``dagster/will_retry=true``)
sends nothing: its retry is a run of its own and reports the final outcome.
"""

from __future__ import annotations

import contextlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    RunStatusChangeRecordsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from talent_assets.core.manifest import manifest_key
from talent_assets.core.objects import ObjectNotFoundError
from talent_assets.core.url_policy import UrlAllowList
from talent_assets.core.webhooks import (
    DEFAULT_POLICY,
    FAILED,
    SUCCEEDED,
    AttemptOutcome,
    PendingDelivery,
    RetryPolicy,
    WebhookCursor,
    build_event,
    encode_event,
    settle,
)
from talent_assets.defs.failures import run_failure_message
from talent_assets.defs.jobs import process_video_job
from talent_assets.defs.resources import TalentStorage
from talent_assets.defs.tags import (
    PARTITION_TAG,
    SOURCE_KEY_TAG,
    SOURCE_URL_TAG,
    VIDEO_TAG,
    WEBHOOK_TAG,
    WEBHOOK_URL_TAG,
)
from talent_assets.infra.settings import Settings
from talent_assets.infra.webhook_delivery import attempt

SENSOR_NAME = "talent_webhook_sensor"
# Dagster's tag on a failed run that its run retries will re-execute.
WILL_RETRY_TAG = "dagster/will_retry"
# A canceled run is a failure to the caller, as in the API's status ("the run was canceled").
EVENTS = {
    DagsterEventType.RUN_SUCCESS: SUCCEEDED,
    DagsterEventType.RUN_FAILURE: FAILED,
    DagsterEventType.RUN_CANCELED: FAILED,
}
CANCELED_REASON = "the run was canceled"
FETCH_LIMIT = 100
MAX_ATTEMPTS_PER_TICK = 8
# Ticks at least this often, whatever the S3 sensor's interval: the retry schedule's first
# delays are seconds, and a tick with nothing due is two small event log queries.
MAX_INTERVAL_S = 5


def build_webhook_sensor(
    settings: Settings, policy: RetryPolicy = DEFAULT_POLICY
) -> SensorDefinition:
    """The sensor that POSTs ``video.succeeded`` / ``video.failed`` events for finished
    ``process_video`` runs to ``TALENT_WEBHOOK_URL`` or the run's ``talent/webhook_url``.

    Running by default, unlike the S3 sensor: it starts no runs and does nothing without a
    URL, and a per-request webhook given to the API must not wait for someone to switch it on.
    """

    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=min(settings.sensor_interval_s, MAX_INTERVAL_S),
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "POSTs a signed video.succeeded / video.failed event to TALENT_WEBHOOK_URL (or the "
            "run's talent/webhook_url) when a process_video run ends; retries with backoff, "
            "records the outcome in the run's talent/webhook tag (docs/webhooks.md)."
        ),
    )
    def talent_webhook_sensor(
        context: SensorEvaluationContext, storage: TalentStorage
    ) -> SensorResult:
        return evaluate_webhook_tick(context, storage, settings, policy)

    return talent_webhook_sensor


def evaluate_webhook_tick(
    context: SensorEvaluationContext,
    storage: TalentStorage,
    settings: Settings,
    policy: RetryPolicy,
) -> SensorResult:
    """One tick: find newly finished runs, attempt what is due, record, move the cursor."""
    instance = context.instance
    cursor = WebhookCursor.parse(context.cursor)
    if cursor is None:
        after = {event.value: _newest_event_id(instance, event) for event in EVENTS}
        return SensorResult(
            skip_reason="started: events from now on get webhooks",
            cursor=WebhookCursor(after).dump(),
        )
    now = time.time()
    after, found = _finished_runs(instance, cursor.after)
    pending = [*cursor.pending]
    for run, event, occurred_at in found:
        delivery = delivery_for_run(
            instance, storage, settings, run, event, occurred_at, log=context.log
        )
        if delivery is not None:
            pending.append(delivery)
    due = [p for p in pending if p.due_at <= now][:MAX_ATTEMPTS_PER_TICK]
    waiting = [p for p in pending if p not in due]
    outcomes = _attempt_all(instance, settings, policy, due)
    retried, lines = [], []
    for delivery, outcome in zip(due, outcomes, strict=True):
        settled = settle(delivery, outcome, time.time(), policy)
        _record(instance, delivery.run_id, settled.record)
        lines.append(f"{delivery.event_id}: {settled.record}")
        context.log.info(f"webhook {delivery.event_id}: {settled.record}")
        if settled.retry is not None:
            retried.append(settled.retry)
    next_cursor = WebhookCursor(after, (*waiting, *retried))
    summary = f"{len(due)} attempted, {len(next_cursor.pending)} pending"
    return SensorResult(skip_reason="; ".join([summary, *lines])[:1000], cursor=next_cursor.dump())


def _newest_event_id(instance: DagsterInstance, event: DagsterEventType) -> int:
    records = instance.fetch_run_status_changes(event, limit=1).records  # type: ignore[arg-type]
    return records[0].storage_id if records else -1


def _finished_runs(
    instance: DagsterInstance, after: dict[str, int]
) -> tuple[dict[str, int], list[tuple[DagsterRun, str, float]]]:
    """(cursor positions, [(run, event name, when it ended)]) for the ``process_video`` runs
    that ended after ``after``, oldest first per kind."""
    moved = dict(after)
    found: list[tuple[str, str, float]] = []
    for event_type, name in EVENTS.items():
        if event_type.value not in after:  # a kind this cursor has not followed: from now on
            moved[event_type.value] = _newest_event_id(instance, event_type)
            continue
        records = instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(
                event_type=event_type,  # type: ignore[arg-type]
                after_storage_id=after[event_type.value],
            ),
            limit=FETCH_LIMIT,
            ascending=True,
        ).records
        for record in records:
            found.append((record.event_log_entry.run_id, name, record.timestamp))
            moved[event_type.value] = max(moved.get(event_type.value, -1), record.storage_id)
    if not found:
        return moved, []
    runs = {
        r.run_id: r
        for r in instance.get_runs(RunsFilter(run_ids=sorted({run_id for run_id, *_ in found})))
    }
    return moved, [
        (runs[run_id], name, at)
        for run_id, name, at in found
        if run_id in runs and runs[run_id].job_name == process_video_job.name
    ]


def delivery_for_run(
    instance: DagsterInstance,
    storage: TalentStorage,
    settings: Settings,
    run: DagsterRun,
    event: str,
    occurred_at: float,
    *,
    log: Any,
) -> PendingDelivery | None:
    """The delivery for one finished run, or None when it gets no webhook (``log``: where a
    missing people count is warned about)."""
    if not webhook_url_for(run, settings):
        return None
    if event == FAILED and run.tags.get(WILL_RETRY_TAG) == "true":
        _record(instance, run.run_id, "not sent: Dagster retries this run")
        return None
    video_id = run.tags.get(VIDEO_TAG) or run.tags.get(PARTITION_TAG) or ""
    fields: dict[str, Any] = {}
    if event == SUCCEEDED:
        fields["people"], fields["manifest"] = _published(log, storage, run, video_id)
    elif run.status == DagsterRunStatus.CANCELED:
        fields["error"] = CANCELED_REASON
    else:
        fields["error"] = run_failure_message(instance, run.run_id)
    payload = build_event(
        event=event,  # type: ignore[arg-type]
        video_id=video_id,
        run_id=run.run_id,
        source=_source(run, storage.bucket),
        occurred_at=occurred_at,
        **fields,
    )
    return PendingDelivery(run.run_id, event, encode_event(payload))


def webhook_url_for(run: DagsterRun, settings: Settings) -> str | None:
    """The run's own URL (set by the API per request) wins over ``TALENT_WEBHOOK_URL``."""
    return run.tags.get(WEBHOOK_URL_TAG) or settings.webhook_url


def _source(run: DagsterRun, bucket: str) -> str | None:
    if run.tags.get(SOURCE_URL_TAG):
        return run.tags[SOURCE_URL_TAG]
    key = run.tags.get(SOURCE_KEY_TAG)
    return f"s3://{bucket}/{key}" if key else None


def _published(
    log: Any, storage: TalentStorage, run: DagsterRun, video_id: str
) -> tuple[int | None, str | None]:
    """(people found, manifest location) of a succeeded run: from its manifest, else (a run
    without the source key tag, e.g. launched from the UI) the ``selected_frames`` rows."""
    key = run.tags.get(SOURCE_KEY_TAG)
    try:
        if key:
            where = manifest_key(storage.output_prefix, key, storage.video_prefix)
            store = storage.output_store()
            with contextlib.suppress(ObjectNotFoundError):
                manifest = json.loads(store.get_bytes(where))
                if isinstance(manifest, dict) and manifest.get("video_id") == video_id:
                    return int(manifest["people_found"]), store.location(where)
        table = storage.tables().read("selected_frames", video_id) if video_id else None
        return (table.num_rows if table is not None else None), None
    except Exception as error:  # the event still goes out, without the count
        log.warning(f"no people count for run {run.run_id}: {error!r}"[:300])
        return None, None


def _attempt_all(
    instance: DagsterInstance,
    settings: Settings,
    policy: RetryPolicy,
    due: list[PendingDelivery],
) -> list[AttemptOutcome]:
    """One attempt per due delivery, concurrently (a silent receiver costs one timeout, not
    one per delivery)."""
    if not due:
        return []
    allow = UrlAllowList.parse(settings.url_allow)
    runs = {r.run_id: r for r in instance.get_runs(RunsFilter(run_ids=[p.run_id for p in due]))}

    def one(delivery: PendingDelivery) -> AttemptOutcome:
        run = runs.get(delivery.run_id)
        url = webhook_url_for(run, settings) if run is not None else None
        if not url:
            return AttemptOutcome(error="no webhook URL any more", refused=True)
        return attempt(url, delivery, settings.webhook_secret, allow, policy.timeout_s)

    with ThreadPoolExecutor(max_workers=len(due)) as pool:
        return list(pool.map(one, due))


def _record(instance: DagsterInstance, run_id: str, line: str) -> None:
    """The delivery's outcome on the run, as the ``talent/webhook`` tag."""
    instance.add_run_tags(run_id, {WEBHOOK_TAG: line})
