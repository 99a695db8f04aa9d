"""A real HTTP server on loopback that serves test media the way web servers and CDNs do:
video files, HLS playlists and segments (made at test time), and the failure cases a URL
fetch must survive (404, HTML, redirects, a server that never answers, endless bodies)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".html": "text/html; charset=utf-8",
}


def make_hls(source: Path, folder: Path, *, width: int, height: int, segment_s: int = 2) -> Path:
    """Re-encode ``source`` at ``width``x``height`` with a keyframe each second and cut it into
    a finished (VOD) HLS rendition of MPEG-TS segments; returns its playlist."""
    folder.mkdir(parents=True, exist_ok=True)
    playlist = folder / "index.m3u8"
    with av.open(str(source)) as src:
        rate = src.streams.video[0].average_rate or 25
        out = av.open(
            str(playlist), "w", format="hls",
            options={"hls_time": str(segment_s), "hls_playlist_type": "vod",
                     "hls_segment_filename": str(folder / "seg_%03d.ts")},
        )  # fmt: skip
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(int(rate)), "preset": "ultrafast"}
        for index, frame in enumerate(src.decode(video=0)):
            image = frame.reformat(width=width, height=height, format="yuv420p")
            image.pts, image.time_base = index, Fraction(1, int(rate))
            for packet in stream.encode(image):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        out.close()
    return playlist


def write_master_playlist(folder: Path, variants: list[tuple[str, int, str]]) -> Path:
    """A master playlist naming (relative playlist, bandwidth, resolution) variants."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
    for uri, bandwidth, resolution in variants:
        lines += [f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={resolution}", uri]
    path = folder / "master.m3u8"
    path.write_text("\n".join(lines) + "\n")
    return path


def noise_video(path: Path, seconds: float = 1.0) -> Path:
    """A short real video without faces (noise), for limits that need any real video."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(int(seconds * 10)):
            pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def build_site(root: Path, video: Path) -> Path:
    """The files the media server serves: ``/video.mp4`` (``video``), ``/hls/master.m3u8``
    (two renditions of it, 320x180 and 1280x720), ``/live.m3u8`` (its high rendition without
    an end), ``/page.html``, ``/fake.mp4`` (random bytes), ``/long.mp4`` (3 s of noise)."""
    shutil.copyfile(video, root / "video.mp4")
    make_hls(video, root / "hls" / "high", width=1280, height=720)
    make_hls(video, root / "hls" / "low", width=320, height=180)
    write_master_playlist(
        root / "hls",
        [("low/index.m3u8", 300_000, "320x180"), ("high/index.m3u8", 2_500_000, "1280x720")],
    )
    live = (root / "hls" / "high" / "index.m3u8").read_text().replace("#EXT-X-ENDLIST", "")
    (root / "live.m3u8").write_text(live)
    (root / "page.html").write_text("<html><body>not a video</body></html>")
    (root / "fake.mp4").write_bytes(os.urandom(4096))
    noise_video(root / "long.mp4", seconds=3.0)
    return root


class _Handler(BaseHTTPRequestHandler):
    root: Path
    base: str

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        special = getattr(self, "_special_" + path.strip("/").replace("-", "_"), None)
        if special is not None:
            special()
            return
        file = (self.root / path.lstrip("/")).resolve()
        if not file.is_file() or self.root.resolve() not in file.parents:
            self.send_error(404, "Not Found")
            return
        data = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES.get(file.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location: str, status: int = 302) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _special_redirect(self) -> None:
        self._redirect("/video.mp4")

    def _special_loop(self) -> None:
        self._redirect("/loop")

    def _special_to_loopback_ip(self) -> None:
        # The server is reached as "localhost"; this sends the client to the bare address.
        self._redirect(f"http://127.0.0.1:{self.server.server_address[1]}/video.mp4")

    def _special_to_metadata(self) -> None:
        self._redirect("http://169.254.169.254/latest/meta-data/")

    def _special_silent(self) -> None:
        time.sleep(30)  # accepts the connection, never answers

    def _special_endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.end_headers()  # no Content-Length: the size limit must stop the stream
        chunk = b"\0" * 65536
        try:
            for _ in range(4096):
                self.wfile.write(chunk)
        except OSError:
            pass


@contextmanager
def media_server(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port); yields the base URL ``http://127.0.0.1:P``."""
    handler = type("Handler", (_Handler,), {"root": root})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
