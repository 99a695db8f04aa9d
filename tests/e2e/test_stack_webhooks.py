"""The stack's real daemon sends completion webhooks: a good video and a bad input uploaded,
a receiver on loopback gets one signed ``video.succeeded`` and one ``video.failed`` with the
run's one-line reason, and each run records the delivery in its ``talent/webhook`` tag."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from talent_assets.apps.runner import run_failure_message
from talent_assets.defs.tags import WEBHOOK_TAG
from talent_assets.devstack.stack import LocalStack, wait_for_runs
from talent_assets.infra.s3 import bucket_store
from talent_assets.infra.settings import Settings
from tests.support.webhook_receiver import Receiver, serve_receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SECRET = secrets.token_urlsafe(24)


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_the_daemon_posts_signed_events_for_a_good_and_a_bad_video(
    tmp_path: Path, three_person, bad_inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver(lambda n, headers, body: 200, secret=SECRET)
    with serve_receiver(receiver):
        url, received = receiver.url, receiver.requests
        # The stack passes its environment on to dagster dev, hence to the daemon's sensor.
        monkeypatch.setenv("TALENT_WEBHOOK_URL", url)
        monkeypatch.setenv("TALENT_WEBHOOK_SECRET", SECRET)
        monkeypatch.setenv("TALENT_URL_ALLOW", "127.0.0.1")
        stack = LocalStack(
            tmp_path / ".talent",
            bucket="talent",
            sensor_interval_s=2,
            max_concurrent_videos=2,
            credentials=(f"hook{secrets.token_hex(4)}", secrets.token_urlsafe(24)),
        )
        with stack:
            for name, value in stack.environment().items():
                monkeypatch.setenv(name, value)
            settings = Settings.from_env()
            store = bucket_store(settings)
            good, bad = "videos/three people.mp4", "videos/not a video.mp4"
            store.put_bytes(good, three_person[0].read_bytes(), "video/mp4")
            store.put_bytes(bad, bad_inputs["text"].read_bytes(), "video/mp4")

            runs = wait_for_runs(stack.dagster_home, [good, bad], timeout_s=300)
            assert runs[good].status == DagsterRunStatus.SUCCESS
            assert runs[bad].status == DagsterRunStatus.FAILURE
            _wait_for(lambda: len(received) >= 2, 60, "two webhook events")
            with DagsterInstance.from_config(str(stack.dagster_home)) as instance:
                _wait_for(
                    lambda: all(
                        WEBHOOK_TAG in instance.get_run_by_id(r.run_id).tags  # type: ignore[union-attr]
                        for r in runs.values()
                    ),
                    30,
                    "the delivery tags",
                )
                tags = {k: instance.get_run_by_id(r.run_id).tags for k, r in runs.items()}  # type: ignore[union-attr]
                reason = run_failure_message(instance, runs[bad].run_id)

    events = {event["event"]: event for event in receiver.bodies()}
    assert len(received) == 2 and all(valid for _, _, valid in received)
    succeeded, failed = events["video.succeeded"], events["video.failed"]
    assert succeeded["run_id"] == runs[good].run_id
    assert succeeded["source"] == f"s3://talent/{good}"
    assert succeeded["people"] == len(three_person[1].people)
    assert succeeded["manifest"].startswith("s3://talent/processed/")
    assert failed["run_id"] == runs[bad].run_id
    assert failed["error"] == reason and "\n" not in reason
    for key in (good, bad):
        assert tags[key][WEBHOOK_TAG] == "delivered 200 after 1 attempt"
        assert SECRET not in json.dumps(dict(tags[key]))
