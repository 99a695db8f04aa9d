"""The HTTP API: process one S3 video through Dagster and return its manifest.

Served locally with ``uvicorn talent_assets.apps.api:create_app --factory`` (or
``talent_assets.apps.api:app``) and on Modal through ``asgi_app``. Endpoints (see
docs/design.md, "HTTP API"):

- ``POST /process {"bucket", "key", "wait": true}``: the manifest, exactly as published to
  ``s3://<bucket>/<output prefix><stem>/manifest.json``; with ``"wait": false`` a 202 with the
  run id and where to poll.
- ``GET /videos/{video_id}``: the latest run's status and the published manifest.
- ``GET /healthz``: liveness, never behind the key.

Every error is JSON ``{"error": "<one line>", ...}`` (with ``run_id`` once a run exists); no
traceback ever leaves the process. Runs execute in-process (``runner.process_partition``)
against a real Dagster instance, so they show in the Dagster UI like the sensor's runs.

Modules: ``factory`` (``create_app``, wiring only), ``auth`` (the bearer key), ``runs`` (the
run queue), ``status`` (reads behind the endpoints), ``errors`` and ``models``. The factory
module is not called ``app`` because this package's ``app`` attribute is the lazily built
application itself (below); a submodule of that name would shadow it.
"""

from __future__ import annotations

import threading
from typing import Any

from talent_assets.apps.api.auth import BearerAuth
from talent_assets.apps.api.errors import ApiError
from talent_assets.apps.api.factory import create_app
from talent_assets.apps.api.models import ProcessRequest
from talent_assets.apps.api.runs import RunQueue, Submission
from talent_assets.apps.api.status import VideoReader

__all__ = [
    "ApiError",
    "BearerAuth",
    "ProcessRequest",
    "RunQueue",
    "Submission",
    "VideoReader",
    "create_app",
]

_APP_LOCK = threading.Lock()


def __getattr__(name: str) -> Any:
    """``talent_assets.apps.api.app``: the app, built on first access.

    For ``uvicorn talent_assets.apps.api:app``. Lazy so that importing the package (tests,
    Modal's image build) reads no environment and opens no Dagster instance.
    """
    if name == "app":
        with _APP_LOCK:
            if "app" not in globals():
                globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
