"""The local stack's run queue and run retries, under the real daemon (``dagster dev``).

README: "The stack's run queue runs at most ``TALENT_MAX_CONCURRENT_VIDEOS`` (default 1) videos
at a time (a tag concurrency limit on ``talent/pipeline=process_video``) ...; crashed runs are
retried (``run_retries``), failed steps by the assets' retry policies, and bad input not at
all."

A crash is real: the run worker process of a sensor-launched run is SIGKILLed by pid. The code
server that launched it notices its child is gone and marks the run failed (no step failed),
and the daemon's run retries launch a new run that finishes the work.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from talent_assets.defs.tags import PIPELINE_TAG_KEY, SOURCE_KEY_TAG
from talent_assets.devstack.stack import wait_for_runs
from talent_assets.infra.settings import Settings
from tests.support.pipeline import manifest_of, upload

pytestmark = pytest.mark.slow

IN_PROGRESS = {DagsterRunStatus.STARTING, DagsterRunStatus.STARTED}
RETRY_NUMBER_TAG = "dagster/retry_number"
PARENT_RUN_TAG = "dagster/parent_run_id"
WILL_RETRY_TAG = "dagster/will_retry"


@pytest.fixture
def stack_env(local_stack, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in local_stack.environment().items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


@pytest.fixture
def stack_instance(local_stack):
    with DagsterInstance.from_config(str(local_stack.dagster_home)) as instance:
        yield instance


def _runs_of(instance: DagsterInstance, key: str) -> list:
    return list(instance.get_runs(filters=RunsFilter(tags={SOURCE_KEY_TAG: key})))


def _wait(predicate, timeout_s: float, what: str, interval_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval_s)


# --- TALENT_MAX_CONCURRENT_VIDEOS ----------------------------------------------------------------


def test_queue_runs_one_video_at_a_time_while_others_wait(
    local_stack, stack_env: Settings, stack_instance: DagsterInstance, no_face_clip: Path
) -> None:
    assert local_stack.max_concurrent_videos == 1  # the default
    keys = [f"videos/queue/clip-{i}.mp4" for i in range(3)]
    for key in keys:
        upload(stack_env, no_face_clip, key)

    # Sample every run of the pipeline until all three are done.
    most_in_progress, most_queued_behind = 0, 0
    deadline = time.monotonic() + 600
    while True:
        runs = list(
            stack_instance.get_runs(filters=RunsFilter(tags={PIPELINE_TAG_KEY: "process_video"}))
        )
        in_progress = [r for r in runs if r.status in IN_PROGRESS]
        mine = [r for r in runs if r.tags.get(SOURCE_KEY_TAG) in keys]
        queued = [r for r in mine if r.status == DagsterRunStatus.QUEUED]
        most_in_progress = max(most_in_progress, len(in_progress))
        if in_progress:
            most_queued_behind = max(most_queued_behind, len(queued))
        if len(mine) == 3 and all(r.is_finished for r in mine):
            break
        assert time.monotonic() < deadline, [(r.tags[SOURCE_KEY_TAG], r.status) for r in mine]
        time.sleep(0.1)

    assert [r.status for r in mine] == [DagsterRunStatus.SUCCESS] * 3
    assert most_in_progress == 1  # never two at once ...
    assert most_queued_behind >= 1  # ... although others were waiting in the queue
    # Their run records agree: no two ran at overlapping times.
    records = sorted(
        (stack_instance.get_run_record_by_id(r.run_id) for r in mine), key=lambda x: x.start_time
    )
    for earlier, later in itertools.pairwise(records):
        assert earlier.end_time <= later.start_time


# --- run_retries: a crashed run is retried, bad input is not -------------------------------------


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        table[int(entry.name)] = (ppid, cmdline.strip())
    return table


def _run_workers(root_pid: int) -> list[int]:
    """The run worker processes under ``dagster dev``: the code server starts each run in a
    multiprocessing (spawn) child of its own, whose parent is not such a child itself (the
    detector's pool workers are children of a run worker)."""
    table = _process_table()
    descendants, frontier = set(), [root_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent]
        descendants.update(children)
        frontier.extend(children)

    def spawned(pid: int) -> bool:
        return "spawn_main" in table.get(pid, (0, ""))[1]

    return sorted(p for p in descendants if spawned(p) and not spawned(table[p][0]))


def test_killed_run_worker_is_retried_by_run_retries(
    local_stack, stack_env: Settings, stack_instance: DagsterInstance, three_person
) -> None:
    path, _ = three_person
    key = "videos/crash/three.mp4"
    # Nothing else running or about to run (a registry update after an earlier video, which
    # its run status sensor may request only a tick later), so the one new run worker is this
    # video's.
    busy = [DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]

    def settled() -> bool:
        if stack_instance.get_runs(filters=RunsFilter(statuses=busy)):
            return False
        videos = stack_instance.get_runs(
            filters=RunsFilter(job_name="process_video", statuses=[DagsterRunStatus.SUCCESS])
        )
        updates = stack_instance.get_runs(filters=RunsFilter(job_name="update_talent_registry"))
        return {r.run_id for r in videos} <= {r.tags.get("dagster/run_key") for r in updates}

    _wait(settled, 300, "the stack to be idle", 0.5)
    idle_workers = _run_workers(local_stack.dagster.pid)
    upload(stack_env, path, key)

    first = _wait(
        lambda: next(
            (r for r in _runs_of(stack_instance, key) if r.status == DagsterRunStatus.STARTED),
            None,
        ),
        300,
        "the sensor's run to start",
        0.1,
    )
    worker = _wait(
        lambda: [p for p in _run_workers(local_stack.dagster.pid) if p not in idle_workers],
        60,
        "the run worker process",
        0.1,
    )
    assert len(worker) == 1, worker
    os.kill(worker[0], signal.SIGKILL)
    killed_at = time.monotonic()

    # The crashed run fails without a failed step; run retries launch its successor.
    retry = _wait(
        lambda: next(
            iter(stack_instance.get_runs(filters=RunsFilter(tags={PARENT_RUN_TAG: first.run_id}))),
            None,
        ),
        120,
        "a retry run",
    )
    print(f"retry run created {time.monotonic() - killed_at:.1f} s after the kill")
    crashed = stack_instance.get_run_by_id(first.run_id)
    assert crashed.tags[WILL_RETRY_TAG] == "true"
    assert crashed.status == DagsterRunStatus.FAILURE
    assert not stack_instance.all_logs(first.run_id, of_type=DagsterEventType.STEP_FAILURE)
    assert retry.tags[RETRY_NUMBER_TAG] == "1"
    assert retry.tags[SOURCE_KEY_TAG] == key
    assert retry.tags["dagster/partition"] == first.tags["dagster/partition"]
    finished = _wait(
        lambda: (r := stack_instance.get_run_by_id(retry.run_id)).is_finished and r,
        600,
        "the retry run to finish",
        0.5,
    )
    assert finished.status == DagsterRunStatus.SUCCESS
    manifest = manifest_of(stack_env, key)
    assert manifest is not None and manifest["people_found"] == 3


def test_bad_input_is_not_retried_by_run_retries(
    local_stack, stack_env: Settings, stack_instance: DagsterInstance, bad_inputs: dict[str, Path]
) -> None:
    key = "videos/crash/not-a-video.mp4"
    upload(stack_env, bad_inputs["text"], key)
    run = wait_for_runs(local_stack.dagster_home, [key], timeout_s=300)[key]
    assert run.status == DagsterRunStatus.FAILURE
    # The daemon looked at it and decided: no retry, because a step (raw_video) failed.
    decided = _wait(
        lambda: (r := stack_instance.get_run_by_id(run.run_id)).tags.get(WILL_RETRY_TAG) and r,
        120,
        "the daemon's retry decision",
        0.5,
    )
    assert decided.tags[WILL_RETRY_TAG] == "false"
    assert decided.tags["dagster/failure_reason"] == "STEP_FAILURE"
    time.sleep(10)  # a crashed run's retry is launched within a few seconds (test above)
    assert not stack_instance.get_runs(filters=RunsFilter(tags={PARENT_RUN_TAG: run.run_id}))
    assert len(_runs_of(stack_instance, key)) == 1
    # Tried once: raw_video failed once and was never retried.
    failures = stack_instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
    assert [e.dagster_event.step_key for e in failures] == ["raw_video"]
    assert not stack_instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY)


