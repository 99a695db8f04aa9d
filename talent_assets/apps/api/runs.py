"""Pipeline runs started by the API: in-process Dagster runs on a small thread pool."""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from dagster import DagsterInstance

from talent_assets.apps.api.errors import one_line
from talent_assets.apps.runner import RunOutcome, process_partition
from talent_assets.defs.resources import build_resources
from talent_assets.infra.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    """A run this process accepted; its Dagster run may not exist yet (still queued here)."""

    video_id: str
    key: str
    run_id: str
    future: Future[RunOutcome]


class RunQueue:
    """Runs at most ``max_concurrent`` pipeline runs at once, in worker threads.

    ``execute_in_process`` blocks its thread for the whole run, so the event loop hands runs
    to a small pool and awaits (or forgets) the future. Runs of the same video are also
    serialised: two concurrent runs of one partition would race to publish its outputs.
    """

    def __init__(self, settings: Settings, instance: DagsterInstance, max_concurrent: int):
        self.settings = settings
        self.instance = instance
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="talent-run")
        self._lock = threading.Lock()
        self._video_locks: dict[str, threading.Lock] = {}
        self._latest: dict[str, Submission] = {}

    def submit(self, video_id: str, key: str) -> Submission:
        """Queue a run of ``video_id`` (the object ``key``); returns at once with its run id."""
        # The id is chosen here, not by Dagster, so a 202 can name the run before it starts.
        run_id = str(uuid.uuid4())
        future = self._pool.submit(self._run, video_id, key, run_id)
        submission = Submission(video_id, key, run_id, future)
        with self._lock:
            self._latest[video_id] = submission
        return submission

    def latest(self, video_id: str) -> Submission | None:
        """The last run this process accepted for ``video_id``, if any."""
        with self._lock:
            return self._latest.get(video_id)

    def shutdown(self) -> None:
        """Wait for started runs; drop queued ones."""
        # Let started runs finish (a run killed mid-way stays STARTED in the instance for
        # ever); drop queued ones, which never created a Dagster run.
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, video_id: str, key: str, run_id: str) -> RunOutcome:
        with self._lock:
            video_lock = self._video_locks.setdefault(video_id, threading.Lock())
        with video_lock:
            try:
                outcome = process_partition(
                    video_id,
                    key,
                    resources=build_resources(self.settings),
                    instance=self.instance,
                    run_id=run_id,
                )
            except Exception as err:  # the run could not even be set up; keep the server up
                log.exception("run %s for video %s could not run", run_id, video_id)
                return RunOutcome(
                    False, run_id, f"the run could not be started: {one_line(err)}", "internal"
                )
        if not outcome.success:
            log.warning("run %s for video %s failed: %s", run_id, video_id, outcome.message)
        return outcome
