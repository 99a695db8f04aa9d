"""Dagster resources: where videos and outputs live, and the face detector."""

import functools
import os
from pathlib import Path
from typing import Literal

import pyarrow as pa
from dagster import ConfigurableResource, EnvVar, ResourceDependency
from dagster_aws.s3 import S3Resource

from modal_gpu.detection import DetectionStats
from talent_assets.settings import Settings
from talent_assets.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from talent_assets.warehouse import Warehouse


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

    def _s3_store(self) -> S3ObjectStore:
        return S3ObjectStore(self.s3.get_client(), self.bucket)

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


@functools.lru_cache(maxsize=2)
def local_face_engine(pack: str):  # -> FaceEngine, loaded once per process and pack
    """Loading ONNX sessions takes seconds; keep one engine per process and pack."""
    from modal_gpu.face_engine import FaceEngine

    return FaceEngine(pack)


class FaceDetector(ConfigurableResource):
    """Runs face detection for a video: in-process on the CPU, or on a Modal GPU."""

    kind: Literal["local", "modal"] = "local"
    model_pack: str = "bundled"
    sample_fps: float = 2.0
    modal_app: str = "video-talent-extractor"

    def detect(self, video: Path, video_id: str) -> tuple[pa.Table, DetectionStats]:
        """All gated faces of ``video`` as ``face_detections`` rows, plus stage statistics."""
        if self.kind == "modal":
            raise NotImplementedError(
                "the Modal detector is not yet available; set TALENT_DETECTOR=local"
            )
        from modal_gpu.detection import detect_video_faces

        return detect_video_faces(
            video,
            video_id=video_id,
            engine=local_face_engine(self.model_pack),
            sample_fps=self.sample_fps,
        )


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
        ),
    }


def bucket_store(settings: Settings | None = None) -> S3ObjectStore:
    """The configured bucket outside a Dagster run (CLI uploads, demo, API, tests).

    Credentials come from boto3's default chain (the same environment variables), never from
    arguments, so they cannot leak into logs or metadata.
    """
    import boto3
    from botocore.config import Config as BotoConfig

    settings = settings or Settings.from_env()
    client = boto3.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        config=BotoConfig(signature_version="s3v4", retries={"max_attempts": 5}),
    )
    return S3ObjectStore(client, settings.bucket)
