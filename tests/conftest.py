"""Shared fixtures: a real SeaweedFS S3 server, a real Dagster instance, real test media."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from talent_assets.devstack.local_s3 import LocalS3Server
from talent_assets.infra.settings import Settings
from tests.support import media
from tests.support.pipeline import point_pipeline_at, start_s3_server

TEST_BUCKET = "talent-test"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3Server]:
    """One real S3 server on loopback for the whole session."""
    server = start_s3_server(tmp_path_factory.mktemp("s3"), TEST_BUCKET, "test")
    yield server
    server.stop()


@pytest.fixture
def talent_env(
    s3_server: LocalS3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Settings:
    """Point the pipeline's environment at the test server; returns the settings."""
    return point_pipeline_at(s3_server, TEST_BUCKET, monkeypatch, tmp_path / "cache")


@pytest.fixture
def dagster_instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    """A real, persistent (sqlite) Dagster instance in a temporary DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance = DagsterInstance.local_temp(str(home), overrides={"telemetry": {"enabled": False}})
    yield instance
    instance.dispose()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def three_person(media_dir: Path) -> tuple[Path, media.VideoTruth]:
    """The scripted three-person clip and its ground truth."""
    return media.three_person_video(media_dir)


@pytest.fixture(scope="session")
def no_face_clip(media_dir: Path) -> Path:
    return media.no_face_video(media_dir)


@pytest.fixture(scope="session")
def bad_inputs(media_dir: Path) -> dict[str, Path]:
    """Files that are not usable videos, by name."""
    folder = media_dir / "bad"
    folder.mkdir()
    return {
        "empty": media.empty_file(folder),
        "text": media.text_as_mp4(folder),
        "truncated": media.truncated_mp4(folder),
        "truncated_faststart": media.truncated_faststart_mp4(folder),
    }


@pytest.fixture(scope="session")
def face_engine():
    """The bundled-pack engine, loaded once (the same one the local detector uses)."""
    from modal_gpu.fanout import cached_engine

    return cached_engine("bundled")


def pytest_configure(config: pytest.Config) -> None:
    # Test media is cached across runs; CI may point it elsewhere.
    os.environ.setdefault("TALENT_MEDIA_CACHE", str(Path.home() / ".cache" / "talent-test-media"))


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """``talent up``'s stack (SeaweedFS + dagster dev with the sensor on) in a temp folder.

    Yields the running :class:`talent_assets.devstack.stack.LocalStack`; its
    ``environment()`` is what clients (uploads, queries) need. Shared by the stack and browser
    tests: starting Dagster takes tens of seconds.
    """
    from talent_assets.devstack.stack import LocalStack

    stack = LocalStack(
        tmp_path_factory.mktemp("stack"),
        bucket="talent",
        sensor_interval_s=2,
        credentials=(f"stack{secrets.token_hex(4)}", secrets.token_urlsafe(24)),
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
