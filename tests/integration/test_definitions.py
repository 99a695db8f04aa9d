"""The code location loads, validates, and models the four assets as one lineage."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DefaultSensorStatus, DynamicPartitionsDefinition

from talent_assets.definitions import build_definitions
from talent_assets.definitions import defs as load_defs
from talent_assets.infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ["raw_video", "face_detections", "identity_clusters", "selected_frames"]
defs = load_defs()  # the lazy entry point Dagster loads, called as Dagster would


def test_four_assets_in_one_partitioned_lineage() -> None:
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {*ASSETS, "talent_registry"}
    for upstream, downstream in itertools.pairwise(ASSETS):
        parents = graph.get(AssetKey(downstream)).parent_keys
        assert parents == {AssetKey(upstream)}
    for name in ASSETS:
        partitions = graph.get(AssetKey(name)).partitions_def
        assert isinstance(partitions, DynamicPartitionsDefinition)
        assert partitions.name == "videos"
    job = defs.resolve_job_def("process_video")
    assert job.partitions_def is not None
    # The registry follows across all partitions: not partitioned, below selected_frames,
    # updated by its own job after every successful video run.
    registry = graph.get(AssetKey("talent_registry"))
    assert registry.partitions_def is None
    assert registry.parent_keys == {AssetKey("selected_frames")}
    assert registry.group_name == "talent" and registry.description
    update = defs.resolve_job_def("update_talent_registry")
    assert [n.name for n in update.nodes] == ["talent_registry"]
    sensor = defs.resolve_sensor_def("talent_registry_sensor")
    assert sensor.job_name == "update_talent_registry"


def test_assets_carry_descriptions_groups_and_retry_policies() -> None:
    graph = defs.resolve_asset_graph()
    for name in ASSETS:
        node = graph.get(AssetKey(name))
        assert node.description and node.group_name == "talent"
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert specs["raw_video"].kinds >= {"s3", "parquet"}
    assert specs["face_detections"].kinds >= {"insightface", "modal"}


def test_dagster_definitions_validate(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_sensor_follows_the_settings_it_was_built_with() -> None:
    default = build_definitions(Settings()).resolve_sensor_def("s3_video_sensor")
    assert default.minimum_interval_seconds == 30
    assert default.default_status == DefaultSensorStatus.STOPPED
    tuned = build_definitions(
        Settings(sensor_interval_s=7, sensor_running=True)
    ).resolve_sensor_def("s3_video_sensor")
    assert tuned.minimum_interval_seconds == 7
    assert tuned.default_status == DefaultSensorStatus.RUNNING
