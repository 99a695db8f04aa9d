"""The HTTP API over real HTTP: uvicorn on loopback, a real S3 server, real Dagster runs."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from dagster import DagsterInstance, DagsterRunStatus

from talent_assets.apps.api import create_app
from talent_assets.core.video_id import video_id_for
from talent_assets.infra.settings import Settings
from tests.support.pipeline import manifest_of, upload

API_KEY = "test-api-key-0123456789abcdef"


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound here and handed over: no race for the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


@pytest.fixture
def api_settings(talent_env: Settings) -> Settings:
    return dataclasses.replace(talent_env, api_key=API_KEY)


@pytest.fixture
def client(api_settings: Settings, dagster_instance: DagsterInstance) -> Iterator[httpx.Client]:
    """An authorised client of an API that requires the key."""
    with (
        serve(create_app(api_settings, dagster_instance)) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120
        ) as http,
    ):
        yield http


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """A JSON error of the documented shape: one line, no traceback, no key."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert "\n" not in body["error"]
    assert "Traceback" not in response.text
    assert API_KEY not in response.text
    return body


def process(http: httpx.Client, settings: Settings, key: str, **extra: Any) -> httpx.Response:
    return http.post("/process", json={"bucket": settings.bucket, "key": key, **extra})


def test_key_required_except_healthz(api_settings: Settings, dagster_instance) -> None:
    with serve(create_app(api_settings, dagster_instance)) as url, httpx.Client(base_url=url) as h:
        assert h.get("/healthz").json() == {"status": "ok"}
        body = {"bucket": api_settings.bucket, "key": "videos/x.mp4"}
        for headers in (
            {},
            {"Authorization": "Bearer wrong-key"},
            {"Authorization": f"Bearer {API_KEY}x"},
            {"Authorization": f"Basic {API_KEY}"},
            {"Authorization": API_KEY},
        ):
            for response in (
                h.post("/process", json=body, headers=headers),
                h.get("/videos/some-video-0123abcd", headers=headers),
                # The key is checked before anything else: a bad body or path is still a 401.
                h.post("/process", content=b"{not json", headers=headers),
                h.get("/no-such-path", headers=headers),
            ):
                assert_error(response, 401)
                assert response.headers["www-authenticate"] == "Bearer"
        good = {"Authorization": f"Bearer {API_KEY}"}
        assert_error(h.get("/videos/some-video-0123abcd", headers=good), 404)
        assert_error(h.post("/process", json=body, headers=good), 404)  # no such object


def test_no_key_configured_means_open(talent_env: Settings, dagster_instance) -> None:
    assert talent_env.api_key is None
    with serve(create_app(talent_env, dagster_instance)) as url, httpx.Client(base_url=url) as h:
        assert_error(h.get("/videos/some-video-0123abcd"), 404)


def test_only_the_configured_bucket(client: httpx.Client) -> None:
    body = assert_error(
        client.post("/process", json={"bucket": "someone-elses", "key": "videos/a.mp4"}), 403
    )
    assert "someone-elses" in body["error"]


@pytest.mark.parametrize(
    ("content", "json_body"),
    [
        pytest.param(b"{not json", None, id="not-json"),
        pytest.param(b"", None, id="empty"),
        pytest.param(None, {"bucket": "talent-test"}, id="missing-key"),
        pytest.param(None, {"key": "videos/a.mp4"}, id="missing-bucket"),
        pytest.param(None, {"bucket": "talent-test", "key": 5}, id="key-not-string"),
        pytest.param(None, {"bucket": ["talent-test"], "key": "videos/a.mp4"}, id="bucket-list"),
        pytest.param(
            None, {"bucket": "talent-test", "key": "videos/a.mp4", "wait": "no"}, id="wait-string"
        ),
        pytest.param(
            None, {"bucket": "talent-test", "key": "videos/a.mp4", "wiat": False}, id="extra-field"
        ),
        pytest.param(None, ["talent-test", "videos/a.mp4"], id="not-an-object"),
        pytest.param(None, {"bucket": "talent-test", "key": ""}, id="empty-key"),
    ],
)
def test_bad_bodies_are_400(client: httpx.Client, content: bytes | None, json_body: Any) -> None:
    if content is not None:
        response = client.post(
            "/process", content=content, headers={"Content-Type": "application/json"}
        )
    else:
        response = client.post("/process", json=json_body)
    assert_error(response, 400)


