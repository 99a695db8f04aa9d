"""Videos from HTTP(S) URLs and HLS playlists: fetched from a real server on loopback (allowed
for the test with TALENT_URL_ALLOW), the SSRF refusals, the limits, and the pipeline on the
fetched video through the real ``talent`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from talent_assets.core.hls import PlaylistError
from talent_assets.core.url_policy import UrlRefusedError
from talent_assets.core.video_id import url_video_key, video_id_for
from talent_assets.infra.settings import Settings
from talent_assets.infra.url_fetch import UrlFetchError
from talent_assets.infra.url_video import VideoFetchError, fetch_url_video
from tests.support.http_media import build_site, media_server
from tests.support.pipeline import store_for

TALENT = [sys.executable, "-m", "talent_assets.apps.cli"]


@pytest.fixture(scope="module")
def site(three_person, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The media server: /video.mp4, /hls/master.m3u8 (two renditions), /live.m3u8, ..."""
    root = build_site(tmp_path_factory.mktemp("site"), three_person[0])
    with media_server(root) as base:
        yield base


def _settings(**env: str) -> Settings:
    return Settings.from_env({"TALENT_URL_ALLOW": "127.0.0.1", **env})


def test_a_video_file_is_fetched_under_its_url_key(site: str, tmp_path: Path, three_person) -> None:
    url = f"{site}/video.mp4?token=secret"
    video = fetch_url_video(url, _settings(), tmp_path)
    assert video.path.read_bytes() == three_person[0].read_bytes()
    assert not video.hls and video.size == three_person[0].stat().st_size
    assert video.key == url_video_key(url) and video.key.startswith("videos/url/video-")
    assert video.key.endswith(".mp4") and "secret" not in video.key
    assert 7.5 < video.duration_s < 8.5


def test_a_redirect_is_followed(site: str, tmp_path: Path) -> None:
    assert fetch_url_video(f"{site}/redirect", _settings(), tmp_path).size > 0


