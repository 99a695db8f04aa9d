"""Pipeline runs started by the API, each in a worker process of its own.

Why processes: two in-process Dagster runs in one process deadlock in ``logging`` (each run
start calls ``logging.config.dictConfig``, which holds logging's module lock while taking
every handler's lock, while the other run's event handler holds its lock and waits for the
module lock). One run per process at a time avoids it, and a run that crashes its process
no longer takes the API down with it.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import uuid
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef

from talent_assets.apps.api.errors import one_line
from talent_assets.apps.runner import RunOutcome, process_partition, process_url
from talent_assets.apps.webhook_fallback import deliver_without_daemon
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


@dataclass(frozen=True)
class QueuedRun:
    """What a worker process needs to run one video."""

    video_id: str
    key: str
    run_id: str
    url: str | None = None  # fetched into the bucket at ``key`` first
    tags: dict[str, str] = field(default_factory=dict)


def run_in_worker(settings: Settings, instance_ref: InstanceRef, request: QueuedRun) -> RunOutcome:
    """Run one video in a worker process, recording it in the API's instance."""
    resources = build_resources(settings)
    with DagsterInstance.from_ref(instance_ref) as instance:
        if request.url is not None:
            return process_url(
                request.url, settings=settings, resources=resources, instance=instance,
                run_id=request.run_id, tags=request.tags,
            )[1]  # fmt: skip
        return process_partition(
            request.video_id, request.key, resources=resources, instance=instance,
            run_id=request.run_id, tags=request.tags,
        )  # fmt: skip


class RunQueue:
    """Runs at most ``max_concurrent`` pipeline runs at once, each in a worker process.

    A thread per run slot hands the run to a pool of as many worker processes and waits for
    it, so the event loop only awaits (or forgets) a future. Workers are spawned, not forked
    (forking a threaded server copies held locks), and stay warm between runs. Runs of the
    same video are serialised: two concurrent runs of one partition would race to publish
    its outputs.
    """

    def __init__(self, settings: Settings, instance: DagsterInstance, max_concurrent: int):
        self.settings = settings
        self.instance = instance
        self._instance_ref = instance.get_ref()
        self._max_concurrent = max_concurrent
        self._slots = ThreadPoolExecutor(
            max_workers=max_concurrent, thread_name_prefix="talent-run"
        )
        self._lock = threading.Lock()
        # Completion webhooks when no daemon delivers them: apart from the run slots, so that
        # a receiver being retried neither delays the answer nor holds a slot.
        self._notifier = ThreadPoolExecutor(max_workers=2, thread_name_prefix="talent-webhook")
        self._workers = self._new_workers()
        self._video_locks: dict[str, threading.Lock] = {}
        self._latest: dict[str, Submission] = {}

    def submit(
        self,
        video_id: str,
        key: str,
        *,
        url: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Submission:
        """Queue a run of ``video_id`` (the object ``key``, fetched first from ``url`` when
        given; ``tags`` added to the run's); returns at once with its run id."""
        # The id is chosen here, not by Dagster, so a 202 can name the run before it starts.
        run_id = str(uuid.uuid4())
        request = QueuedRun(video_id, key, run_id, url, dict(tags or {}))
        future = self._slots.submit(self._run, request)
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
        self._slots.shutdown(wait=True, cancel_futures=True)
        self._notifier.shutdown(wait=True)
        with self._lock:
            self._workers.shutdown(wait=True)

    def _new_workers(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._max_concurrent, mp_context=multiprocessing.get_context("spawn")
        )

    def _run(self, request: QueuedRun) -> RunOutcome:
        with self._lock:
            video_lock = self._video_locks.setdefault(request.video_id, threading.Lock())
        with video_lock:
            outcome = self._run_in_worker(request)
        self._notifier.submit(self._notify, outcome.run_id)
        if not outcome.success:
            log.warning(
                "run %s for video %s failed: %s", request.run_id, request.video_id, outcome.message
            )
        return outcome

    def _run_in_worker(self, request: QueuedRun) -> RunOutcome:
        run_id, video_id = request.run_id, request.video_id
        with self._lock:
            workers = self._workers
        try:
            future = workers.submit(run_in_worker, self.settings, self._instance_ref, request)
            return future.result()
        except BrokenProcessPool:
            # A worker died (killed, out of memory): every run in that pool is lost with it.
            self._replace_broken(workers)
            self._fail_unfinished(run_id)
            return RunOutcome(False, run_id, "the run's worker process died", "internal")
        except Exception as err:  # the run could not even be set up; keep the server up
            log.exception("run %s for video %s could not run", run_id, video_id)
            return RunOutcome(
                False, run_id, f"the run could not be started: {one_line(err)}", "internal"
            )

    def _notify(self, run_id: str) -> None:
        try:
            storage = build_resources(self.settings)["storage"]
            record = deliver_without_daemon(self.instance, self.settings, storage, run_id)
        except Exception:  # a webhook must never take the API down
            log.exception("the completion webhook of run %s could not be sent", run_id)
            return
        if record:
            log.info("webhook for run %s: %s", run_id, record)

    def _replace_broken(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._workers is broken:  # the first slot to notice replaces it
                self._workers = self._new_workers()
        broken.shutdown(wait=False, cancel_futures=True)

    def _fail_unfinished(self, run_id: str) -> None:
        # Otherwise the run would stay STARTED for ever in the instance and in GET /videos.
        run = self.instance.get_run_by_id(run_id)
        if run is not None and run.status in (
            DagsterRunStatus.NOT_STARTED,
            DagsterRunStatus.STARTING,
            DagsterRunStatus.STARTED,
        ):
            self.instance.report_run_failed(run, "the run's worker process died")
