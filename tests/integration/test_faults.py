"""Fault injection with real parts: an S3 outage, bad input, a killed chunk worker.

README/design claims:

- "failed steps [are retried] by the assets' retry policies, and bad input not at all";
  "S3 clients use botocore standard retries (5 attempts)"; "Asset retry policies:
  ``raw_video`` and ``selected_frames`` 2 retries from 2 s, ``face_detections`` 2 from 5 s";
- "Bad input ... fails the run with a one-line reason"; "It is never retried";
- ``modal_gpu/fanout.py``: "A chunk that fails for a reason other than bad input is retried
  once"; design: "Local chunks are retried once".

The outage is real: the SeaweedFS server the run talks to is stopped while the run is in
``raw_video`` and started again (same data folder, same ports) once Dagster has scheduled a
retry. The killed worker is real too: a process of the local detector's pool, SIGKILLed by
pid while it analyses its chunk.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance

from modal_gpu.chunks import plan_chunks
from modal_gpu.fanout import detect_in_chunks
from talent_assets.apps.runner import RunOutcome, process_partition
from talent_assets.core.video_id import video_id_for
from talent_assets.defs.resources import build_resources
from talent_assets.devstack import local_s3
from talent_assets.devstack.local_s3 import LocalS3Server
from talent_assets.infra.settings import Settings
from tests.support import media
from tests.support.pipeline import (
    ASSET_CHECKS,
    TABLES,
    assert_same_face_rows,
    check_evaluations,
    latest_metadata,
    manifest_of,
    output_keys,
    point_pipeline_at,
    start_s3_server,
    upload,
    warehouse,
    warehouse_keys,
)

OUTAGE_BUCKET = "talent-outage"


def _events(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> list:
    return [e.dagster_event for e in instance.all_logs(run_id, of_type=kind)]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _run(settings: Settings, instance: DagsterInstance, key: str, run_id: str) -> RunOutcome:
    video_id = video_id_for(settings.bucket, key, settings.video_prefix)
    return process_partition(
        video_id, key, resources=build_resources(settings), instance=instance, run_id=run_id
    )


class SideThread(threading.Thread):
    """Runs ``target`` beside the test; ``finish()`` joins it and re-raises its error."""

    def __init__(self, target: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as err:
            self.error = err

    def finish(self, timeout: float = 120.0) -> None:
        self.join(timeout)
        assert not self.is_alive(), "the side thread did not finish"
        if self.error is not None:
            raise self.error


# --- a transient S3 outage -----------------------------------------------------------------------


@pytest.fixture
def outage_server(tmp_path: Path) -> Iterator[LocalS3Server]:
    """A SeaweedFS server of its own: this test stops and restarts it."""
    server = start_s3_server(tmp_path / "s3", OUTAGE_BUCKET, "outage")
    yield server
    server.stop()


@pytest.fixture
def outage_env(
    outage_server: LocalS3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Settings:
    return point_pipeline_at(outage_server, OUTAGE_BUCKET, monkeypatch, tmp_path / "cache")


def _pin_ports(server: LocalS3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Make the server's next start reuse its current ports (the run's clients keep the
    endpoint they were built with). ``LocalS3Server`` picks fresh ports on every start and
    has no option to keep them, so its two port pickers are pinned to the current ones."""
    ports = server.ports
    order = ["s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc"]
    order += ["filer", "filer_grpc"]
    monkeypatch.setattr(local_s3, "_pick_free_ports", lambda count: [ports[n] for n in order])
    monkeypatch.setattr(local_s3, "_pick_port_pair", lambda *_, **__: ports["admin"])
    return ports


