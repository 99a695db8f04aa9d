"""The S3 sensor against a real S3 server and a real Dagster instance."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context

from talent_assets.core.objects import ObjectInfo
from talent_assets.core.sensor_plan import SensorCursor, plan_tick, run_key_for
from talent_assets.core.video_id import video_id_for
from talent_assets.defs.resources import build_resources
from talent_assets.defs.sensors import build_s3_video_sensor
from talent_assets.infra.settings import Settings
from tests.support.pipeline import store_for


def _tick(instance: DagsterInstance, settings: Settings, cursor: str | None):
    """Evaluate the sensor once, apply its partition requests like the daemon would."""
    with build_sensor_context(
        instance=instance, cursor=cursor, resources=build_resources(settings)
    ) as context:
        result = build_s3_video_sensor(settings)(context)
    if isinstance(result, SensorResult):
        for request in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result


@pytest.fixture
def sensor_env(talent_env: Settings, monkeypatch: pytest.MonkeyPatch, request) -> Settings:
    prefix = f"sensor-{request.node.name[:20]}-{time.time_ns()}/"
    monkeypatch.setenv("TALENT_VIDEO_PREFIX", prefix)
    return Settings.from_env()


def test_thousand_objects_partitioned_exactly_once_with_cap(
    sensor_env: Settings, dagster_instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALENT_SENSOR_MAX_PER_TICK", "100")
    sensor_env = Settings.from_env()
    assert sensor_env.sensor_max_per_tick == 100
    store = store_for(sensor_env)
    keys = [f"{sensor_env.video_prefix}batch/clip-{i:04d}.mp4" for i in range(1000)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.put_bytes(k, k.encode(), "video/mp4"), keys))
    store.put_bytes(f"{sensor_env.video_prefix}notes.txt", b"not a video", "text/plain")

    cursor = None
    requested: list[str] = []
    run_keys: set[str] = set()
    slowest = 0.0
    for _ in range(10):
        started = time.perf_counter()
        result = _tick(dagster_instance, sensor_env, cursor)
        slowest = max(slowest, time.perf_counter() - started)
        assert isinstance(result, SensorResult)
        assert len(result.run_requests) == 100  # the cap
        requested += [r.tags["talent/key"] for r in result.run_requests]
        run_keys |= {r.run_key for r in result.run_requests}
        cursor = result.cursor
    assert sorted(requested) == sorted(keys)  # every object exactly once
    assert len(run_keys) == 1000
    partitions = set(dagster_instance.get_dynamic_partitions("videos"))
    assert {video_id_for(sensor_env.bucket, k, sensor_env.video_prefix) for k in keys} <= (
        partitions
    )
    assert len(partitions) == 1000
    assert slowest < 10.0, f"a tick over 1,000 objects took {slowest:.1f} s"

    quiet = _tick(dagster_instance, sensor_env, cursor)
    assert isinstance(quiet, SkipReason)
    assert "no new or changed videos among 1000" in quiet.skip_message


def test_reupload_with_new_content_is_requested_again(
    sensor_env: Settings, dagster_instance: DagsterInstance
) -> None:
    store = store_for(sensor_env)
    key = f"{sensor_env.video_prefix}Interview.MOV"
    store.put_bytes(key, b"first version", "video/quicktime")
    first = _tick(dagster_instance, sensor_env, None)
    assert [r.tags["talent/key"] for r in first.run_requests] == [key]
    assert first.dynamic_partitions_requests[0].partition_keys == [
        first.run_requests[0].partition_key
    ]

    store.put_bytes(key, b"first version", "video/quicktime")  # same content: same ETag
    assert isinstance(_tick(dagster_instance, sensor_env, first.cursor), SkipReason)

    store.put_bytes(key, b"second version", "video/quicktime")
    second = _tick(dagster_instance, sensor_env, first.cursor)
    assert isinstance(second, SensorResult)
    assert len(second.run_requests) == 1
    again = second.run_requests[0]
    assert again.partition_key == first.run_requests[0].partition_key
    assert again.run_key != first.run_requests[0].run_key
    assert not second.dynamic_partitions_requests  # the partition already exists


def test_skip_reasons(sensor_env: Settings, dagster_instance: DagsterInstance) -> None:
    empty = _tick(dagster_instance, sensor_env, None)
    assert isinstance(empty, SkipReason)
    assert "no video files under" in empty.skip_message
    store_for(sensor_env).put_bytes(f"{sensor_env.video_prefix}readme.txt", b"x", "text/plain")
    still = _tick(dagster_instance, sensor_env, None)
    assert isinstance(still, SkipReason) and "1 other objects" in still.skip_message


def _obj(key: str, etag: str, second: int) -> ObjectInfo:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    return ObjectInfo(key=key, size=1, etag=etag, last_modified=base + timedelta(seconds=second))


def test_plan_survives_objects_sharing_one_second() -> None:
    same_second = [_obj(f"v/{i}.mp4", f"e{i}", 5) for i in range(7)]
    plan = plan_tick(same_second, SensorCursor(), max_per_tick=3)
    assert [o.key for o in plan.requested] == ["v/0.mp4", "v/1.mp4", "v/2.mp4"]
    assert plan.waiting == 4
    cursor = SensorCursor.parse(plan.cursor.dump())  # survives serialisation
    plan2 = plan_tick(same_second, cursor, max_per_tick=3)
    assert [o.key for o in plan2.requested] == ["v/3.mp4", "v/4.mp4", "v/5.mp4"]
    plan3 = plan_tick([*same_second, _obj("v/late.mp4", "x", 4)], plan2.cursor, 3)
    # An object that shows up late with an older LastModified (multipart) is still caught.
    assert [o.key for o in plan3.requested] == ["v/late.mp4", "v/6.mp4"]
    assert plan_tick(same_second, plan3.cursor, 3).requested == []


def test_plan_ignores_non_videos_and_old_objects() -> None:
    objects = [_obj("v/a.txt", "1", 1), _obj("v/b.MKV", "2", 1), _obj("v/c.webm", "3", 2)]
    plan = plan_tick(objects, SensorCursor(), 10)
    assert [o.key for o in plan.requested] == ["v/b.MKV", "v/c.webm"]
    far_later = SensorCursor(high_water=objects[0].last_modified + timedelta(days=1))
    assert plan_tick([_obj("v/old.mp4", "9", 1)], far_later, 10).requested == []


def test_run_key_is_per_content_version() -> None:
    assert run_key_for("vid-1", "abc") != run_key_for("vid-1", "abd")


def test_the_lookback_is_fifteen_minutes() -> None:
    """README: keys seen in a 15-minute look-back behind the high-water mark: an object that
    appears late with an older LastModified is caught within 15 minutes, not beyond; the
    cursor forgets keys older than that."""
    high = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    cursor = SensorCursor(high_water=high)

    def late(minutes: float, key: str) -> ObjectInfo:
        return ObjectInfo(key, 1, key, high - timedelta(minutes=minutes))

    assert [o.key for o in plan_tick([late(14.9, "v/in.mp4")], cursor, 10).requested] == [
        "v/in.mp4"
    ]
    assert plan_tick([late(15.1, "v/out.mp4")], cursor, 10).requested == []
    later = plan_tick([ObjectInfo("v/new.mp4", 1, "n", high + timedelta(minutes=16))], cursor, 10)
    kept = plan_tick([late(1, "v/recent.mp4")], cursor, 10).cursor.recent
    assert "v/recent.mp4" in kept
    forgotten = plan_tick([], SensorCursor(later.cursor.high_water, kept), 10).cursor.recent
    assert "v/recent.mp4" not in forgotten
