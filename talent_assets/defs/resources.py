"""Dagster resources: where videos and outputs live, and the face detector."""

import functools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from dagster import ConfigurableResource, EnvVar, ResourceDependency
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from modal_gpu.chunks import (
    STATIC_BLOCK_S,
    Chunk,
    auto_chunk_seconds,
    chunk_requests,
    plan_chunks,
    static_block_slots,
)
from modal_gpu.detection import DetectionStats
from modal_gpu.fanout import detect_in_chunks
from modal_gpu.worker import join_replies
from talent_assets.infra.settings import Settings
from talent_assets.infra.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from talent_assets.infra.warehouse import Warehouse

# Chunk length on Modal: short enough that a 90-minute video fans out over ~45 GPUs and
# finishes in about a minute, long enough that each container's model load is amortised.
MODAL_CHUNK_S = 120.0


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

    # One client per resource instance: the assets ask for stores a dozen times per run,
    # and building a boto3 session and client each time costs tens of milliseconds.
    _store: Any = PrivateAttr(default=None)

    def _s3_store(self) -> S3ObjectStore:
        if self._store is None:
            self._store = self._new_s3_store()
        return self._store

    def _new_s3_store(self) -> S3ObjectStore:
        import boto3
        from botocore.config import Config as BotoConfig

        # Built from the S3Resource's (resolved) settings rather than S3Resource.get_client():
        # that client presigns with the legacy SigV2 scheme, and links must be SigV4.
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.s3.endpoint_url,
            region_name=self.s3.region_name,
            aws_access_key_id=self.s3.aws_access_key_id,
            aws_secret_access_key=self.s3.aws_secret_access_key,
            aws_session_token=self.s3.aws_session_token,
            config=BotoConfig(
                signature_version="s3v4", retries={"max_attempts": self.s3.max_attempts}
            ),
        )
        return S3ObjectStore(client, self.bucket)

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

    def tables(self) -> Warehouse:
        """The Parquet warehouse. ``s3://`` roots must be in the configured bucket."""
        if self.local_output_dir:
            return Warehouse(LocalObjectStore(Path(self.local_output_dir)), "warehouse/")
        root = self.warehouse or f"s3://{self.bucket}/warehouse"
        if root.startswith("s3://"):
            bucket, _, prefix = root[len("s3://") :].partition("/")
            if bucket != self.bucket:
                raise ValueError(
                    f"TALENT_WAREHOUSE must be in the configured bucket {self.bucket!r}"
                )
            return Warehouse(self._s3_store(), prefix)
        return Warehouse(LocalObjectStore(Path(root).expanduser()), "")


# Modal list prices in USD per GPU-hour (modal.com/pricing, 2026); override with
# TALENT_MODAL_GPU_PRICES='{"T4": 0.59, ...}'. Used for the cost estimate in metadata only.
DEFAULT_GPU_PRICES_PER_HOUR: dict[str, float] = {
    "T4": 0.59,
    "L4": 0.80,
    "A10G": 1.10,
    "L40S": 1.95,
    "A100-40GB": 2.10,
    "A100-80GB": 2.50,
    "H100": 3.95,
    "H200": 4.54,
    "B200": 6.25,
}


def gpu_prices() -> dict[str, float]:
    """The price table, with any override from the environment."""
    prices = dict(DEFAULT_GPU_PRICES_PER_HOUR)
    override = os.environ.get("TALENT_MODAL_GPU_PRICES")
    if override:
        prices.update({k: float(v) for k, v in json.loads(override).items()})
    return prices


@functools.lru_cache(maxsize=4)
def _deployed_detector_cls(app_name: str):  # -> modal.Cls, looked up once per process
    import modal

    return modal.Cls.from_name(app_name, "FaceDetector")


@dataclass(frozen=True)
class VideoSource:
    """Where the detector finds a video: the object, and a local copy for the CPU path."""

    bucket: str
    key: str
    duration_s: float
    local_path: Callable[[], Path]


