"""Every ``TALENT_*`` variable (and the AWS region), read in one place, with its default.

:meth:`Settings.from_env` is the only reader of the environment for configuration; nothing
reads it at import time. Front ends build a ``Settings`` once and pass it down; Dagster
resources are built from it (credentials stay ``EnvVar`` references, never values). The
table in README.md ("Configuration") documents the same names and defaults; a test checks
that the two agree.

Not here, on purpose: the AWS credentials (read by boto3 itself, so no code of ours holds
them), ``DAGSTER_HOME`` (Dagster's own), and the worker's ``TALENT_MODEL_ROOT`` /
``TALENT_REQUIRE_CUDA``, which ``modal_gpu`` reads itself because it must not import this
package (see docs/design.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modal_gpu.chunks import STATIC_BLOCK_S

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
# Static shots: a sampled frame showing the same picture as the last analysed one reuses its
# faces; a frame is analysed afresh at least this often (s). The worker's default.
DEFAULT_STATIC_BLOCK_S = STATIC_BLOCK_S


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Values of the ``TALENT_*`` variables, with their documented defaults."""

    bucket: str = "talent"
    endpoint_url: str | None = None
    region: str = "us-east-1"
    video_prefix: str = "videos/"
    output_prefix: str = "processed/"
    warehouse: str = "s3://talent/warehouse"
    detector: str = "local"
    model_pack: str = "bundled"
    sample_fps: float = 2.0
    api_key: str | None = None
    api_max_concurrent: int = 1
    modal_gpu: str = "T4"
    modal_gpu_prices: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_GPU_PRICES_PER_HOUR)
    )
    workers: int = 0  # local detector processes; 0 = one per core
    chunk_s: float = 0.0  # 0 = automatic
    static_block_s: float = DEFAULT_STATIC_BLOCK_S
    cache_dir: str | None = None  # None: a folder in the system temp dir
    media_cache: str | None = None  # sample and test media; None: ~/.cache/talent-test-media
    sensor_running: bool = False  # TALENT_SENSOR_DEFAULT_STATUS=running
    sensor_interval_s: int = 30
    sensor_max_per_tick: int = 100
    sensor_source: str = "list"  # list: list the prefix each tick; sqs: S3 events from SQS
    sqs_queue_url: str | None = None
    sqs_endpoint_url: str | None = None  # None: AWS; else an SQS-compatible server
    max_concurrent_videos: int = 1
    # Videos from URLs, and webhooks: hosts/networks allowed although not public (SSRF guard).
    url_allow: str = ""
    url_max_mb: int = 2048
    url_timeout_s: float = 600.0
    url_max_duration_s: float = 4 * 3600.0
    webhook_url: str | None = None
    webhook_secret: str | None = None  # HMAC key; like the API key, never logged
    representative_frames: int = 10

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (default: ``os.environ``); bad values raise
        :class:`SettingsError` naming the variable."""
        env = os.environ if environ is None else environ
        bucket = env.get("TALENT_BUCKET") or "talent"
        return cls(
            bucket=bucket,
            endpoint_url=env.get("TALENT_S3_ENDPOINT_URL") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            video_prefix=_prefix(env.get("TALENT_VIDEO_PREFIX", "videos/")),
            output_prefix=_prefix(env.get("TALENT_OUTPUT_PREFIX", "processed/")),
            warehouse=env.get("TALENT_WAREHOUSE") or f"s3://{bucket}/warehouse",
            detector=_choice(env, "TALENT_DETECTOR", "local", ("local", "modal")),
            model_pack=env.get("TALENT_MODEL_PACK") or "bundled",
            sample_fps=_number(env, "TALENT_SAMPLE_FPS", 2.0, positive=True),
            api_key=env.get("TALENT_API_KEY") or None,
            api_max_concurrent=_integer(env, "TALENT_API_MAX_CONCURRENT", 1, minimum=1),
            modal_gpu=env.get("TALENT_MODAL_GPU") or "T4",
            modal_gpu_prices=_prices(env),
            workers=_integer(env, "TALENT_WORKERS", 0, minimum=0),
            chunk_s=_number(env, "TALENT_CHUNK_S", 0.0),
            static_block_s=_number(env, "TALENT_STATIC_BLOCK_S", DEFAULT_STATIC_BLOCK_S),
            cache_dir=env.get("TALENT_CACHE_DIR") or None,
            media_cache=env.get("TALENT_MEDIA_CACHE") or None,
            sensor_running=_choice(
                env, "TALENT_SENSOR_DEFAULT_STATUS", "stopped", ("running", "stopped")
            )
            == "running",
            sensor_interval_s=_integer(env, "TALENT_SENSOR_INTERVAL_S", 30, minimum=1),
            sensor_max_per_tick=_integer(env, "TALENT_SENSOR_MAX_PER_TICK", 100, minimum=1),
            sensor_source=_sensor_source(env),
            sqs_queue_url=_raw(env, "TALENT_SQS_QUEUE_URL"),
            sqs_endpoint_url=_raw(env, "TALENT_SQS_ENDPOINT_URL"),
            max_concurrent_videos=_integer(env, "TALENT_MAX_CONCURRENT_VIDEOS", 1, minimum=1),
            url_allow=env.get("TALENT_URL_ALLOW", ""),
            url_max_mb=_integer(env, "TALENT_URL_MAX_MB", 2048, minimum=1),
            url_timeout_s=_number(env, "TALENT_URL_TIMEOUT_S", 600.0, positive=True),
            url_max_duration_s=_number(env, "TALENT_URL_MAX_DURATION_S", 14400.0, positive=True),
            webhook_url=_raw(env, "TALENT_WEBHOOK_URL"),
            webhook_secret=_raw(env, "TALENT_WEBHOOK_SECRET"),
            representative_frames=_integer(env, "TALENT_REPRESENTATIVE_FRAMES", 10, minimum=0),
        )

    def media_cache_path(self) -> Path:
        """Where sample and test media are cached (``TALENT_MEDIA_CACHE``)."""
        return Path(self.media_cache or "~/.cache/talent-test-media").expanduser()

    def replace(self, **changes: object) -> Settings:
        """A copy with ``changes`` (e.g. the bucket named by ``talent process s3://b/k``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _prefix(value: str) -> str:
    value = value.strip().lstrip("/")
    return value if not value or value.endswith("/") else value + "/"


def _raw(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _number(env: Mapping[str, str], name: str, default: float, *, positive: bool = False) -> float:
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < 0 or (positive and value == 0):
        kind = "positive" if positive else "zero or more"
        raise SettingsError(f"{name} must be {kind}, got {raw!r}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise SettingsError(f"{name} must be {what}, got {raw!r}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (_raw(env, name) or default).lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _sensor_source(env: Mapping[str, str]) -> str:
    source = _choice(env, "TALENT_SENSOR_SOURCE", "list", ("list", "sqs"))
    if source == "sqs" and not _raw(env, "TALENT_SQS_QUEUE_URL"):
        raise SettingsError("TALENT_SENSOR_SOURCE=sqs needs TALENT_SQS_QUEUE_URL (the queue's URL)")
    return source


def _prices(env: Mapping[str, str]) -> dict[str, float]:
    prices = dict(DEFAULT_GPU_PRICES_PER_HOUR)
    raw = _raw(env, "TALENT_MODAL_GPU_PRICES")
    if raw is None:
        return prices
    try:
        override = json.loads(raw)
        prices.update({str(k): float(v) for k, v in override.items()})
    except (ValueError, TypeError, AttributeError):
        raise SettingsError(
            'TALENT_MODAL_GPU_PRICES must be a JSON object like {"T4": 0.59}'
        ) from None
    return prices
