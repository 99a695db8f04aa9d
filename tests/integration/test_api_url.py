"""``POST /process {"url": ...}``: a video URL through the real API (uvicorn on loopback,
spawned run workers, real S3, a real Dagster instance), fetched from a loopback media server
allowed with TALENT_URL_ALLOW; refusals answered in one line and recorded as failed runs."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import httpx
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from talent_assets.apps.api import create_app
from talent_assets.core.objects import ObjectNotFoundError
from talent_assets.core.video_id import url_video_key, video_id_for
from talent_assets.defs.tags import SOURCE_URL_TAG, VIDEO_TAG, WEBHOOK_URL_TAG
from talent_assets.infra.settings import Settings
from tests.integration.test_api import API_KEY, assert_error, serve
from tests.support.http_media import build_site, media_server
from tests.support.pipeline import store_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(three_person, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with media_server(build_site(tmp_path_factory.mktemp("site"), three_person[0])) as base:
        yield base


@pytest.fixture
def api_settings(talent_env: Settings) -> Settings:
    return dataclasses.replace(talent_env, api_key=API_KEY, url_allow="127.0.0.1")


@pytest.fixture
def client(api_settings: Settings, dagster_instance: DagsterInstance) -> Iterator[httpx.Client]:
    with (
        serve(create_app(api_settings, dagster_instance)) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=180
        ) as http,
    ):
        yield http


def _video_id(settings: Settings, url: str) -> str:
    return video_id_for(settings.bucket, url_video_key(url, settings.video_prefix))


def test_a_url_is_fetched_processed_and_answered_with_its_manifest(
    client: httpx.Client, api_settings: Settings, site: str, dagster_instance: DagsterInstance
) -> None:
    url = f"{site}/video.mp4?signature=s3cr3t"
    hook = "https://hooks.example.com/talent"
    response = client.post("/process", json={"url": url, "webhook_url": hook})
    assert response.status_code == 200, response.text
    manifest = response.json()
    key = url_video_key(url, api_settings.video_prefix)
    assert manifest["people_found"] == 3 and manifest["source"]["key"] == key
    assert manifest["results"][0]["s3_key"].startswith(
        f"{api_settings.output_prefix}url/{key.rsplit('/', 1)[1].rsplit('.', 1)[0]}/"
    )
    assert store_for(api_settings).head(key).size > 0
    [run] = dagster_instance.get_runs(
        filters=RunsFilter(tags={VIDEO_TAG: _video_id(api_settings, url)})
    )
    assert run.status == DagsterRunStatus.SUCCESS
    assert run.tags[SOURCE_URL_TAG] == f"{site}/video.mp4"  # the query (a credential) is not kept
    assert run.tags[WEBHOOK_URL_TAG] == hook
    assert "s3cr3t" not in str(dict(run.tags))


def test_an_hls_url_can_be_polled(client: httpx.Client, api_settings: Settings, site: str) -> None:
    url = f"{site}/hls/master.m3u8"
    accepted = client.post("/process", json={"url": url, "wait": False})
    assert accepted.status_code == 202, accepted.text
    video_id = accepted.json()["video_id"]
    assert video_id == _video_id(api_settings, url)
    deadline = time.monotonic() + 180
    while (status := client.get(f"/videos/{video_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert status["status"] == "success", status
    assert status["manifest"]["people_found"] == 3


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"url": "file:///etc/passwd"}, 400, "only http and https"),
        ({"url": "http://u:p@example.com/a.mp4"}, 400, "user name or password"),
        ({"url": "https://example.com/a.mp4", "bucket": "b", "key": "k.mp4"}, 400, "not both"),
        ({"wait": True}, 400, "give bucket and key"),
        ({"url": "https://example.com/a.mp4", "webhook_url": "ftp://x/y"}, 400, "webhook_url"),
    ],
)
def test_requests_refused_before_any_run(
    client: httpx.Client, body: dict, status: int, message: str
) -> None:
    assert message in assert_error(client.post("/process", json=body), status)["error"]


@pytest.mark.parametrize(
    ("path", "allow", "status", "message"),
    [
        ("/video.mp4", "", 400, "127.0.0.1 is a loopback address"),
        ("/missing.mp4", "127.0.0.1", 502, "HTTP 404 Not Found"),
        ("/page.html", "127.0.0.1", 422, "not a video"),
        ("/live.m3u8", "127.0.0.1", 422, "live HLS playlists are not supported"),
    ],
)
def test_a_url_that_cannot_be_fetched_fails_its_run_in_one_line(
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    site: str,
    path: str,
    allow: str,
    status: int,
    message: str,
) -> None:
    settings = dataclasses.replace(talent_env, url_allow=allow)
    with (
        serve(create_app(settings, dagster_instance)) as base,
        httpx.Client(base_url=base, timeout=120) as http,
    ):
        body = assert_error(http.post("/process", json={"url": site + path}), status)
        assert message in body["error"]
        video_id = _video_id(settings, site + path)
        assert body["video_id"] == video_id
        polled = http.get(f"/videos/{video_id}").json()
        assert polled["status"] == "failure" and message in polled["error"]
    # Recorded in Dagster as a failed run of the partition, with the reason.
    [run] = dagster_instance.get_runs(filters=RunsFilter(tags={VIDEO_TAG: video_id}))
    assert run.status == DagsterRunStatus.FAILURE and run.run_id == body["run_id"]
    with pytest.raises(ObjectNotFoundError):  # nothing was put in the bucket
        store_for(settings).head(url_video_key(site + path, settings.video_prefix))
