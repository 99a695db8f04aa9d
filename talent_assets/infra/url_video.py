"""Fetch a video from an HTTP(S) URL or an HLS playlist into a local file, within limits.

The front ends (``talent process URL``, the API's ``{"url": ...}``) call
:func:`fetch_url_video` into a temporary folder they always delete, then put the file in the
bucket under :func:`~talent_assets.core.video_id.url_video_key` and process it like any
other video: the run, its retries and the GPU workers then read it from the bucket, and the
outputs land under ``processed/url/<id>/``. Every request goes through the SSRF guard of
``infra/url_fetch.py``. HLS segments are joined and remuxed (no re-encoding, video only)
into Matroska, which holds any codec HLS carries.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av

from talent_assets.core.hls import (
    MediaPlaylist,
    PlaylistError,
    best_variant,
    is_playlist,
    media_playlist,
)
from talent_assets.core.url_policy import UrlAllowList, display_url, split_url
from talent_assets.core.video_id import url_video_key
from talent_assets.infra.settings import Settings
from talent_assets.infra.storage import ObjectStore
from talent_assets.infra.url_fetch import FetchLimits, UrlFetchError, download, read_text

HLS_TYPES = ("application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl")
NOT_VIDEO_TYPES = ("text/html", "application/json", "text/plain", "application/xml")
PLAYLIST_MAX_BYTES = 4 << 20


class VideoFetchError(RuntimeError):
    """The URL's content cannot become a video here (one line, for the user)."""


@dataclass(frozen=True)
class FetchedVideo:
    """A fetched video: the local file and the key it is kept under in the bucket."""

    path: Path
    key: str
    url: str
    size: int
    hls: bool
    duration_s: float


def ingest_url_video(url: str, settings: Settings, store: ObjectStore) -> FetchedVideo:
    """Fetch ``url`` and keep it in ``store`` under its URL key; the download is deleted.

    Returns the fetched video (its ``path`` no longer exists): ``key`` is then processed
    like any uploaded video.
    """
    with tempfile.TemporaryDirectory(prefix="talent-url-") as workdir:
        video = fetch_url_video(url, settings, Path(workdir))
        content_type = "video/x-matroska" if video.hls else "video/mp4"
        store.put_file(video.key, video.path, content_type)
        return video


def url_limits(settings: Settings) -> FetchLimits:
    """The fetch limits of ``settings`` (``TALENT_URL_MAX_MB``, ``TALENT_URL_TIMEOUT_S``)."""
    return FetchLimits(max_bytes=settings.url_max_mb << 20, timeout_s=settings.url_timeout_s)