def test_hls_takes_the_best_variant_and_joins_its_segments(site: str, tmp_path: Path) -> None:
    video = fetch_url_video(f"{site}/hls/master.m3u8", _settings(), tmp_path)
    assert video.hls and video.key.endswith(".mkv") and video.path.suffix == ".mkv"
    with av.open(str(video.path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 200  # 8 s at 25 fps: every segment, in order, nothing twice
    assert 7.5 < video.duration_s < 8.5
    # Only the video, named after its key: no playlist or segment is left behind.
    assert [p.name for p in tmp_path.iterdir()] == [Path(video.key).name]


@pytest.mark.parametrize(
    ("path", "env", "error", "message"),
    [
        ("/missing.mp4", {}, UrlFetchError, "HTTP 404"),
        ("/page.html", {}, VideoFetchError, "not a video: the server sent text/html"),
        ("/fake.mp4", {}, VideoFetchError, "not a video"),
        ("/endless", {"TALENT_URL_MAX_MB": "1"}, UrlFetchError, "larger than 1 MB"),
        ("/silent", {"TALENT_URL_TIMEOUT_S": "1.5"}, UrlFetchError, "timed out"),
        ("/loop", {}, UrlFetchError, "more than 5 redirects"),
        ("/live.m3u8", {}, PlaylistError, "live HLS playlists are not supported"),
        ("/long.mp4", {"TALENT_URL_MAX_DURATION_S": "2"}, VideoFetchError, "too long: 3 s"),
        ("/to-metadata", {}, UrlRefusedError, "169.254.169.254 is a link-local"),
    ],
)
def test_fetch_failures_are_one_line_and_leave_nothing(
    site: str, tmp_path: Path, path: str, env: dict, error: type, message: str
) -> None:
    with pytest.raises(error) as caught:
        fetch_url_video(site + path, _settings(**env), tmp_path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_loopback_is_refused_unless_allowed_and_redirects_are_checked_again(
    site: str, tmp_path: Path
) -> None:
    port = site.rsplit(":", 1)[1]
    with pytest.raises(UrlRefusedError, match=r"127\.0\.0\.1 is a loopback address"):
        fetch_url_video(f"{site}/video.mp4", Settings.from_env({}), tmp_path)
    # Allowed by name only: the redirect to the bare address is checked and refused.
    by_name = Settings.from_env({"TALENT_URL_ALLOW": "localhost"})
    assert fetch_url_video(f"http://localhost:{port}/video.mp4", by_name, tmp_path).size > 0
    with pytest.raises(UrlRefusedError, match=r"refused 127\.0\.0\.1"):
        fetch_url_video(f"http://localhost:{port}/to-loopback-ip", by_name, tmp_path)
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/a.mp4", "http://u:p@127.0.0.1/a.mp4"):
        with pytest.raises(UrlRefusedError):
            fetch_url_video(url, _settings(), tmp_path)


def _talent(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TALENT, *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_talent_process_url_puts_the_video_and_outputs_under_url(
    site: str, talent_env: Settings, tmp_path: Path
) -> None:
    url = f"{site}/video.mp4?sig=abc"
    before = set(Path(tempfile.gettempdir()).glob("talent-url-*"))
    proc = _talent(["process", url, "--json"], tmp_path, TALENT_URL_ALLOW="127.0.0.1")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)
    assert manifest["people_found"] == 3
    key = url_video_key(url, talent_env.video_prefix)
    store = store_for(talent_env)
    assert store.head(key).size > 0  # the source is kept in the bucket, like an upload
    stem = Path(key).stem
    assert manifest["results"][0]["s3_key"].startswith(f"{talent_env.output_prefix}url/{stem}/")
    assert store.head(f"{talent_env.output_prefix}url/{stem}/manifest.json").size > 0
    assert set(Path(tempfile.gettempdir()).glob("talent-url-*")) == before  # download deleted
    assert video_id_for(talent_env.bucket, key, talent_env.video_prefix).startswith("url__video-")


@pytest.mark.slow
def test_talent_process_hls_to_a_local_folder(site: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _talent(
        ["process", f"{site}/hls/master.m3u8", "--out", str(out), "--json"], tmp_path,
        TALENT_URL_ALLOW="127.0.0.1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)
    assert manifest["people_found"] == 3
    [folder] = (out / "processed" / "url").iterdir()
    assert folder.name.startswith("master-") and (folder / "manifest.json").is_file()


@pytest.mark.parametrize(
    ("url", "allow", "message"),
    [
        ("/video.mp4", "", "127.0.0.1 is a loopback address"),
        ("/missing.mp4", "127.0.0.1", "HTTP 404 Not Found"),
        ("/live.m3u8", "127.0.0.1", "live HLS playlists are not supported"),
    ],
)
def test_talent_process_url_refusals_are_one_line(
    site: str, tmp_path: Path, url: str, allow: str, message: str
) -> None:
    proc = _talent(["process", site + url, "--out", str(tmp_path / "o")], tmp_path,
                   TALENT_URL_ALLOW=allow)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("talent: error: ")
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o" / "processed").exists()


def test_https_goes_to_the_checked_address_and_verifies_the_host_name(tmp_path: Path) -> None:
    """The pinned TLS connection: made to the address that was checked, the certificate
    verified for the URL's host name (SNI). A certificate nobody trusts is a one-line error;
    trusted (a CA file made for the test), the request goes through."""
    import http.server
    import ssl
    import threading

    from talent_assets.core.url_policy import UrlAllowList
    from talent_assets.infra import url_fetch
    from talent_assets.infra.url_fetch import FetchLimits, open_url

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://localhost:{server.server_address[1]}/"
    allow, limits = UrlAllowList.parse("127.0.0.1"), FetchLimits(timeout_s=10)
    try:
        with pytest.raises(UrlFetchError, match="CERTIFICATE_VERIFY_FAILED"):
            open_url(url, allow, limits)
        default_context = ssl.create_default_context
        url_fetch.ssl.create_default_context = lambda: default_context(cafile=str(cert))
        try:
            _, response = open_url(url, allow, limits)
            assert (response.status, response.read()) == (200, b"hello")
            # The name must match the certificate: the bare address is not "localhost".
            with pytest.raises(UrlFetchError, match=r"CERTIFICATE_VERIFY_FAILED|match"):
                open_url(url.replace("localhost", "127.0.0.1"), allow, limits)
        finally:
            url_fetch.ssl.create_default_context = default_context
    finally:
        server.shutdown()
        server.server_close()
