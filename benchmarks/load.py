"""``python -m benchmarks.load``: many short videos at once through production Dagster's
topology (separate code server, webserver, daemon; PostgreSQL), optionally with crashes.

What: N tiny videos (built here: 2 s, 320x240, one real face, cached in the media cache) are
uploaded at once to the bucket of a :class:`~talent_assets.devstack.services.ProductionServices`
with the sensor on and ``--max-concurrent`` videos allowed at once. With ``--kills`` the
daemon is SIGKILLed and restarted once some videos are done, then the code server (its
process group, in-flight runs included) and restarted on the same port. It waits until every
video has a successful run and reports: videos per minute (first upload to last success),
the largest queue wait (a run's enqueue to its start), the most runs in progress at once
(from the run records), runs per video, and which runs the crash failed and retried.

Why: the figures of the load case in ``tests/e2e/test_load_and_crash.py``, which runs the
same :func:`run_scenario` but asserts instead of timing.

How: from the repository root, ``python -m benchmarks.load [--videos 30] [--max-concurrent 2]
[--kills] [--out artifacts/load.json]``; prints markdown, writes JSON and a .md beside it.
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from benchmarks.evaluate import write_report
from talent_assets.defs.tags import PARTITION_TAG, PIPELINE_TAG, SOURCE_KEY_TAG
from talent_assets.defs.webhook_sensor import SENSOR_NAME as WEBHOOK_SENSOR
from talent_assets.devstack.services import ProductionServices
from talent_assets.devstack.stack import RunMonitoring
from talent_assets.infra.settings import Settings
from tests.support import media
from tests.support.pipeline import store_for

REPO = Path(__file__).resolve().parents[1]
PARENT_RUN_TAG = "dagster/parent_run_id"
#: Lost runs (their worker died with the code server) are found by max_runtime. A tiny
#: video's run (RUN_START to its end) takes 6-9 s with two at once on two cores, 27 s at
#: worst seen on a two-core machine loaded by other test suites; 30 s fails a lost run
#: 10 s sooner than 40 did. The queue is looked at every second (Dagster's default: 5 s).
LOAD_MONITORING = RunMonitoring(start_timeout_s=30, cancel_timeout_s=30, max_runtime_s=30,
                                poll_interval_s=2, dequeue_interval_s=1)  # fmt: skip
#: The code server's pipeline settings: one detector process per run (a 4-frame video gains
#: nothing from a pool), 2 samples per second.
LOAD_ENV = {"TALENT_WORKERS": "1", "TALENT_SAMPLE_FPS": "2"}
#: Sensors stopped (through the webserver) before the daemon starts: the registry update
#: that follows every video run (a run of its own, which doubles the runs competing for the
#: cores) and the webhook sensor (no URL here: it only ticks). Neither is what the load case
#: is about; ``--with-registry`` keeps the registry sensor running.
REGISTRY_SENSOR = "talent_registry_sensor"
LOAD_STOPPED_SENSORS = (REGISTRY_SENSOR, WEBHOOK_SENSOR)


def tiny_video(folder: Path) -> Path:
    """A 2-s 320x240 10-fps H.264 clip with one real face: the cheapest real video."""
    path = folder / "tiny_face.mp4"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        segment = media.Segment(2.0, [media.Appearance(0, pos=(0.5, 0.45), face_px=90)])
        media.build_video(path, [segment], size=(320, 240), fps=10)
    return path


@dataclass
class LoadResult:
    """What happened: every process_video run's record, the keys, and the crash events."""

    keys: list[str]
    records: list[Any] = field(default_factory=list)
    uploaded_at: float = 0.0
    finished_at: float = 0.0
    crashed_runs: list[str] = field(default_factory=list)  # in flight when the code server died
    kills: list[str] = field(default_factory=list)


def _video_records(instance: DagsterInstance) -> list[Any]:
    return list(instance.get_run_records(filters=RunsFilter(tags=PIPELINE_TAG)))


