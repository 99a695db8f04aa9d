"""``talent serve``: the HTTP API as the CLI starts it, in its own process.

README: "``talent serve`` (uvicorn, 127.0.0.1:8000)", "``GET /healthz`` ``{"status": "ok"}``, no
key needed", "``POST /process {"bucket", "key"}`` runs the ``process_video`` job for that object
through Dagster, waits, returns the manifest", "With ``TALENT_API_KEY`` set, every other request
needs ``Authorization: Bearer <key>``", and "``TALENT_API_MAX_CONCURRENT`` (default 1) caps
runs at once". The server is the real CLI subprocess on a free port, against the test S3
server, recording its runs in a ``DAGSTER_HOME`` instance configured like the local stack's
(``talent serve`` next to ``talent up`` uses that instance), so the runs' start and end times
can be read back. A server that stops answering is made to dump its threads (faulthandler,
SIGABRT) and the dump is part of the failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from dagster import DagsterInstance

from talent_assets.devstack.stack import dagster_yaml
from talent_assets.infra.settings import Settings
from tests.support.pipeline import manifest_of, upload

pytestmark = pytest.mark.slow

API_KEY = "serve-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


class ServerHung(AssertionError):
    """The server stopped answering; the message carries its threads' stacks."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    url: str
    home: Path
    proc: subprocess.Popen
    log: Path

    def hung(self, what: str) -> ServerHung:
        """Dump the server's threads into its log, kill it, and describe what hung."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return ServerHung(f"{what}; talent serve's threads:\n{self.log.read_text()[-6000:]}")


@contextmanager
def talent_serve(tmp_path: Path, **env: str) -> Iterator[Served]:
    """``talent serve --port P`` with the test environment plus ``env``. Stops it with SIGINT
    (Ctrl-C) and requires a clean exit."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(dagster_yaml(1))  # the local stack's instance settings
    port = _free_port()
    command = [sys.executable, "-X", "faulthandler", "-m", "talent_assets.apps.cli"]
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*command, "serve", "--port", str(port)],
            cwd=tmp_path,
            env={**os.environ, "DAGSTER_HOME": str(home), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    served = Served(f"http://127.0.0.1:{port}", home, proc, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "talent serve did not come up"
            time.sleep(0.2)
        yield served
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _post_both(served: Served, settings: Settings, keys: list[str]) -> list:
    """POST both keys with ``"wait": false``, wait for both runs; their run records."""
    with httpx.Client(base_url=served.url, timeout=10, headers=AUTH) as http:
        accepted = [
            http.post("/process", json={"bucket": settings.bucket, "key": k, "wait": False})
            for k in keys
        ]
        assert [r.status_code for r in accepted] == [202, 202], [r.text for r in accepted]
        deadline = time.monotonic() + 90
        for body in (r.json() for r in accepted):
            while True:
                try:
                    status = http.get(body["status_url"]).json()
                except httpx.TimeoutException:
                    raise served.hung("GET /videos/{id} got no answer within 10 s") from None
                if status["status"] in ("success", "failure"):
                    break
                if time.monotonic() > deadline:
                    raise served.hung(f"the runs did not finish within 90 s: {status}")
                time.sleep(0.1)
            assert status["status"] == "success", status
    with DagsterInstance.from_config(str(served.home)) as instance:
        return [instance.get_run_record_by_id(r.json()["run_id"]) for r in accepted]


def _overlap_s(first, second) -> float:
    return min(first.end_time, second.end_time) - max(first.start_time, second.start_time)


def test_talent_serve_answers_health_processes_and_runs_one_video_at_a_time(
    talent_env: Settings, no_face_clip: Path, tmp_path: Path
) -> None:
    keys = [f"videos/serve/nobody-{i}.mp4" for i in range(3)]
    for key in keys:
        upload(talent_env, no_face_clip, key)
    with (
        talent_serve(tmp_path, TALENT_API_KEY=API_KEY) as served,
        httpx.Client(base_url=served.url, timeout=120) as http,
    ):
        health = http.get("/healthz")  # no key needed
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        body = {"bucket": talent_env.bucket, "key": keys[0]}
        assert http.post("/process", json=body).status_code == 401
        response = http.post("/process", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        manifest = response.json()
        assert manifest == manifest_of(talent_env, keys[0])
        assert manifest["status"] == "success" and manifest["people_found"] == 0
        with DagsterInstance.from_config(str(served.home)) as instance:
            # Recorded in the DAGSTER_HOME instance: the video's run, then the registry's.
            registry, run = instance.get_runs()
            assert run.is_success and run.tags["talent/key"] == keys[0]
            assert registry.is_success and registry.job_name == "update_talent_registry"

        # TALENT_API_MAX_CONCURRENT unset (1): two videos posted together run one by one.
        first, second = _post_both(served, talent_env, keys[1:])
    assert first.end_time <= second.start_time, [
        (r.start_time, r.end_time) for r in (first, second)
    ]


def test_talent_serve_with_max_concurrent_two_runs_videos_side_by_side(
    talent_env: Settings, no_face_clip: Path, tmp_path: Path
) -> None:
    keys = [f"videos/serve/side-{i}.mp4" for i in range(2)]
    for key in keys:
        upload(talent_env, no_face_clip, key)
    with talent_serve(tmp_path, TALENT_API_KEY=API_KEY, TALENT_API_MAX_CONCURRENT="2") as served:
        first, second = _post_both(served, talent_env, keys)
        # Two runs of one video never overlap, even with a free slot: they would race to
        # publish the same outputs. (Its status follows the later run, so both are waited.)
        again, later = _post_both(served, talent_env, [keys[0], keys[0]])
    spans = [(r.start_time, r.end_time) for r in (first, second)]
    assert _overlap_s(first, second) > 0.5 * min(e - s for s, e in spans), spans
    assert again.end_time <= later.start_time, [(r.start_time, r.end_time) for r in (again, later)]
