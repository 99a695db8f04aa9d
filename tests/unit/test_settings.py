"""Settings: every TALENT_* variable read once, with its documented default or a clear error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from talent_assets.infra.settings import Settings, SettingsError


def _documented_defaults() -> dict[str, str]:
    """``{variable: default}`` from the README's Configuration table, for the rows whose
    default is a value (in backticks), not a description ("unset", "system temp", ...)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    defaults = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`TALENT_"):
            continue
        names, values = re.findall(r"`([^`]+)`", cells[0]), re.findall(r"`([^`]+)`", cells[1])
        if values and len(values) == len(names):
            defaults.update(zip(names, values, strict=True))
    return defaults


def test_documented_defaults_are_the_defaults() -> None:
    """Setting each variable to the default the README documents changes nothing; setting it
    to something else changes the settings (so the variable is really read, and the
    documented value is the effective one, whatever the code's constants say)."""
    documented = _documented_defaults()
    documented.pop("TALENT_MODEL_ROOT")  # the worker's own variable, not a Settings field
    assert len(documented) >= 14, documented
    baseline = Settings.from_env({})
    # Kept unresolved until used: compare where the media go, not the field.
    media = documented.pop("TALENT_MEDIA_CACHE")
    assert Settings.from_env({"TALENT_MEDIA_CACHE": media}).media_cache_path() == (
        baseline.media_cache_path()
    )
    for name, value in documented.items():
        value = value.replace("$TALENT_BUCKET", documented["TALENT_BUCKET"])
        assert Settings.from_env({name: value}) == baseline, (name, value)
    for name, other in {
        "TALENT_BUCKET": "elsewhere",
        "TALENT_SAMPLE_FPS": "3",
        "TALENT_STATIC_BLOCK_S": "0",
        "TALENT_SENSOR_DEFAULT_STATUS": "running",
        "TALENT_API_MAX_CONCURRENT": "2",
        "TALENT_MAX_CONCURRENT_VIDEOS": "2",
        "TALENT_SENSOR_MAX_PER_TICK": "7",
        "TALENT_MEDIA_CACHE": "/elsewhere",
    }.items():
        assert Settings.from_env({name: other}) != baseline, name
    # "unset": no endpoint (AWS), no API key; "list prices": a price for the default GPU.
    assert baseline.endpoint_url is None and baseline.api_key is None
    assert baseline.modal_gpu_prices[documented["TALENT_MODAL_GPU"]] > 0


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
    assert settings.bucket == "other"
    assert settings == Settings(bucket="other")  # and nothing else changed
