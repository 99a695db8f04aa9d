"""Settings: every TALENT_* variable read once, with its documented default or a clear error."""

from __future__ import annotations

import pytest

from talent_assets.infra.settings import DEFAULT_GPU_PRICES_PER_HOUR, Settings, SettingsError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.bucket == "talent"
    assert settings.warehouse == "s3://talent/warehouse"
    assert settings.video_prefix == "videos/" and settings.output_prefix == "processed/"
    assert settings.detector == "local" and settings.model_pack == "bundled"
    assert settings.sample_fps == 2.0 and settings.static_block_s == 5.0
    assert settings.api_max_concurrent == 1 and settings.max_concurrent_videos == 1
    assert settings.sensor_interval_s == 30 and settings.sensor_max_per_tick == 100
    assert settings.sensor_running is False
    assert dict(settings.modal_gpu_prices) == DEFAULT_GPU_PRICES_PER_HOUR


def test_values_are_read_and_normalised() -> None:
    settings = Settings.from_env(
        {
            "TALENT_BUCKET": "media",
            "TALENT_VIDEO_PREFIX": "/in",
            "TALENT_OUTPUT_PREFIX": "out/",
            "TALENT_SAMPLE_FPS": "4",
            "TALENT_SENSOR_DEFAULT_STATUS": "Running",
            "TALENT_MODAL_GPU_PRICES": '{"T4": 1.5}',
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    assert settings.warehouse == "s3://media/warehouse"  # follows the bucket
    assert settings.video_prefix == "in/" and settings.output_prefix == "out/"
    assert settings.sample_fps == 4.0 and settings.sensor_running
    assert settings.modal_gpu_prices["T4"] == 1.5 and settings.modal_gpu_prices["L4"] == 0.80
    assert settings.region == "eu-west-1"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TALENT_API_MAX_CONCURRENT", "0", "TALENT_API_MAX_CONCURRENT must be a positive integer"),
        ("TALENT_API_MAX_CONCURRENT", "two", "must be a positive integer, got 'two'"),
        ("TALENT_SAMPLE_FPS", "0", "TALENT_SAMPLE_FPS must be positive"),
        ("TALENT_SAMPLE_FPS", "fast", "TALENT_SAMPLE_FPS must be a number"),
        ("TALENT_WORKERS", "-1", "TALENT_WORKERS must be an integer >= 0"),
        ("TALENT_DETECTOR", "gpu", "TALENT_DETECTOR must be one of local, modal"),
        ("TALENT_MODAL_GPU_PRICES", "[1]", "TALENT_MODAL_GPU_PRICES must be a JSON object"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})


def test_replace_changes_one_value() -> None:
    settings = Settings().replace(bucket="other")
    assert settings.bucket == "other" and settings.sample_fps == 2.0
