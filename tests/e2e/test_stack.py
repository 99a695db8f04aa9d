"""`talent up`'s stack: videos uploaded to S3 process themselves through the sensor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from talent_assets.core.video_id import video_id_for
from talent_assets.defs.tags import REGISTRY_TAG, SOURCE_KEY_TAG
from talent_assets.devstack.stack import StackInfo, wait_for_runs
from talent_assets.infra.s3 import bucket_store
from talent_assets.infra.settings import Settings
from tests.support import media
from tests.support.pipeline import manifest_of

pytestmark = pytest.mark.slow


def _runs_for(instance: DagsterInstance, key: str) -> list:
    return list(instance.get_runs(filters=RunsFilter(tags={SOURCE_KEY_TAG: key})))


def test_uploads_become_partitions_and_runs_without_a_manual_step(
    local_stack, three_person, no_face_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_stack.environment().items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    info = StackInfo.load(local_stack.root)
    assert info.endpoint_url == local_stack.s3.endpoint_url

    files = [three_person[0], no_face_clip, media.pyfeat_media("single_face.mp4")]
    proc = subprocess.run(
        [sys.executable, "-m", "talent_assets.apps.cli", "upload", "--root", str(local_stack.root)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    assert proc.returncode == 0, proc.stderr
    keys = [f"videos/{f.name}" for f in files]
    assert proc.stdout.splitlines() == [f"uploaded s3://talent/{k}" for k in keys]

    runs = wait_for_runs(local_stack.dagster_home, keys, timeout_s=900)
    assert {k: r.status for k, r in runs.items()} == dict.fromkeys(keys, DagsterRunStatus.SUCCESS)
    ids = {k: video_id_for(settings.bucket, k, settings.video_prefix) for k in keys}
    with DagsterInstance.from_config(str(local_stack.dagster_home)) as instance:
        assert set(ids.values()) <= set(instance.get_dynamic_partitions("videos"))
        for key, run in runs.items():
            assert run.tags["dagster/partition"] == ids[key]
            assert run.tags["talent/pipeline"] == "process_video"

        # The registry follows by itself (declarative automation): each video's people get
        # a talent id in the manifest.
        ended = [instance.get_run_record_by_id(r.run_id).end_time for r in runs.values()]
        _wait_for_registry_after(instance, max(ended))
        for key in keys:
            manifest = manifest_of(settings, key)
            assert all(r["talent_id"] for r in manifest["results"]), manifest
        assert sum(len(manifest_of(settings, k)["results"]) for k in keys) == 4

        # Later ticks add nothing: still one run per video.
        time.sleep(3 * local_stack.sensor_interval_s + 2)
        assert [len(_runs_for(instance, k)) for k in keys] == [1, 1, 1]

        # New content under one key is processed again; the others are left alone.
        changed = keys[2]
        bucket_store(settings).put_bytes(
            changed, media.pyfeat_media("face_noface.mov").read_bytes(), "video/mp4"
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            again = _runs_for(instance, changed)
            if len(again) == 2 and again[0].is_finished:
                break
            time.sleep(1)
        again = _runs_for(instance, changed)
        assert len(again) == 2 and again[0].status == DagsterRunStatus.SUCCESS
        assert [len(_runs_for(instance, k)) for k in keys[:2]] == [1, 1]


def _wait_for_registry_after(instance: DagsterInstance, after: float) -> None:
    """Wait for a successful ``talent_registry`` run that started after ``after``."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        records = instance.get_run_records(filters=RunsFilter(tags=REGISTRY_TAG))
        if any(
            r.dagster_run.status == DagsterRunStatus.SUCCESS
            and r.start_time is not None
            and r.start_time >= after
            for r in records
        ):
            return
        time.sleep(1)
    raise AssertionError("no talent_registry run after the videos")


def test_talent_up_prints_addresses_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    root = tmp_path / ".talent"
    proc = subprocess.Popen(
        [sys.executable, "-m", "talent_assets.apps.cli", "up", "--root", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TALENT_"))},
    )
    try:
        deadline = time.monotonic() + 240
        while not (root / "stack.json").is_file():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "talent up did not come up"
            time.sleep(0.5)
        info = StackInfo.load(root)
        assert oct((root / "credentials.json").stat().st_mode & 0o777) == "0o600"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert f"Dagster UI:  {info.ui_url}" in out
    assert f"S3 endpoint: {info.endpoint_url}" in out
    assert "talent upload" in out and "Stopping" in out
    assert not (root / "stack.json").exists()
    # Nothing it started is left: no server still serves the S3 data folder.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(root)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == []
