"""Completion webhooks where no daemon runs: the HTTP API and ``talent process`` deliver
them themselves, after the run, signed and retried like the daemon's sensor; and leave them
to the sensor when a daemon heartbeats on the instance. Real receivers on loopback."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from dagster import DagsterInstance, RunsFilter
from dagster._daemon.types import DaemonHeartbeat

from talent_assets.apps.api import create_app
from talent_assets.apps.runner import record_failed_run
from talent_assets.apps.webhook_fallback import deliver_without_daemon, sensor_daemon_running
from talent_assets.defs.resources import build_resources
from talent_assets.defs.tags import WEBHOOK_TAG, WEBHOOK_URL_TAG
from talent_assets.infra.settings import Settings
from tests.integration.test_api import serve
from tests.support.pipeline import upload
from tests.support.webhook_receiver import Receiver, serve_receiver

pytestmark = pytest.mark.slow

SECRET = "whsec-fallback-7Hq2"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver(Receiver(lambda n, headers, body: 200, secret=SECRET)) as served:
        yield served


def _wait_for(condition, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_the_api_sends_the_webhook_itself_without_a_daemon(
    talent_env: Settings, dagster_instance: DagsterInstance, receiver: Receiver, three_person
) -> None:
    settings = dataclasses.replace(talent_env, url_allow="127.0.0.1", webhook_secret=SECRET)
    key = "videos/hooks/three.mp4"
    upload(settings, three_person[0], key)
    assert not sensor_daemon_running(dagster_instance)
    with (
        serve(create_app(settings, dagster_instance)) as base,
        httpx.Client(base_url=base, timeout=180) as http,
    ):
        body = {"bucket": settings.bucket, "key": key, "webhook_url": receiver.url}
        answer = http.post("/process", json=body)
        assert answer.status_code == 200, answer.text
        _wait_for(lambda: len(receiver.requests) == 1)
    [(headers, _, verified)] = receiver.requests
    [event] = receiver.bodies()
    assert verified and headers["Talent-Event-Id"] == f"{event['run_id']}.video.succeeded"
    assert event["people"] == answer.json()["people_found"] == 3
    assert event["source"] == f"s3://{settings.bucket}/{key}"
    run = dagster_instance.get_run_by_id(event["run_id"])
    assert run is not None and run.tags[WEBHOOK_TAG] == "delivered 200 after 1 attempt"


def test_talent_process_sends_the_failure_without_a_daemon(
    receiver: Receiver, bad_inputs: dict[str, Path], tmp_path: Path
) -> None:
    env = {**os.environ, "TALENT_WEBHOOK_URL": receiver.url, "TALENT_WEBHOOK_SECRET": SECRET,
           "TALENT_URL_ALLOW": "127.0.0.1"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "talent_assets.apps.cli", "process", str(bad_inputs["text"]),
         "--out", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "talent: webhook delivered 200 after 1 attempt" in proc.stderr
    [event] = receiver.bodies()
    assert event["event"] == "video.failed" and "not a video" in event["error"]
    assert event["error"] in proc.stderr.splitlines()[-1]  # the same one-line reason
    assert receiver.requests[0][2]  # signed
    assert SECRET not in proc.stderr + proc.stdout


def test_with_a_daemon_heartbeating_the_sensor_is_left_to_deliver(
    talent_env: Settings, dagster_instance: DagsterInstance, receiver: Receiver
) -> None:
    settings = dataclasses.replace(talent_env, url_allow="127.0.0.1")
    resources = build_resources(settings)
    run_id = record_failed_run(
        "hooks-daemon-0000", "videos/hooks/daemon.mp4", "the run failed here",
        resources=resources, instance=dagster_instance, tags={WEBHOOK_URL_TAG: receiver.url},
    )  # fmt: skip
    dagster_instance.add_daemon_heartbeat(
        DaemonHeartbeat(datetime.now().timestamp(), "SENSOR", "test-daemon", errors=[])
    )
    assert sensor_daemon_running(dagster_instance)
    storage = resources["storage"]
    assert deliver_without_daemon(dagster_instance, settings, storage, run_id) is None
    assert receiver.requests == []
    [run] = dagster_instance.get_runs(filters=RunsFilter(run_ids=[run_id]))
    assert WEBHOOK_TAG not in run.tags


def test_without_a_daemon_a_failed_run_is_sent_from_here(
    talent_env: Settings, dagster_instance: DagsterInstance, receiver: Receiver
) -> None:
    settings = dataclasses.replace(talent_env, url_allow="127.0.0.1", webhook_url=receiver.url)
    resources = build_resources(settings)
    run_id = record_failed_run(
        "hooks-nodaemon-0000", "videos/hooks/x.mp4", "HTTP 404 Not Found",
        resources=resources, instance=dagster_instance,
    )  # fmt: skip
    record = deliver_without_daemon(dagster_instance, settings, resources["storage"], run_id)
    assert record == "delivered 200 after 1 attempt"
    [event] = receiver.bodies()
    assert (event["event"], event["error"], event["run_id"]) == (
        "video.failed", "HTTP 404 Not Found", run_id,
    )  # fmt: skip