@pytest.mark.parametrize(
    "key", ["videos/../secret.mp4", "/videos/a.mp4", "videos/./a.mp4", "videos//a.mp4", "a\\b.mp4"]
)
def test_unsafe_keys_are_400(client: httpx.Client, api_settings: Settings, key: str) -> None:
    assert "unsafe object key" in assert_error(process(client, api_settings, key), 400)["error"]


def test_missing_object_is_404(client: httpx.Client, api_settings: Settings) -> None:
    body = assert_error(process(client, api_settings, "videos/api/never-uploaded.mp4"), 404)
    assert body["error"] == "missing object: s3://talent-test/videos/api/never-uploaded.mp4"


def test_not_a_video_name_is_422(client: httpx.Client, api_settings: Settings) -> None:
    assert_error(process(client, api_settings, "videos/api/notes.txt"), 422)


@pytest.mark.parametrize(("name", "reason"), [("text", "not a video"), ("empty", "empty file")])
def test_file_that_is_not_a_video_is_422_with_run_id(
    client: httpx.Client,
    api_settings: Settings,
    dagster_instance: DagsterInstance,
    bad_inputs: dict[str, Path],
    name: str,
    reason: str,
) -> None:
    key = f"videos/api/{name}.mp4"
    upload(api_settings, bad_inputs[name], key)
    body = assert_error(process(client, api_settings, key), 422)
    assert reason in body["error"], body
    video_id = video_id_for(api_settings.bucket, key, api_settings.video_prefix)
    assert body["video_id"] == video_id
    run = dagster_instance.get_run_by_id(body["run_id"])
    assert run is not None and run.status == DagsterRunStatus.FAILURE
    assert run.tags["dagster/partition"] == video_id

    status = client.get(f"/videos/{video_id}").json()
    assert status == {
        "video_id": video_id,
        "status": "failure",
        "run_id": body["run_id"],
        "key": key,
        "manifest": None,
        "error": body["error"],
    }


def test_unknown_and_malformed_video_ids(client: httpx.Client) -> None:
    assert "unknown video id" in assert_error(client.get("/videos/nobody-0123abcd"), 404)["error"]
    for bad in ("Upper-0123abcd", "dots.mp4", "a%20b", "semi;colon", "x" * 201):
        assert_error(client.get(f"/videos/{bad}"), 400)


@pytest.mark.slow
def test_process_returns_the_published_manifest(
    client: httpx.Client,
    api_settings: Settings,
    dagster_instance: DagsterInstance,
    three_person,
) -> None:
    path, _truth = three_person
    key = "videos/api/three people.mp4"
    upload(api_settings, path, key)
    response = process(client, api_settings, key)
    assert response.status_code == 200, response.text
    manifest = response.json()
    assert manifest["status"] == "success"
    assert manifest["people_found"] == 3
    assert [r["person_id"] for r in manifest["results"]] == [0, 1, 2]
    assert manifest["source"] == {"bucket": api_settings.bucket, "key": key}
    assert manifest == manifest_of(api_settings, key)

    video_id = manifest["video_id"]
    assert video_id == video_id_for(api_settings.bucket, key, api_settings.video_prefix)
    status = client.get(f"/videos/{video_id}").json()
    assert status["status"] == "success" and status["error"] is None
    assert status["key"] == key and status["manifest"] == manifest
    run = dagster_instance.get_run_by_id(status["run_id"])
    assert run is not None and run.status == DagsterRunStatus.SUCCESS


@pytest.mark.slow
def test_no_wait_returns_202_then_runs_queue_one_at_a_time(
    client: httpx.Client,
    api_settings: Settings,
    dagster_instance: DagsterInstance,
    three_person,
    bad_inputs: dict[str, Path],
) -> None:
    path, _truth = three_person
    key, bad_key = "videos/api/async.mp4", "videos/api/async-text.mp4"
    upload(api_settings, path, key)
    upload(api_settings, bad_inputs["text"], bad_key)

    accepted = process(client, api_settings, key, wait=False)
    assert accepted.status_code == 202, accepted.text
    first = accepted.json()
    video_id = video_id_for(api_settings.bucket, key, api_settings.video_prefix)
    assert first == {
        "run_id": first["run_id"],
        "video_id": video_id,
        "status_url": f"/videos/{video_id}",
    }
    second = process(client, api_settings, bad_key, wait=False).json()
    # One run at a time (the default): the second waits behind the first, with no Dagster
    # run yet, but it is known and has its run id already.
    queued = client.get(second["status_url"]).json()
    assert queued["status"] == "queued" and queued["run_id"] == second["run_id"]
    assert dagster_instance.get_run_by_id(second["run_id"]) is None

    seen = set()
    deadline = time.monotonic() + 120
    while True:
        status = client.get(first["status_url"]).json()
        seen.add(status["status"])
        if status["status"] in ("success", "failure") or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert status["status"] == "success", status
    assert seen <= {"queued", "running", "success"} and "running" in seen
    assert status["run_id"] == first["run_id"] and status["error"] is None
    assert status["manifest"]["people_found"] == 3
    assert status["manifest"] == manifest_of(api_settings, key)

    while (failed := client.get(second["status_url"]).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.25)
    assert failed["status"] == "failure" and "not a video" in failed["error"]
    assert failed["manifest"] is None and failed["run_id"] == second["run_id"]


def test_unreachable_object_store_is_502(api_settings: Settings, dagster_instance) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = dataclasses.replace(api_settings, endpoint_url=f"http://127.0.0.1:{port}")
    with (
        serve(create_app(settings, dagster_instance)) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}) as http,
    ):
        body = assert_error(process(http, settings, "videos/a.mp4"), 502)
        assert body["error"] == "the object store could not be reached"


@pytest.mark.slow
def test_run_failing_for_another_reason_is_500_with_run_id(
    api_settings: Settings, dagster_instance: DagsterInstance, no_face_clip: Path
) -> None:
    # A warehouse outside the configured bucket is refused inside the run: our fault, not
    # the caller's, so a 500 that names the run (the video itself is fine).
    settings = dataclasses.replace(api_settings, warehouse="s3://elsewhere/warehouse")
    key = "videos/api/nobody.mp4"
    upload(settings, no_face_clip, key)
    with (
        serve(create_app(settings, dagster_instance)) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120
        ) as http,
    ):
        body = assert_error(process(http, settings, key), 500)
        # The reason is runner.first_failure_with_kind's (test_pipeline checks its wording,
        # retries unwrapped); here the response's shape and the failed run are checked.
        assert body["video_id"] == video_id_for(settings.bucket, key, settings.video_prefix)
        run = dagster_instance.get_run_by_id(body["run_id"])
        assert run is not None and run.status == DagsterRunStatus.FAILURE
        status = http.get(f"/videos/{body['video_id']}").json()
        assert status["status"] == "failure" and status["error"] == body["error"]


def _run_workers() -> list[int]:
    """Pids of this process's spawned children (the API's run workers)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if parent == os.getpid() and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.slow
def test_a_killed_run_worker_fails_its_run_and_the_next_run_succeeds(
    client: httpx.Client,
    api_settings: Settings,
    dagster_instance: DagsterInstance,
    three_person,
    no_face_clip: Path,
) -> None:
    key, next_key = "videos/api/killed.mp4", "videos/api/after-kill.mp4"
    upload(api_settings, three_person[0], key)
    upload(api_settings, no_face_clip, next_key)
    accepted = process(client, api_settings, key, wait=False).json()
    deadline = time.monotonic() + 120
    while (run := dagster_instance.get_run_by_id(accepted["run_id"])) is None or (
        run.status != DagsterRunStatus.STARTED
    ):
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)
    workers = _run_workers()
    assert workers, "the run is not in a worker process"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)

    while (status := client.get(accepted["status_url"]).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # The API itself survived, the run is marked failed rather than left STARTED for ever.
    assert status["status"] == "failure", status
    assert status["error"] == "the run's worker process died"
    run = dagster_instance.get_run_by_id(accepted["run_id"])
    assert run is not None and run.status == DagsterRunStatus.FAILURE
    after = process(client, api_settings, next_key)
    assert after.status_code == 200, after.text
    assert after.json()["people_found"] == 0