class FaceDetector(ConfigurableResource):
    """Runs face detection for a video: in-process on the CPU, or on a Modal GPU.

    Both split the video into time chunks on the sampling grid and run them in parallel:
    a process pool locally (one per core), ``.map`` over the deployed Modal class remotely.
    """

    kind: Literal["local", "modal"] = "local"
    model_pack: str = "bundled"
    sample_fps: float = 2.0
    workers: int = 0  # local processes; 0 = one per core
    chunk_s: float = 0.0  # 0 = local: one chunk per worker; Modal: MODAL_CHUNK_S
    # Near-identical frames of static shots reuse the faces of the last analysed frame, which
    # is refreshed at least every static_block_s seconds; 0 analyses every sampled frame.
    static_block_s: float = STATIC_BLOCK_S
    modal_app: str = "video-talent-extractor"
    modal_gpu: str = "T4"

    def plan(self, duration_s: float) -> list[Chunk]:
        """The chunks this detector will analyse for a video of ``duration_s`` seconds."""
        if self.kind == "modal":
            chunk_s = self.chunk_s or MODAL_CHUNK_S
        else:
            chunk_s = self.chunk_s or auto_chunk_seconds(duration_s, self._workers())
        align = static_block_slots(self.sample_fps, self.static_block_s)
        return plan_chunks(duration_s, self.sample_fps, chunk_s, align_slots=align)

    def _workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def detect(self, video_id: str, source: VideoSource) -> tuple[pa.Table, DetectionStats]:
        """All gated faces of the video as ``face_detections`` rows, plus statistics."""
        chunks = self.plan(source.duration_s)
        if self.kind == "modal":
            return self._detect_on_modal(video_id, source, chunks)
        return detect_in_chunks(
            source.local_path(),
            video_id=video_id,
            pack=self.model_pack,
            sample_fps=self.sample_fps,
            chunks=chunks,
            workers=self._workers(),
            static_block_s=self.static_block_s,
        )

    def _detect_on_modal(
        self, video_id: str, source: VideoSource, chunks: list[Chunk]
    ) -> tuple[pa.Table, DetectionStats]:
        started = time.perf_counter()
        requests = chunk_requests(
            chunks,
            bucket=source.bucket,
            key=source.key,
            video_id=video_id,
            sample_fps=self.sample_fps,
            model_pack=self.model_pack,
            static_block_s=self.static_block_s,
        )
        remote = _deployed_detector_cls(self.modal_app)(model_pack=self.model_pack)
        # .map keeps input order, so rows come back in time order; Modal retries chunks.
        replies = list(remote.detect_chunk.map(requests))
        table, stats = join_replies(replies)
        gpu_seconds = sum(float(r["wall_s"]) for r in replies)
        price = gpu_prices().get(self.modal_gpu)
        stats.wall_s = time.perf_counter() - started
        stats.extra.update(
            chunks=len(chunks),
            gpu=self.modal_gpu,
            gpu_seconds=round(gpu_seconds, 2),
        )
        if price is not None:
            stats.extra["estimated_cost_usd"] = round(gpu_seconds / 3600 * price, 5)
        return table, stats


def _env_or_none(name: str) -> EnvVar | None:
    # EnvVar keeps the value out of the UI and logs; unset means boto3's default chain.
    return EnvVar(name) if os.environ.get(name) else None


def build_resources(settings: Settings | None = None) -> dict[str, ConfigurableResource]:
    """Resources from the environment, for ``Definitions`` and for one-off CLI runs."""
    settings = settings or Settings.from_env()
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
        ),
        "detector": FaceDetector(
            kind=settings.detector,  # type: ignore[arg-type]
            model_pack=settings.model_pack,
            sample_fps=settings.sample_fps,
            workers=int(os.environ.get("TALENT_WORKERS", "0")),
            chunk_s=float(os.environ.get("TALENT_CHUNK_S", "0")),
            static_block_s=float(os.environ.get("TALENT_STATIC_BLOCK_S", str(STATIC_BLOCK_S))),
            modal_gpu=settings.modal_gpu,
        ),
    }


def bucket_store(settings: Settings | None = None) -> S3ObjectStore:
    """The configured bucket outside a Dagster run (CLI uploads, demo, API, tests).

    Credentials come from boto3's default chain (the same environment variables), never from
    arguments, so they cannot leak into logs or metadata. A new session each time: boto3's
    default session resolves credentials once per process and would keep stale ones.
    """
    import boto3
    from botocore.config import Config as BotoConfig

    settings = settings or Settings.from_env()
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        config=BotoConfig(signature_version="s3v4", retries={"max_attempts": 5}),
    )
    return S3ObjectStore(client, settings.bucket)