def fetch_url_video(url: str, settings: Settings, workdir: Path) -> FetchedVideo:
    """Download ``url`` (a video file or an HLS playlist) into ``workdir``, as a file named
    after its key; on failure nothing is left there.

    Raises :class:`~talent_assets.core.url_policy.UrlRefusedError` (SSRF, scheme),
    :class:`~talent_assets.infra.url_fetch.UrlFetchError` (HTTP status, size, time,
    redirects), :class:`~talent_assets.core.hls.PlaylistError` or :class:`VideoFetchError`
    (not a video, too long), each with a one-line message.
    """
    split_url(url)  # the scheme and the form are refused before anything is resolved
    scratch = Path(tempfile.mkdtemp(prefix=".fetch-", dir=workdir))
    try:
        video = _fetch_into(url, settings, scratch)
        final = workdir / Path(video.key).name
        video.path.replace(final)
        return dataclasses.replace(video, path=final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fetch_into(url: str, settings: Settings, scratch: Path) -> FetchedVideo:
    allow, limits = UrlAllowList.parse(settings.url_allow), url_limits(settings)
    deadline = time.monotonic() + limits.timeout_s
    first = scratch / "download"
    fetched = download(url, first, allow, limits)
    content_type = fetched.content_type.split(";", 1)[0].strip().lower()
    if content_type in HLS_TYPES or _starts_like_playlist(first):
        text = first.read_text(errors="replace")
        playlist = _read_playlist(text, fetched.final_url, allow, limits, deadline)
        _check_duration(playlist.duration_s, settings.url_max_duration_s)
        path = _join_segments(playlist, allow, limits, deadline, scratch)
        return FetchedVideo(
            path, url_video_key(url, settings.video_prefix), url,
            path.stat().st_size, True, playlist.duration_s,
        )  # fmt: skip
    if content_type in NOT_VIDEO_TYPES:
        raise VideoFetchError(f"not a video: the server sent {content_type} ({display_url(url)})")
    duration = _check_video(first, settings.url_max_duration_s, url)
    return FetchedVideo(
        first, url_video_key(url, settings.video_prefix), url, fetched.size, False, duration
    )


def _starts_like_playlist(path: Path) -> bool:
    with path.open("rb") as handle:
        return is_playlist(handle.read(64).decode("utf-8", errors="replace"))


def _read_playlist(
    text: str, base_url: str, allow: UrlAllowList, limits: FetchLimits, deadline: float
) -> MediaPlaylist:
    """The media playlist: ``text`` itself, or the best variant a master playlist names."""
    variant = best_variant(text, base_url)
    if variant is not None:
        playlist_limits = dataclasses.replace(limits, max_bytes=PLAYLIST_MAX_BYTES)
        base_url, text = read_text(variant, allow, _within(playlist_limits, deadline))
        if best_variant(text, base_url) is not None:
            raise PlaylistError("a master playlist that points at another master playlist")
    return media_playlist(text, base_url)


def _join_segments(
    playlist: MediaPlaylist,
    allow: UrlAllowList,
    limits: FetchLimits,
    deadline: float,
    workdir: Path,
) -> Path:
    """Download the segments in order into one file and remux it into Matroska."""
    joined = workdir / f"joined.{playlist.container}"
    parts = [playlist.init_segment] if playlist.init_segment else []
    total = 0
    with joined.open("wb") as out:
        for index, segment in enumerate([*parts, *playlist.segments]):
            piece = workdir / f"segment-{index}"
            left = dataclasses.replace(limits, max_bytes=limits.max_bytes - total)
            total += download(segment, piece, allow, _within(left, deadline)).size
            out.write(piece.read_bytes())
            piece.unlink()
    video = workdir / "video.mkv"
    remux_video_stream(joined, video)
    joined.unlink()
    return video


def _within(limits: FetchLimits, deadline: float) -> FetchLimits:
    """``limits`` with the time left before the fetch's overall deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise UrlFetchError(f"the fetch took longer than {limits.timeout_s:g} s")
    return dataclasses.replace(limits, timeout_s=left)


def remux_video_stream(source: Path, destination: Path) -> None:
    """Copy the first video stream of ``source`` into a Matroska file (no re-encoding)."""
    try:
        with av.open(str(source)) as container:
            if not container.streams.video:
                raise VideoFetchError("not a video: the stream has no video track")
            stream = container.streams.video[0]
            with av.open(str(destination), "w", format="matroska") as out:
                copy = out.add_stream_from_template(stream)
                for packet in container.demux(stream):
                    if packet.dts is None:  # the demuxer's end-of-stream flush packet
                        continue
                    packet.stream = copy
                    out.mux(packet)
    except av.FFmpegError as error:
        destination.unlink(missing_ok=True)
        raise VideoFetchError(f"not a video: {error.strerror or error}") from None


def _check_video(path: Path, max_duration_s: float, url: str) -> float:
    """The file's duration; refuses what PyAV cannot open and what is too long."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoFetchError(f"not a video: no video track ({display_url(url)})")
            duration = (container.duration or 0) / 1_000_000
    except av.FFmpegError:
        raise VideoFetchError(f"not a video: {display_url(url)} cannot be read as one") from None
    _check_duration(duration, max_duration_s)
    return duration


def _check_duration(duration_s: float, max_duration_s: float) -> None:
    if duration_s > max_duration_s:
        raise VideoFetchError(
            f"too long: {duration_s:.0f} s, the limit is {max_duration_s:.0f} s "
            "(TALENT_URL_MAX_DURATION_S)"
        )
