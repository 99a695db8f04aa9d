"""Dagster resources: where videos and outputs live, the face detector, and the queue of S3
event notifications.

Configuration only; the work is done by ``infra`` (object stores, the warehouse, the
detector dispatch). Built from :class:`~talent_assets.infra.settings.Settings` by
:func:`build_resources`; credentials stay ``EnvVar`` references.
"""

# No ``from __future__ import annotations`` here: Dagster reads ResourceDependency[...] from
# the live annotations.
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from dagster import ConfigurableResource, EnvVar, ResourceDependency
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from modal_gpu.chunks import STATIC_BLOCK_S, Chunk
from modal_gpu.detection import DetectionStats
from talent_assets.infra.detection import (
    DetectorConfig,
    VideoSource,
    detect_faces,
    plan_detection,
)
from talent_assets.infra.s3 import s3_client
from talent_assets.infra.settings import DEFAULT_GPU_PRICES_PER_HOUR, Settings
from talent_assets.infra.sqs import VideoEventQueue, sqs_client
from talent_assets.infra.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from talent_assets.infra.video_cache import VideoCache
from talent_assets.infra.warehouse import Warehouse, open_warehouse


class TalentStorage(ConfigurableResource):
    """The configured bucket (inputs, outputs, warehouse), or local folders for the CLI.

    ``local_input_dir`` / ``local_output_dir`` serve ``talent process FILE --out DIR``: the
    same assets then read a local file and write frames, manifest and tables into DIR.
    """

    s3: ResourceDependency[S3Resource]
    bucket: str = "talent"
    video_prefix: str = "videos/"
    output_prefix: str = "processed/"
    warehouse: str = ""
    local_input_dir: str | None = None
    local_output_dir: str | None = None
    cache_dir: str | None = None  # local copies of videos; None: the system temp dir

    # One client per resource instance: the assets ask for stores a dozen times per run,
    # and building a boto3 session and client each time costs tens of milliseconds.
    _store: Any = PrivateAttr(default=None)

    def _s3_store(self) -> S3ObjectStore:
        if self._store is None:
            client = s3_client(
                endpoint_url=self.s3.endpoint_url,
                region=self.s3.region_name,
                access_key=self.s3.aws_access_key_id,
                secret_key=self.s3.aws_secret_access_key,
                session_token=self.s3.aws_session_token,
                max_attempts=self.s3.max_attempts,
            )
            self._store = S3ObjectStore(client, self.bucket)
        return self._store

    def input_store(self) -> ObjectStore:
        """Where source videos are read from."""
        if self.local_input_dir:
            return LocalObjectStore(Path(self.local_input_dir))
        return self._s3_store()

    def output_store(self) -> ObjectStore:
        """Where frames, contact sheets and manifests are written."""
        if self.local_output_dir:
            return LocalObjectStore(Path(self.local_output_dir))
        return self._s3_store()

    def video_cache(self) -> VideoCache:
        """Local copies of source videos while a partition is processed."""
        return VideoCache(Path(self.cache_dir) if self.cache_dir else None)

    def tables(self) -> Warehouse:
        """The Parquet warehouse. ``s3://`` roots must be in the configured bucket."""
        if self.local_output_dir:
            return Warehouse(LocalObjectStore(Path(self.local_output_dir)), "warehouse/")
        root = self.warehouse or f"s3://{self.bucket}/warehouse"
        return open_warehouse(root, self.bucket, self._s3_store)


class FaceDetector(ConfigurableResource):
    """Runs face detection for a video: in-process on the CPU, or on a Modal GPU.

    Both split the video into time chunks on the sampling grid and run them in parallel:
    a process pool locally (one per core), ``.map`` over the deployed Modal class remotely.
    """

    kind: Literal["local", "modal"] = "local"
    model_pack: str = "bundled"
    sample_fps: float = 2.0
    workers: int = 0  # local processes; 0 = one per core
    chunk_s: float = 0.0  # 0 = local: one chunk per worker; Modal: 120 s
    # Near-identical frames of static shots reuse the faces of the last analysed frame, which
    # is refreshed at least every static_block_s seconds; 0 analyses every sampled frame.
    static_block_s: float = STATIC_BLOCK_S
    # N evenly spaced representative frames, chosen in the detection decode; 0: none.
    representative_frames: int = 10
    # How often face_detections logs its progress (seconds).
    progress_interval_s: float = 5.0
    modal_app: str = "video-talent-extractor"
    modal_gpu: str = "T4"
    gpu_prices: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_GPU_PRICES_PER_HOUR))

    def config(self) -> DetectorConfig:
        """The plain configuration the dispatch in ``infra.detection`` works from."""
        return DetectorConfig(
            kind=self.kind,
            model_pack=self.model_pack,
            sample_fps=self.sample_fps,
            workers=self.workers,
            chunk_s=self.chunk_s,
            static_block_s=self.static_block_s,
            representative_frames=self.representative_frames,
            modal_app=self.modal_app,
            modal_gpu=self.modal_gpu,
            gpu_prices=self.gpu_prices,
        )

    def plan(self, duration_s: float) -> list[Chunk]:
        """The chunks this detector will analyse for a video of ``duration_s`` seconds."""
        return plan_detection(self.config(), duration_s)

    def detect(
        self,
        video_id: str,
        source: VideoSource,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[pa.Table, DetectionStats]:
        """All gated faces of the video as ``face_detections`` rows, plus statistics (and the
        representative frames, ``stats.representative``); ``progress(done, total)`` sampled
        frames as detection goes (``infra.detection.detect_faces``)."""
        return detect_faces(self.config(), video_id, source, progress)


class S3EventQueue(ConfigurableResource):
    """The SQS queue that the bucket's S3 event notifications land in (the sensor's ``sqs``
    mode). Credentials from boto3's default chain, as for S3."""

    queue_url: str = ""
    endpoint_url: str | None = None  # None: AWS; else an SQS-compatible server
    region_name: str | None = None

    def queue(self) -> VideoEventQueue:
        """A client for the queue."""
        if not self.queue_url:
            raise ValueError("no queue configured: set TALENT_SQS_QUEUE_URL")
        return VideoEventQueue(sqs_client(self.endpoint_url, self.region_name), self.queue_url)


def _env_or_none(name: str) -> EnvVar | None:
    # EnvVar keeps the value out of the UI and logs; unset means boto3's default chain.
    return EnvVar(name) if os.environ.get(name) else None


def build_resources(settings: Settings) -> dict[str, ConfigurableResource]:
    """Resources for ``settings``, for ``Definitions`` and for one-off CLI/API runs."""
    s3 = S3Resource(
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=_env_or_none("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=_env_or_none("AWS_SECRET_ACCESS_KEY"),
    )
    return {
        "storage": TalentStorage(
            s3=s3,
            bucket=settings.bucket,
            video_prefix=settings.video_prefix,
            output_prefix=settings.output_prefix,
            warehouse=settings.warehouse,
            cache_dir=settings.cache_dir,
        ),
        "detector": FaceDetector(
            kind=settings.detector,  # type: ignore[arg-type]
            model_pack=settings.model_pack,
            sample_fps=settings.sample_fps,
            workers=settings.workers,
            chunk_s=settings.chunk_s,
            static_block_s=settings.static_block_s,
            representative_frames=settings.representative_frames,
            modal_gpu=settings.modal_gpu,
            gpu_prices=dict(settings.modal_gpu_prices),
        ),
        "video_events": S3EventQueue(
            queue_url=settings.sqs_queue_url or "",
            endpoint_url=settings.sqs_endpoint_url,
            region_name=settings.region,
        ),
    }
