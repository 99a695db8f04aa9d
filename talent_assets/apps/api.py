"""The HTTP API: process one S3 video through Dagster and return its manifest.

Served locally with ``uvicorn talent_assets.apps.api:create_app --factory`` (or
``talent_assets.apps.api:app``) and on Modal through ``asgi_app``. Endpoints (see DESIGN.md, "HTTP API"):

- ``POST /process {"bucket", "key", "wait": true}``: the manifest, exactly as published to
  ``s3://<bucket>/<output prefix><stem>/manifest.json``; with ``"wait": false`` a 202 with the
  run id and where to poll.
- ``GET /videos/{video_id}``: the latest run's status and the published manifest.
- ``GET /healthz``: liveness, never behind the key.

Every error is JSON ``{"error": "<one line>", ...}`` (with ``run_id`` once a run exists); no
traceback ever leaves the process. Runs execute in-process (``runner.process_partition``)
against a real Dagster instance, so they show in the Dagster UI like the sensor's runs.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from talent_assets.apps.runner import RunOutcome, process_partition, run_failure_message
from talent_assets.core.video_id import is_video_key, output_stem, video_id_for
from talent_assets.defs.resources import bucket_store, build_resources
from talent_assets.defs.tags import SOURCE_KEY_TAG
from talent_assets.infra.settings import Settings
from talent_assets.infra.storage import (
    LocalObjectStore,
    ObjectNotFoundError,
    UnsafeKeyError,
    check_key,
)
from talent_assets.infra.warehouse import Warehouse

log = logging.getLogger(__name__)

MAX_CONCURRENT_ENV = "TALENT_API_MAX_CONCURRENT"
PARTITION_TAG = "dagster/partition"  # Dagster sets it on every partitioned run
OPEN_PATHS = frozenset({"/healthz"})  # reachable without the key (load balancers, Modal)
VIDEO_ID_RE = re.compile(r"[a-z0-9_-]{1,200}")

# HTTP status for a failed run, by the failure's error kind (talent_assets/defs/failures.py).
# Anything else ("out_of_date", "internal") is our fault, not the caller's: 500.
_STATUS_BY_ERROR_KIND = {"missing_object": 404, "invalid_video": 422, "bad_request": 400}

_QUEUED = frozenset({DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED})
_FAILED = frozenset({DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED})


class ApiError(Exception):
    """An error answered as ``{"error": message, **extra}`` with ``status``."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


class ProcessRequest(BaseModel):
    """Body of ``POST /process``.

    Strict and closed: ``"wait": "no"`` or a misspelt ``"wiat"`` is a 400, not a silently
    ignored option that leaves a client waiting for a run it meant to poll.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    bucket: str = Field(min_length=1, max_length=255)
    key: str = Field(min_length=1, max_length=1024)
    wait: bool = True


def _one_line(text: str, limit: int = 500) -> str:
    """First non-empty line of ``text``, bounded: errors are one line by contract."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any):
    return JSONResponse(
        {"error": _one_line(message) or "error", **extra}, status_code=status, headers=headers
    )


@functools.lru_cache(maxsize=1)
def _temp_instance() -> DagsterInstance:
    """One persistent instance per process when ``DAGSTER_HOME`` is unset.

    Persistent (sqlite in a temp folder) rather than ephemeral, because ``GET /videos/{id}``
    reads run history that background runs wrote; created once so every app in the process
    (tests build several) sees the same history.
    """
    home = tempfile.mkdtemp(prefix="talent-api-dagster-")
    return DagsterInstance.local_temp(home, overrides={"telemetry": {"enabled": False}})


def default_instance() -> DagsterInstance:
    """The stack's instance with ``DAGSTER_HOME`` (runs show in its UI), else a temp one."""
    if os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.get()
    return _temp_instance()


def max_concurrent_from_env() -> int:
    """``TALENT_API_MAX_CONCURRENT`` (default 1: a CPU detector saturates the machine)."""
    raw = os.environ.get(MAX_CONCURRENT_ENV, "").strip()
    if not raw:
        return 1
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{MAX_CONCURRENT_ENV} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{MAX_CONCURRENT_ENV} must be a positive integer, got {raw!r}")
    return value


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
                    False, run_id, f"the run could not be started: {_one_line(err)}", "internal"
                )
        if not outcome.success:
            log.warning("run %s for video %s failed: %s", run_id, video_id, outcome.message)
        return outcome


