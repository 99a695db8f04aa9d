"""Failures caused by the input, not by the machinery: clear, one line, never retried; and
reading a failed run's one-line reason back.

Each carries an ``error_kind`` in its metadata so callers (the CLI, the HTTP API) can tell a
missing object (404) from a file that is not a video (422) without parsing messages.
"""

from __future__ import annotations

from typing import Any, Literal

from dagster import DagsterInstance, Failure

# "unreachable_source": a video URL that could not be fetched (HTTP error, timeout, size).
ErrorKind = Literal[
    "missing_object", "invalid_video", "bad_request", "out_of_date", "unreachable_source"
]
ERROR_KIND_KEY = "error_kind"


def input_failure(message: str, kind: ErrorKind) -> Failure:
    """A non-retryable Dagster ``Failure`` with a one-line description and its kind."""
    return Failure(
        description=message.splitlines()[0] if message else kind,
        metadata={ERROR_KIND_KEY: kind},
        allow_retries=False,
    )


def first_failure_with_kind(events: list[Any]) -> tuple[str, str]:
    """(one-line reason, error kind) of the first failed step among a run's Dagster events."""
    for event in events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            user = event.step_failure_data.user_failure_data
            if user is not None and user.description:
                kind = user.metadata.get(ERROR_KIND_KEY) if user.metadata else None
                kind_text = str(getattr(kind, "value", kind or "internal"))
                return user.description.splitlines()[0], kind_text
            if error is not None:
                # Unwrap Dagster's "Error occurred while executing op" to the user's cause.
                # After retries the last failure is a RetryRequestedFromPolicy wrapping it.
                while error.cause is not None and (
                    error.message.startswith("dagster._core.errors.")
                    or error.cls_name == "RetryRequestedFromPolicy"
                ):
                    error = error.cause
                return error.message.strip().splitlines()[0], "internal"
    for event in events:
        if event.event_type_value == "PIPELINE_FAILURE" and event.message:
            return event.message.splitlines()[0], "internal"
    return "the run failed", "internal"


def first_failure(events: list[Any]) -> str:
    """The one-line reason of the first failed step among a run's Dagster events."""
    return first_failure_with_kind(events)[0]


def run_failure_message(instance: DagsterInstance, run_id: str) -> str:
    """The one-line reason a finished run (e.g. one the sensor launched) failed."""
    events = [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event]
    return first_failure(events)