# --- the CLI finds a running stack by itself ------------------------------------------------------


def test_cli_in_the_stack_folder_uses_the_running_stack(
    local_stack, stack_env: Settings, stack_instance: DagsterInstance, no_face_clip: Path, tmp_path
) -> None:
    """README: "With a ``talent up`` stack running in the same folder, ``talent serve`` (like
    ``talent query`` and ``talent process s3://...``) uses it automatically, and the API's runs
    show in the stack's Dagster UI". Here from a folder whose ``.talent`` is the stack, with
    no S3, credential or Dagster variable set."""
    key = "videos/attach/nobody.mp4"
    upload(stack_env, no_face_clip, key)
    sensor_run = wait_for_runs(local_stack.dagster_home, [key], timeout_s=300)[key]
    assert sensor_run.status == DagsterRunStatus.SUCCESS
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / ".talent").symlink_to(local_stack.root)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TALENT_", "DAGSTER"))}
    env["TALENT_MEDIA_CACHE"] = os.environ["TALENT_MEDIA_CACHE"]

    def talent(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "talent_assets.apps.cli", *args],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    manifest = json.loads(talent("process", f"s3://talent/{key}", "--json"))
    assert manifest["source"] == {"bucket": "talent", "key": key}
    assert manifest == manifest_of(stack_env, key)  # published in the stack's bucket
    # The run is in the stack's instance, next to the sensor's (and not started by it).
    runs = _runs_of(stack_instance, key)
    assert len(runs) == 2 and runs[1].run_id == sensor_run.run_id
    assert runs[0].is_success and "dagster/sensor_name" not in runs[0].tags
    # talent query reads the stack's warehouse.
    rows = json.loads(
        talent("query", f"SELECT key FROM videos WHERE key = '{key}'", "--format", "json")
    )
    assert rows == [{"key": key}]
