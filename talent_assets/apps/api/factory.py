"""``create_app``: the FastAPI app, wired from the pieces of this package.

Kept to wiring: each route and the exception handlers are registered by a small named
function; the work behind them lives in ``runs`` (runs), ``status`` (reads) and ``errors``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from dagster import DagsterInstance
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from talent_assets.apps.api.auth import BearerAuth
from talent_assets.apps.api.errors import (
    ApiError,
    error_response,
    status_for_error_kind,
    validation_message,
)
from talent_assets.apps.api.models import ProcessRequest
from talent_assets.apps.api.runs import RunQueue, Submission
from talent_assets.apps.api.status import VideoReader
from talent_assets.apps.api.talents import add_talent_routes
from talent_assets.core.objects import UnsafeKeyError, check_key
from talent_assets.core.url_policy import UrlRefusedError, split_url
from talent_assets.core.video_id import is_video_key, url_video_key, video_id_for
from talent_assets.defs.instance import current_instance
from talent_assets.defs.tags import WEBHOOK_URL_TAG
from talent_assets.infra.settings import Settings

log = logging.getLogger(__name__)

VIDEO_ID_RE = re.compile(r"[a-z0-9_-]{1,200}")


def create_app(
    settings: Settings | None = None,
    instance: DagsterInstance | None = None,
    *,
    max_concurrent: int | None = None,
) -> FastAPI:
    """Build the API for ``settings`` (default: the environment) and a Dagster ``instance``.

    ``max_concurrent`` (default ``settings.api_max_concurrent``, i.e.
    ``TALENT_API_MAX_CONCURRENT``, else 1) bounds the runs in flight; further requests queue.
    A factory, so ``uvicorn talent_assets.apps.api:create_app --factory`` reads the
    environment at start-up, not at import.
    """
    settings = settings or Settings.from_env()
    instance = instance or current_instance(keep_history=True)
    queue = RunQueue(settings, instance, max_concurrent or settings.api_max_concurrent)
    videos = VideoReader(settings, instance)
    app = FastAPI(
        title="Video Talent Frame Extractor",
        summary="Find every distinct person in an S3 video and the best still of each.",
        version="0.1.0",
        lifespan=_lifespan(queue),
    )
    app.state.settings = settings
    app.state.instance = instance
    app.state.queue = queue
    if settings.api_key:
        app.add_middleware(BearerAuth, api_key=settings.api_key)
    _add_exception_handlers(app)
    _add_health_route(app)
    _add_process_route(app, settings, queue, videos)
    _add_status_route(app, queue, videos)
    add_talent_routes(app, settings)
    return app


def _lifespan(queue: RunQueue) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(queue.shutdown)

    return lifespan


def _add_exception_handlers(app: FastAPI) -> None:
    """Every error, ours or FastAPI's, answered as one-line JSON (see ``errors``)."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # 400, not FastAPI's 422: 422 is reserved for "that object is not a video".
        return error_response(400, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        return error_response(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server log only.
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal error")


def _add_health_route(app: FastAPI) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness; open even when a key is configured."""
        return {"status": "ok"}


def _add_process_route(
    app: FastAPI, settings: Settings, queue: RunQueue, videos: VideoReader
) -> None:
    @app.post("/process", responses={202: {"description": "accepted (`wait: false`)"}})
    async def process(body: ProcessRequest) -> JSONResponse:
        """Process ``s3://bucket/key`` or a video URL; the manifest, or 202 and a run id with
        ``wait: false``."""
        tags = _webhook_tags(body.webhook_url)
        if body.url is not None:
            _check_url(body.url)
            key = url_video_key(body.url, settings.video_prefix)
            video_id = video_id_for(settings.bucket, key, settings.video_prefix)
            submission = queue.submit(video_id, key, url=body.url, tags=tags)
        else:
            key = _check_process_request(body, settings)
            # Found before a run is queued, so a typo is a quick 404 rather than a failed run.
            await run_in_threadpool(videos.head, key)
            video_id = video_id_for(settings.bucket, key, settings.video_prefix)
            submission = queue.submit(video_id, key, tags=tags)
        if not body.wait:
            return _accepted(submission)
        return await _manifest_when_done(submission, videos)


def _check_process_request(body: ProcessRequest, settings: Settings) -> str:
    """The key, once nothing rules it out: another bucket, an unsafe key, a non-video name."""
    key = str(body.key)
    if body.bucket != settings.bucket:
        raise ApiError(403, f"bucket {body.bucket!r} is not served here")
    try:
        check_key(key)
    except UnsafeKeyError as err:
        raise ApiError(400, str(err)) from None
    if not is_video_key(key):
        raise ApiError(422, f"not a video file name: {key!r}")
    return key


def _check_url(url: str) -> None:
    """A 400 for what is refused before any lookup (scheme, credentials); the addresses are
    checked when the run fetches it (a refusal then fails the run with a 400)."""
    try:
        split_url(url)
    except UrlRefusedError as err:
        raise ApiError(400, str(err)) from None


def _webhook_tags(webhook_url: str | None) -> dict[str, str]:
    """The run tag that makes the completion webhook call ``webhook_url`` for this run."""
    if webhook_url is None:
        return {}
    try:
        split_url(webhook_url)
    except UrlRefusedError as err:
        raise ApiError(400, f"webhook_url: {err}") from None
    return {WEBHOOK_URL_TAG: webhook_url}


def _accepted(submission: Submission) -> JSONResponse:
    """The 202 of ``"wait": false``: the run id and where to poll."""
    status_url = f"/videos/{submission.video_id}"
    return JSONResponse(
        {"run_id": submission.run_id, "video_id": submission.video_id, "status_url": status_url},
        status_code=202,
        headers={"Location": status_url},
    )


async def _manifest_when_done(submission: Submission, videos: VideoReader) -> JSONResponse:
    """Wait for the run; its published manifest, or the run's failure as an ``ApiError``."""
    # Shielded: a client that hangs up must not cancel a run that is queued or running.
    outcome = await asyncio.shield(asyncio.wrap_future(submission.future))
    ids = {"run_id": outcome.run_id, "video_id": submission.video_id}
    if not outcome.success:
        status = status_for_error_kind(outcome.error_kind)
        raise ApiError(status, outcome.message or "the run failed", **ids)
    manifest = await run_in_threadpool(videos.manifest, submission.key, submission.video_id)
    if manifest is None:
        raise ApiError(500, "the run succeeded but published no manifest", **ids)
    return JSONResponse(manifest)


def _add_status_route(app: FastAPI, queue: RunQueue, videos: VideoReader) -> None:
    @app.get("/videos/{video_id}")
    async def video_status(video_id: str) -> dict[str, Any]:
        """Status of the latest run of a video, with its published manifest (or ``null``)."""
        if not VIDEO_ID_RE.fullmatch(video_id):
            raise ApiError(400, "invalid video id: only a-z, 0-9, '_' and '-' are allowed")
        return await run_in_threadpool(videos.status, video_id, queue.latest(video_id))