def _wait(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(1.0)
    return value


def _successes(instance: DagsterInstance) -> list[Any]:
    return [r for r in _video_records(instance) if r.dagster_run.status == DagsterRunStatus.SUCCESS]


def _started(instance: DagsterInstance) -> list[str]:
    return [
        r.dagster_run.run_id
        for r in _video_records(instance)
        if r.dagster_run.status == DagsterRunStatus.STARTED
    ]


def _crash(services: ProductionServices, instance: DagsterInstance, result: LoadResult) -> None:
    """Kill the daemon mid-way and restart it, then the code server with runs in flight."""
    _wait(lambda: len(_successes(instance)) >= 4 and _started(instance), 600, "4 videos done")
    services.kill("daemon")
    result.kills.append("daemon")
    time.sleep(1)
    services.restart("daemon")
    _wait(lambda: len(_successes(instance)) >= 10, 600, "10 videos done")
    in_flight = _wait(lambda: _started(instance), 300, "a run in flight")
    services.kill("code")  # its process group: the run workers die with it
    result.kills.append("code")
    result.crashed_runs = [
        run_id
        for run_id in in_flight
        if instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
    ]
    services.restart("code")


def run_scenario(
    services: ProductionServices, video: Path, count: int, kills: bool, timeout_s: float = 900
) -> LoadResult:
    """Upload ``count`` copies of ``video`` at once; crash and restart services if ``kills``;
    return once every copy has a successful run and no video run is in progress."""
    settings = Settings.from_env()
    result = LoadResult(keys=[f"videos/load/clip-{i:03d}.mp4" for i in range(count)])
    with DagsterInstance.from_config(str(services.dagster_home)) as instance:
        store, data = store_for(settings), video.read_bytes()  # one S3 client for all
        result.uploaded_at = time.time()
        for key in result.keys:
            store.put_bytes(key, data, "video/mp4")
        if kills:
            _crash(services, instance, result)

        def done() -> bool:
            records = _video_records(instance)
            succeeded = {r.dagster_run.tags[SOURCE_KEY_TAG] for r in records if
                         r.dagster_run.status == DagsterRunStatus.SUCCESS}  # fmt: skip
            return succeeded >= set(result.keys) and all(r.dagster_run.is_finished for r in records)

        _wait(done, timeout_s, f"{count} successful videos")
        result.finished_at = time.time()
        result.records = _video_records(instance)
    return result


def most_at_once(records: list[Any]) -> int:
    """The most runs between their start and end at one instant (from the run records)."""
    events = sorted(
        itertools.chain.from_iterable(
            ((r.start_time, 1), (r.end_time or float("inf"), -1))
            for r in records
            if r.start_time is not None
        ),
        key=lambda e: (e[0], e[1]),  # an end before a start at the same instant
    )
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def queue_wait(record: Any) -> float:
    """Seconds from a run's creation (the sensor enqueues it at once) to its start."""
    created = record.create_timestamp
    if created.tzinfo is None:  # run storage keeps UTC without a zone
        created = created.replace(tzinfo=UTC)
    return record.start_time - created.timestamp()


def summarise(result: LoadResult) -> dict[str, Any]:
    """The report's figures."""
    wins = [r for r in result.records if r.dagster_run.status == DagsterRunStatus.SUCCESS]
    waits = [queue_wait(r) for r in result.records if r.start_time is not None]
    minutes = (result.finished_at - result.uploaded_at) / 60
    return {
        "videos": len(result.keys),
        "wall_s": round(result.finished_at - result.uploaded_at, 1),
        "videos_per_minute": round(len(wins) / minutes, 2),
        "largest_queue_wait_s": round(max(waits), 1),
        "most_runs_at_once": most_at_once(result.records),
        "runs": len(result.records),
        "successful_runs": len(wins),
        "partitions_with_success": len({r.dagster_run.tags[PARTITION_TAG] for r in wins}),
        "kills": result.kills,
        "crashed_runs": result.crashed_runs,
        "retries": [
            r.dagster_run.run_id for r in result.records if PARENT_RUN_TAG in r.dagster_run.tags
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=30)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--kills", action="store_true", help="kill daemon and code server")
    parser.add_argument(
        "--with-registry",
        action="store_true",
        help="keep the registry update after every video (stopped by default)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "load.json")
    args = parser.parse_args(argv)
    video = tiny_video(Settings.from_env().media_cache_path() / "load")
    with tempfile.TemporaryDirectory(prefix="talent-load-") as tmp:
        services = ProductionServices(
            Path(tmp),
            max_concurrent_videos=args.max_concurrent,
            credentials=(f"load{secrets.token_hex(4)}", secrets.token_urlsafe(24)),
            monitoring=LOAD_MONITORING,
            extra_env=LOAD_ENV,
            stopped_sensors=tuple(
                s for s in LOAD_STOPPED_SENSORS if not (args.with_registry and s == REGISTRY_SENSOR)
            ),
        )
        with services:
            os.environ.update(services.environment())
            report = summarise(run_scenario(services, video, args.videos, args.kills))
        services.postgres.delete_data()
    report["max_concurrent_videos"] = args.max_concurrent
    report["registry_sensor"] = "running" if args.with_registry else "stopped"
    rows = "\n".join(f"| {k} | {v} |" for k, v in report.items())
    write_report(report, f"# Load: {args.videos} videos at once\n\n| figure | value |\n|---|---|\n"
                 + rows, args.out)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
