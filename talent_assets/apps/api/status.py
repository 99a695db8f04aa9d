"""The reads behind the endpoints: object heads, published manifests, run history.

All blocking (S3 calls, the Dagster instance's database), so the endpoints call them in
worker threads.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import CancelledError
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

from talent_assets.apps.api.errors import ApiError, one_line, storage_error
from talent_assets.apps.api.runs import Submission
from talent_assets.apps.runner import run_failure_message
from talent_assets.core.manifest import manifest_key
from talent_assets.core.objects import ObjectNotFoundError
from talent_assets.core.video_id import video_id_for
from talent_assets.defs.tags import PARTITION_TAG, SOURCE_KEY_TAG
from talent_assets.infra.s3 import bucket_store
from talent_assets.infra.settings import Settings
from talent_assets.infra.warehouse import open_warehouse

log = logging.getLogger(__name__)

_QUEUED = frozenset({DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED})
_FAILED = frozenset({DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED})


class VideoReader:
    """What the API knows about videos: the bucket's objects and the instance's runs."""

    def __init__(self, settings: Settings, instance: DagsterInstance):
        self.settings = settings
        self.instance = instance
        self.store = bucket_store(settings)

    def head(self, key: str) -> None:
        """Check that ``key`` exists: a 404 ``ApiError`` if not, a 502 if S3 fails."""
        try:
            self.store.head(key)
        except ObjectNotFoundError:
            raise ApiError(404, f"missing object: s3://{self.settings.bucket}/{key}") from None
        except (ClientError, BotoCoreError) as err:
            raise storage_error(err) from None

    def manifest(self, key: str, video_id: str) -> dict[str, Any] | None:
        """The published manifest of ``key``, if it is this video's.

        Different keys can reduce to the same output folder (``a b.mp4``, ``a_b.mp4``); the
        manifest's ``video_id`` tells whose it is, so another video's is never returned.
        """
        where = manifest_key(self.settings.output_prefix, key, self.settings.video_prefix)
        try:
            manifest = json.loads(self.store.get_bytes(where))
        except ObjectNotFoundError:
            return None
        except (ClientError, BotoCoreError) as err:
            raise storage_error(err) from None
        except ValueError:
            log.warning("manifest for video %s is not valid JSON", video_id)
            return None
        if not isinstance(manifest, dict) or manifest.get("video_id") != video_id:
            return None
        return manifest

    def latest_run(self, video_id: str) -> DagsterRun | None:
        """The newest Dagster run of the partition ``video_id``, whoever launched it."""
        runs = self.instance.get_runs(RunsFilter(tags={PARTITION_TAG: video_id}), limit=1)
        return runs[0] if runs else None

    def key_of(self, run: DagsterRun, video_id: str) -> str | None:
        """The object key behind a run: its tag, else the ``videos`` table (UI-launched runs)."""
        key = run.tags.get(SOURCE_KEY_TAG)
        if key:
            return key
        try:
            warehouse = open_warehouse(
                self.settings.warehouse, self.settings.bucket, lambda: self.store
            )
            table = warehouse.read("videos", video_id)
        except Exception:  # a missing or unreadable table only costs the key, not the status
            log.warning("could not read the videos table for %s", video_id, exc_info=True)
            return None
        if table is None or not table.num_rows:
            return None
        return table["key"][0].as_py()

    def status(self, video_id: str, submission: Submission | None) -> dict[str, Any]:
        """``GET /videos/{id}``: the newest run (ours, possibly still queued, or any other)."""
        if submission is not None and self.instance.get_run_by_id(submission.run_id) is None:
            # Accepted here but its Dagster run does not exist yet: queued behind others, or it
            # failed before Dagster could record it.
            return self._submission_status(video_id, submission)
        # Looked up after the check above, so a run created in between is not missed.
        run = self.latest_run(video_id)
        if run is None:
            raise ApiError(404, f"unknown video id: {video_id}")
        key = self.key_of(run, video_id)
        if key is not None and (
            video_id_for(self.settings.bucket, key, self.settings.video_prefix) != video_id
        ):
            # A run for another bucket (e.g. `talent process s3://other/...` on this instance):
            # not a video this API serves.
            raise ApiError(404, f"unknown video id: {video_id}")
        status, error = self._run_status(run)
        if (
            status == "success"
            and submission is not None
            and run.run_id == submission.run_id
            and not submission.future.done()
        ):
            # The video's run is done but its registry update (same submission) is not: the
            # manifest has no talent ids yet, so the video is not done for the caller.
            status = "running"
        return self._answer(video_id, status, run.run_id, key, error)

    def _submission_status(self, video_id: str, submission: Submission) -> dict[str, Any]:
        status, error = "queued", None
        if submission.future.done():
            try:
                outcome = submission.future.result()
                status, error = "failure", outcome.message or "the run failed"
            except CancelledError:
                status, error = "failure", "the run was cancelled before it started"
        return self._answer(video_id, status, submission.run_id, submission.key, error)

    def _run_status(self, run: DagsterRun) -> tuple[str, str | None]:
        # Dagster's many run states, reduced to the four the API documents.
        if run.status == DagsterRunStatus.SUCCESS:
            return "success", None
        if run.status == DagsterRunStatus.CANCELED:
            return "failure", "the run was canceled"
        if run.status in _FAILED:
            return "failure", run_failure_message(self.instance, run.run_id)
        if run.status in _QUEUED:
            return "queued", None
        return "running", None

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
            "error": one_line(error) if error else None,
        }