@pytest.mark.slow
def test_s3_outage_mid_run_is_retried_and_the_run_completes(
    outage_env: Settings,
    outage_server: LocalS3Server,
    dagster_instance: DagsterInstance,
    three_person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, _ = three_person
    key = "videos/outage/three.mp4"
    upload(outage_env, path, key)
    ports = _pin_ports(outage_server, monkeypatch)
    run_id = str(uuid.uuid4())
    log: dict[str, float] = {}

    def outage() -> None:
        deadline = time.monotonic() + 120
        while not _events(dagster_instance, run_id, DagsterEventType.STEP_START):
            assert time.monotonic() < deadline, "the run never started a step"
            time.sleep(0.02)
        outage_server.stop()  # in raw_video: its S3 calls now meet a closed port
        log["down"] = time.monotonic()
        assert not _port_open(ports["s3"])
        while not _events(dagster_instance, run_id, DagsterEventType.STEP_UP_FOR_RETRY):
            assert time.monotonic() < deadline, "no retry was scheduled during the outage"
            time.sleep(0.1)
        log["retry_seen"] = time.monotonic()
        outage_server.start()  # same data, same ports
        log["up"] = time.monotonic()

    side = SideThread(outage)
    side.start()
    try:
        outcome = _run(outage_env, dagster_instance, key, run_id)
    finally:
        side.finish()
        outage_server.start()  # a no-op unless the side thread failed before restarting it
    print(f"outage {log['up'] - log['down']:.1f} s")
    assert outage_server.ports == ports
    assert outcome.success, outcome.message

    # Dagster retried the step the outage broke (botocore's own retries ran out first).
    retries = _events(dagster_instance, run_id, DagsterEventType.STEP_UP_FOR_RETRY)
    assert retries
    retried = {e.step_key for e in retries}
    for event in retries:  # e.g. raw_video: botocore EndpointConnectionError
        cause = event.event_specific_data.error.cause
        print(event.step_key, cause.message.strip() if cause else event.message)
    assert retried <= {"raw_video", "face_detections"}, retried
    restarts = _events(dagster_instance, run_id, DagsterEventType.STEP_RESTARTED)
    assert {e.step_key for e in restarts} == retried
    assert not _events(dagster_instance, run_id, DagsterEventType.STEP_FAILURE)
    assert log["retry_seen"] - log["down"] > 0

    # Complete outputs, as from an undisturbed run.
    video_id = video_id_for(outage_env.bucket, key, outage_env.video_prefix)
    manifest = manifest_of(outage_env, key)
    assert manifest is not None and manifest["people_found"] == 3
    assert warehouse_keys(outage_env, video_id) == sorted(
        f"warehouse/{table}/video_id={video_id}/part-0.parquet" for table in TABLES
    )
    base = "processed/outage/three/"
    assert output_keys(outage_env, key) == sorted(
        [base + "contact_sheet.jpg", base + "manifest.json"]
        + [base + f"person_{i}{s}.jpg" for i in range(3) for s in ("", "_face")]
        + [base + f"frame_{i:02d}.jpg" for i in range(10)]  # TALENT_REPRESENTATIVE_FRAMES
        + [base + ".staging/representative_frames.parquet"]
    )
    evaluations = check_evaluations(dagster_instance, run_id)
    assert set(evaluations) == ASSET_CHECKS and all(e.passed for e in evaluations.values())


# --- bad input: one failure, no retry ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("text", "invalid_video", "not a video"),
        ("truncated_faststart", "invalid_video", "truncated video"),
        (None, "missing_object", "missing object"),
    ],
)
def test_bad_input_fails_once_without_retries(
    name: str | None,
    kind: str,
    reason: str,
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    bad_inputs: dict[str, Path],
) -> None:
    key = f"videos/faults/bad-{name or 'missing'}.mp4"
    if name is not None:
        upload(talent_env, bad_inputs[name], key)
    run_id = str(uuid.uuid4())
    started = time.monotonic()
    outcome = _run(talent_env, dagster_instance, key, run_id)
    elapsed = time.monotonic() - started

    assert not outcome.success
    assert outcome.error_kind == kind
    assert reason in outcome.message and "\n" not in outcome.message
    # raw_video ran once and failed once; nothing was retried or ran after it.
    starts = _events(dagster_instance, run_id, DagsterEventType.STEP_START)
    assert [e.step_key for e in starts] == ["raw_video"]
    failures = _events(dagster_instance, run_id, DagsterEventType.STEP_FAILURE)
    assert [e.step_key for e in failures] == ["raw_video"]
    assert not _events(dagster_instance, run_id, DagsterEventType.STEP_UP_FOR_RETRY)
    assert not _events(dagster_instance, run_id, DagsterEventType.STEP_RESTARTED)
    assert elapsed < 2.0 + 10.0  # no retry delay (2 s, then 4 s) was waited
    assert dagster_instance.get_run_by_id(run_id).is_failure


# --- a chunk worker killed mid-chunk -------------------------------------------------------------

KILL_CLIP_S = 40.0
KILL_FPS = 2.0
KILL_CHUNK_S = 20.0  # two chunks, one per worker


