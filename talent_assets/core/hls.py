"""HLS playlists (RFC 8216), read: which variant to take and which segments make the video.

Pure text in, plain data out; ``infra/url_video.py`` fetches what this names. Supported:
a master playlist (the variant with the most bandwidth, ties by resolution) or a media
playlist of a finished video (``#EXT-X-ENDLIST``), MPEG-TS or fragmented-MP4 segments
(``#EXT-X-MAP``). Refused with a one-line reason: live or event playlists still being
written, encrypted segments, byte ranges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin

_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^",]*)')


class PlaylistError(ValueError):
    """A playlist that cannot be turned into one finished video."""


@dataclass(frozen=True)
class MediaPlaylist:
    """The segments of one finished rendition, absolute URLs, in order."""

    segments: list[str]
    duration_s: float
    init_segment: str | None = None  # fragmented MP4: the initialisation section

    @property
    def container(self) -> str:
        """``mp4`` for fragmented-MP4 segments, else ``ts``."""
        return "mp4" if self.init_segment else "ts"


def is_playlist(text: str) -> bool:
    """Whether ``text`` is an HLS playlist (it must start with ``#EXTM3U``)."""
    return text.lstrip("\ufeff").lstrip().startswith("#EXTM3U")


def attributes(line: str) -> dict[str, str]:
    """The attribute list of a tag line, quotes removed."""
    _, _, rest = line.partition(":")
    return {key: value.strip('"') for key, value in _ATTRIBUTE.findall(rest)}


def best_variant(text: str, base_url: str) -> str | None:
    """The absolute URL of the best variant of a master playlist; None for a media one."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    best: tuple[int, int, str] | None = None
    for index, line in enumerate(lines):
        if not line.startswith("#EXT-X-STREAM-INF"):
            continue
        uri = next((u for u in lines[index + 1 :] if not u.startswith("#")), None)
        if uri is None:
            continue
        attrs = attributes(line)
        width, _, height = attrs.get("RESOLUTION", "0x0").partition("x")
        pixels = int(width or 0) * int(height or 0) if (width + height).isdigit() else 0
        rank = (int(attrs.get("BANDWIDTH", "0") or 0), pixels, urljoin(base_url, uri))
        if best is None or rank[:2] > best[:2]:
            best = rank
    if best is None and any(line.startswith("#EXT-X-STREAM-INF") for line in lines):
        raise PlaylistError("the master playlist lists no variant")
    return best[2] if best else None


def media_playlist(text: str, base_url: str) -> MediaPlaylist:
    """The segments of a finished media playlist; refuses live, encrypted, byte ranges."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "#EXT-X-ENDLIST" not in lines:
        raise PlaylistError("live HLS playlists are not supported (no #EXT-X-ENDLIST)")
    segments: list[str] = []
    duration = 0.0
    init: str | None = None
    for line in lines:
        if line.startswith("#EXT-X-KEY") and attributes(line).get("METHOD", "NONE") != "NONE":
            raise PlaylistError("encrypted HLS is not supported")
        if line.startswith("#EXT-X-BYTERANGE"):
            raise PlaylistError("HLS byte ranges are not supported")
        if line.startswith("#EXT-X-MAP"):
            uri = attributes(line).get("URI")
            init = urljoin(base_url, uri) if uri else None
        elif line.startswith("#EXTINF:"):
            try:
                duration += float(line[len("#EXTINF:") :].split(",", 1)[0])
            except ValueError:
                raise PlaylistError(f"a bad segment duration: {line[:80]}") from None
        elif not line.startswith("#"):
            segments.append(urljoin(base_url, line))
    if not segments:
        raise PlaylistError("the playlist has no segments")
    return MediaPlaylist(segments, duration, init)
