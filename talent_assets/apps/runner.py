"""Run the four assets for one video in-process: the CLI's and the API's way in."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

from dagster import DagsterInstance, Definitions

from talent_assets.defs.assets import ALL_ASSETS
from talent_assets.defs.failures import ERROR_KIND_KEY
from talent_assets.defs.jobs import process_video_job
from talent_assets.defs.partitions import videos_partitions
from talent_assets.defs.tags import video_run_tags

# Keep Dagster's own console logging quiet: the CLI owns stdout and stderr.
_QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: the first failure's one-line reason and its kind (see failures.py;
    ``internal`` for anything that is not the input's fault)."""

    success: bool
    run_id: str
    message: str = ""
    error_kind: str = ""


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


def process_partition(
    video_id: str,
    key: str,
    *,
    resources: dict[str, Any],
    instance: DagsterInstance,
    run_config: dict[str, Any] | None = None,
    quiet: bool = True,
    run_id: str | None = None,
) -> RunOutcome:
    """Register ``video_id`` as a partition and run the ``process_video`` job for it.

    Runs in this process (so a CLI or API call needs no daemon) but against a real instance,
    so with the stack's ``DAGSTER_HOME`` the run shows in the UI like any other. ``run_id``
    lets a caller hand out the id before the run starts (the API's ``"wait": false``).
    """
    instance.add_dynamic_partitions(videos_partitions.name, [video_id])
    config = dict(run_config or {})
    if quiet:
        config.update(_QUIET_RUN_CONFIG)
        logging.getLogger("dagster").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = Definitions(
            assets=ALL_ASSETS, jobs=[process_video_job], resources=resources
        ).resolve_job_def(process_video_job.name)
        result = job.execute_in_process(
            run_config=config,
            instance=instance,
            partition_key=video_id,
            tags=video_run_tags(key, video_id),
            raise_on_error=False,
            run_id=run_id,
        )
    if result.success:
        return RunOutcome(True, result.run_id)
    message, kind = first_failure_with_kind(result.all_events)
    return RunOutcome(False, result.run_id, message, kind)


def run_failure_message(instance: DagsterInstance, run_id: str) -> str:
    """The one-line reason a finished run (e.g. one the sensor launched) failed."""
    events = [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event]
    return first_failure(events)