@pytest.fixture(scope="module")
def kill_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 s, 640x360, three people taking turns and moving (no static shots): each chunk
    keeps its worker busy for seconds."""
    segments = [
        media.Segment(
            5.0, [media.Appearance(i % 3, pos=(0.35, 0.45), end_pos=(0.65, 0.45), face_px=110)]
        )
        for i in range(8)
    ]
    path = tmp_path_factory.mktemp("kill") / "forty.mp4"
    media.build_video(path, segments, size=(640, 360), fps=10, background="plain")
    return path


def _detect_kill_clip(kill_clip: Path):
    """The two-worker pool run of the clip's two chunks (the run a killer disturbs)."""
    return detect_in_chunks(
        kill_clip,
        video_id="placeholder",
        pack="bundled",
        sample_fps=KILL_FPS,
        chunks=plan_chunks(KILL_CLIP_S, KILL_FPS, KILL_CHUNK_S),
        workers=2,
        static_block_s=0,
    )


@pytest.fixture(scope="module")
def unkilled_rows(kill_clip: Path):
    """The rows of an undisturbed two-worker run of the same chunks."""
    table, stats = _detect_kill_clip(kill_clip)
    assert stats.frames_analyzed == 80 and table.num_rows > 0
    return table


class WorkerKiller:
    """SIGKILLs one process of the detector's pool (a multiprocessing child of this process)
    ``after_s`` seconds after the pool has started, while its chunk is in progress."""

    def __init__(self, after_s: float = 1.5) -> None:
        self.after_s = after_s
        self.baseline = {p.pid for p in multiprocessing.active_children()}
        self.killed: list[int] = []
        self.thread = SideThread(self._kill)

    def _workers(self) -> list[multiprocessing.Process]:
        return [p for p in multiprocessing.active_children() if p.pid not in self.baseline]

    def _kill(self) -> None:
        deadline = time.monotonic() + 120
        while len(self._workers()) < 2:
            assert time.monotonic() < deadline, "the pool never started two workers"
            time.sleep(0.02)
        time.sleep(self.after_s)  # the workers are loading the engine or analysing
        victim = self._workers()[0]
        os.kill(victim.pid, signal.SIGKILL)
        self.killed.append(victim.pid)

    def __enter__(self) -> WorkerKiller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.finish()


def _with_video_id(table, video_id: str):
    import pyarrow as pa

    column = table.schema.get_field_index("video_id")
    return table.set_column(column, "video_id", pa.array([video_id] * table.num_rows))


@pytest.mark.slow
def test_killed_chunk_worker_is_retried_and_the_rows_are_unchanged(
    kill_clip: Path, unkilled_rows
) -> None:
    with WorkerKiller() as killer:
        table, stats = _detect_kill_clip(kill_clip)
    assert killer.killed
    assert stats.extra["chunks"] == 2
    assert_same_face_rows(table, unkilled_rows)


@pytest.mark.slow
def test_killed_chunk_worker_in_a_run_is_recovered_inside_the_step(
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    kill_clip: Path,
    unkilled_rows,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run survives a killed worker without even a step retry: the chunk-level retry runs
    the unfinished chunks in a fresh pool, and the rows are those of an unkilled run."""
    for name, value in {
        "TALENT_WORKERS": "2",
        "TALENT_CHUNK_S": str(KILL_CHUNK_S),
        "TALENT_STATIC_BLOCK_S": "0",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    key = "videos/faults/killed-worker.mp4"
    upload(settings, kill_clip, key)
    video_id = video_id_for(settings.bucket, key, settings.video_prefix)
    run_id = str(uuid.uuid4())
    with WorkerKiller() as killer:
        outcome = _run(settings, dagster_instance, key, run_id)
    assert killer.killed
    assert outcome.success, outcome.message

    retries = _events(dagster_instance, run_id, DagsterEventType.STEP_UP_FOR_RETRY)
    assert retries == []

    meta = latest_metadata(dagster_instance, "face_detections", video_id)
    assert (meta["chunks"], meta["frames_analyzed"]) == (2, 80)
    assert meta["worker_processes"] >= 2  # the killed pool's survivor, and the fresh pool's
    table = warehouse(settings).read("face_detections", video_id)
    assert_same_face_rows(table, _with_video_id(unkilled_rows, video_id))
    assert manifest_of(settings, key)["people_found"] == 3
