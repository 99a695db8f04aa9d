"""Environment configuration (the table in README.md / DESIGN.md), read in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Values of the ``TALENT_*`` variables, with their documented defaults."""

    bucket: str
    endpoint_url: str | None
    region: str
    video_prefix: str
    output_prefix: str
    warehouse: str
    detector: str
    model_pack: str
    sample_fps: float
    api_key: str | None
    modal_gpu: str

    @classmethod
    def from_env(cls) -> Settings:
        bucket = os.environ.get("TALENT_BUCKET", "talent")
        return cls(
            bucket=bucket,
            endpoint_url=os.environ.get("TALENT_S3_ENDPOINT_URL") or None,
            region=os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1",
            video_prefix=_prefix(os.environ.get("TALENT_VIDEO_PREFIX", "videos/")),
            output_prefix=_prefix(os.environ.get("TALENT_OUTPUT_PREFIX", "processed/")),
            warehouse=os.environ.get("TALENT_WAREHOUSE") or f"s3://{bucket}/warehouse",
            detector=os.environ.get("TALENT_DETECTOR", "local"),
            model_pack=os.environ.get("TALENT_MODEL_PACK", "bundled"),
            sample_fps=float(os.environ.get("TALENT_SAMPLE_FPS", "2")),
            api_key=os.environ.get("TALENT_API_KEY") or None,
            modal_gpu=os.environ.get("TALENT_MODAL_GPU", "T4"),
        )


def _prefix(value: str) -> str:
    value = value.strip().lstrip("/")
    return value if not value or value.endswith("/") else value + "/"