class BearerAuth:
    """ASGI middleware: every path except ``OPEN_PATHS`` needs ``Authorization: Bearer <key>``.

    Middleware rather than a FastAPI dependency so the key is checked before anything else
    (body parsing, routing): an unauthenticated caller learns nothing, not even that its JSON
    was malformed or a path does not exist.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], *, api_key: str):
        self.app = app
        self._key = api_key.encode()

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        value = next((v for k, v in headers if k.lower() == b"authorization"), b"")
        scheme, _, token = value.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        # Constant time, so response timing does not reveal how much of a guess was right.
        return hmac.compare_digest(token.strip(), self._key)

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path in OPEN_PATHS or self._authorized(scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        response = _error(
            401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
        await response(scope, receive, send)


def _validation_message(exc: RequestValidationError) -> str:
    """One line naming the first problem with the body (FastAPI's 422 detail, condensed)."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON"
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    where = ".".join(loc) if loc else "body"
    return f"invalid request: {where}: {first.get('msg', 'invalid value')}"


class _Videos:
    """Reads for the endpoints: object heads, manifests, run history (blocking; run in threads)."""

    def __init__(self, settings: Settings, instance: DagsterInstance):
        self.settings = settings
        self.instance = instance
        self.store = bucket_store(settings)

    def manifest_key(self, key: str) -> str:
        stem = output_stem(key, self.settings.video_prefix)
        return f"{self.settings.output_prefix}{stem}/manifest.json"

    def head(self, key: str) -> None:
        try:
            self.store.head(key)
        except ObjectNotFoundError:
            raise ApiError(404, f"missing object: s3://{self.settings.bucket}/{key}") from None
        except (ClientError, BotoCoreError) as err:
            raise _storage_error(err) from None

    def manifest(self, key: str, video_id: str) -> dict[str, Any] | None:
        """The published manifest of ``key``, if it is this video's.

        Different keys can reduce to the same output folder (``a b.mp4``, ``a_b.mp4``); the
        manifest's ``video_id`` tells whose it is, so another video's is never returned.
        """
        try:
            manifest = json.loads(self.store.get_bytes(self.manifest_key(key)))
        except ObjectNotFoundError:
            return None
        except (ClientError, BotoCoreError) as err:
            raise _storage_error(err) from None
        except ValueError:
            log.warning("manifest for video %s is not valid JSON", video_id)
            return None
        if not isinstance(manifest, dict) or manifest.get("video_id") != video_id:
            return None
        return manifest

    def latest_run(self, video_id: str) -> DagsterRun | None:
        runs = self.instance.get_runs(RunsFilter(tags={PARTITION_TAG: video_id}), limit=1)
        return runs[0] if runs else None

    def key_of(self, run: DagsterRun, video_id: str) -> str | None:
        """The object key behind a run: its tag, else the ``videos`` table (UI-launched runs)."""
        key = run.tags.get(SOURCE_KEY_TAG)
        if key:
            return key
        try:
            table = self._warehouse().read("videos", video_id)
        except Exception:  # a missing or unreadable table only costs the key, not the status
            log.warning("could not read the videos table for %s", video_id, exc_info=True)
            return None
        if table is None or not table.num_rows:
            return None
        return table["key"][0].as_py()

    def _warehouse(self) -> Warehouse:
        root = self.settings.warehouse
        if root.startswith("s3://"):
            bucket, _, prefix = root[len("s3://") :].partition("/")
            if bucket != self.settings.bucket:
                raise ValueError("TALENT_WAREHOUSE is outside the configured bucket")
            return Warehouse(self.store, prefix)
        return Warehouse(LocalObjectStore(Path(root).expanduser()), "")

    def status(self, video_id: str, submission: Submission | None) -> dict[str, Any]:
        """``GET /videos/{id}``: the newest run (ours, possibly still queued, or any other)."""
        if submission is not None and self.instance.get_run_by_id(submission.run_id) is None:
            # Accepted here but its Dagster run does not exist yet: queued behind others, or it
            # failed before Dagster could record it.
            status, error = "queued", None
            if submission.future.done():
                try:
                    outcome = submission.future.result()
                    status, error = "failure", outcome.message or "the run failed"
                except CancelledError:
                    status, error = "failure", "the run was cancelled before it started"
            return self._answer(video_id, status, submission.run_id, submission.key, error)
        # Looked up after the check above, so a run created in between is not missed.
        run = self.latest_run(video_id)
        if run is None:
            raise ApiError(404, f"unknown video id: {video_id}")
        key = self.key_of(run, video_id)
        if key is not None and video_id_for(
            self.settings.bucket, key, self.settings.video_prefix
        ) != (video_id):
            # A run for another bucket (e.g. `talent process s3://other/...` on this instance):
            # not a video this API serves.
            raise ApiError(404, f"unknown video id: {video_id}")
        error = None
        if run.status == DagsterRunStatus.SUCCESS:
            status = "success"
        elif run.status in _FAILED:
            status = "failure"
            error = (
                "the run was canceled"
                if run.status == DagsterRunStatus.CANCELED
                else run_failure_message(self.instance, run.run_id)
            )
        elif run.status in _QUEUED:
            status = "queued"
        else:
            status = "running"
        return self._answer(video_id, status, run.run_id, key, error)

    def _answer(
        self, video_id: str, status: str, run_id: str, key: str | None, error: str | None
    ) -> dict[str, Any]:
        # The manifest is whatever is published, so while a re-run is queued or running, or
        # after it failed (failed runs keep earlier outputs), callers still get the last one.
        manifest = self.manifest(key, video_id) if key else None
        return {
            "video_id": video_id,
            "status": status,
            "run_id": run_id,
            "key": key,
            "manifest": manifest,
            "error": _one_line(error) if error else None,
        }


def _storage_error(err: Exception) -> ApiError:
    # Only the S3 error code: messages can carry request details we do not want to echo.
    code = err.response.get("Error", {}).get("Code", "") if isinstance(err, ClientError) else ""
    log.warning("object store error: %s", type(err).__name__, exc_info=True)
    suffix = f" ({code})" if code else ""
    return ApiError(502, f"the object store could not be reached{suffix}")


def create_app(
    settings: Settings | None = None,
    instance: DagsterInstance | None = None,
    *,
    max_concurrent: int | None = None,
) -> FastAPI:
    """Build the API for ``settings`` (default: the environment) and a Dagster ``instance``.

    ``max_concurrent`` (default ``TALENT_API_MAX_CONCURRENT``, else 1) bounds the runs in
    flight; further requests queue. A factory, so ``uvicorn talent_assets.apps.api:create_app
    --factory`` reads the environment at start-up, not at import.
    """
    settings = settings or Settings.from_env()
    instance = instance or default_instance()
    queue = RunQueue(settings, instance, max_concurrent or max_concurrent_from_env())
    videos = _Videos(settings, instance)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        await run_in_threadpool(queue.shutdown)

    app = FastAPI(
        title="Video Talent Frame Extractor",
        summary="Find every distinct person in an S3 video and the best still of each.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.instance = instance
    app.state.queue = queue
    if settings.api_key:
        app.add_middleware(BearerAuth, api_key=settings.api_key)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # 400, not FastAPI's 422: 422 is reserved for "that object is not a video".
        return _error(400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server log only.
        log.error("unhandled error", exc_info=exc)
        return _error(500, "internal error")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness; open even when a key is configured."""
        return {"status": "ok"}

    @app.post("/process", responses={202: {"description": "accepted (`wait: false`)"}})
    async def process(body: ProcessRequest) -> JSONResponse:
        """Process ``s3://bucket/key``; the manifest, or 202 and a run id with ``wait: false``."""
        if body.bucket != settings.bucket:
            raise ApiError(403, f"bucket {body.bucket!r} is not served here")
        try:
            check_key(body.key)
        except UnsafeKeyError as err:
            raise ApiError(400, str(err)) from None
        if not is_video_key(body.key):
            raise ApiError(422, f"not a video file name: {body.key!r}")
        # Found before a run is queued, so a typo is a quick 404 rather than a failed run.
        await run_in_threadpool(videos.head, body.key)
        video_id = video_id_for(settings.bucket, body.key, settings.video_prefix)
        submission = queue.submit(video_id, body.key)
        status_url = f"/videos/{video_id}"
        if not body.wait:
            return JSONResponse(
                {"run_id": submission.run_id, "video_id": video_id, "status_url": status_url},
                status_code=202,
                headers={"Location": status_url},
            )
        # Shielded: a client that hangs up must not cancel a run that is queued or running.
        outcome = await asyncio.shield(asyncio.wrap_future(submission.future))
        ids = {"run_id": outcome.run_id, "video_id": video_id}
        if not outcome.success:
            status = _STATUS_BY_ERROR_KIND.get(outcome.error_kind, 500)
            raise ApiError(status, outcome.message or "the run failed", **ids)
        manifest = await run_in_threadpool(videos.manifest, body.key, video_id)
        if manifest is None:
            raise ApiError(500, "the run succeeded but published no manifest", **ids)
        return JSONResponse(manifest)

    @app.get("/videos/{video_id}")
    async def video_status(video_id: str) -> dict[str, Any]:
        """Status of the latest run of a video, with its published manifest (or ``null``)."""
        if not VIDEO_ID_RE.fullmatch(video_id):
            raise ApiError(400, "invalid video id: only a-z, 0-9, '_' and '-' are allowed")
        return await run_in_threadpool(videos.status, video_id, queue.latest(video_id))

    return app


_APP_LOCK = threading.Lock()


def __getattr__(name: str) -> Any:
    """``talent_assets.apps.api.app``, built on first access (``uvicorn talent_assets.apps.api:app``).

    Lazy so that importing the module (tests, Modal's image build) reads no environment and
    opens no Dagster instance.
    """
    if name == "app":
        with _APP_LOCK:
            if "app" not in globals():
                globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
