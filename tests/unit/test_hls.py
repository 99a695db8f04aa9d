"""HLS playlists read (pure) and the key a URL video is kept under."""

from __future__ import annotations

import pytest

from talent_assets.core.hls import PlaylistError, best_variant, is_playlist, media_playlist
from talent_assets.core.url_policy import display_url
from talent_assets.core.video_id import url_video_key, video_id_for

BASE = "https://cdn.example.com/show/ep1/master.m3u8?token=abc"
MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080
https://other.example.com/1080p.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1280x720
720p/index.m3u8
"""
MEDIA = """#EXTM3U
#EXT-X-TARGETDURATION:6
#EXT-X-PLAYLIST-TYPE:VOD
#EXTINF:6.0,
seg0.ts
#EXTINF:5.5,title
/abs/seg1.ts
#EXT-X-ENDLIST
"""


def test_the_best_variant_is_the_most_bandwidth_then_pixels() -> None:
    assert is_playlist(MASTER) and is_playlist("\ufeff#EXTM3U\n")
    assert best_variant(MASTER, BASE) == "https://other.example.com/1080p.m3u8"
    assert best_variant(MASTER.replace("1920x1080", "320x240"), BASE) == (
        "https://cdn.example.com/show/ep1/720p/index.m3u8"
    )
    assert best_variant(MEDIA, BASE) is None  # a media playlist has no variants


def test_a_finished_media_playlist_lists_absolute_segments_and_duration() -> None:
    playlist = media_playlist(MEDIA, "https://cdn.example.com/show/ep1/720p/index.m3u8")
    assert playlist.segments == [
        "https://cdn.example.com/show/ep1/720p/seg0.ts",
        "https://cdn.example.com/abs/seg1.ts",
    ]
    assert playlist.duration_s == pytest.approx(11.5) and playlist.container == "ts"
    fmp4 = MEDIA.replace("#EXT-X-PLAYLIST-TYPE:VOD", '#EXT-X-MAP:URI="init.mp4"')
    assert media_playlist(fmp4, BASE).init_segment == "https://cdn.example.com/show/ep1/init.mp4"
    assert media_playlist(fmp4, BASE).container == "mp4"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MEDIA.replace("#EXT-X-ENDLIST", ""), "live HLS playlists are not supported"),
        (MEDIA.replace("#EXT-X-TARGETDURATION:6", '#EXT-X-KEY:METHOD=AES-128,URI="k"'),
         "encrypted HLS"),
        (MEDIA.replace("#EXTINF:6.0,", "#EXTINF:6.0,\n#EXT-X-BYTERANGE:100@0"), "byte ranges"),
        ("#EXTM3U\n#EXT-X-ENDLIST\n", "no segments"),
        (MEDIA.replace("#EXTINF:6.0,", "#EXTINF:six,"), "bad segment duration"),
    ],
)  # fmt: skip
def test_playlists_that_are_not_one_finished_video_are_refused(text: str, message: str) -> None:
    with pytest.raises(PlaylistError, match=message):
        media_playlist(text, BASE)
    unencrypted = MEDIA.replace("#EXT-X-TARGETDURATION:6", "#EXT-X-KEY:METHOD=NONE")
    assert len(media_playlist(unencrypted, BASE).segments) == 2


def test_url_keys_are_stable_distinct_and_hide_the_query() -> None:
    key = url_video_key(BASE, "videos/")
    assert key == url_video_key(BASE, "videos/")
    assert key.startswith("videos/url/master-") and key.endswith(".mkv")
    assert "token" not in key and "abc" not in key
    assert url_video_key(BASE.replace("abc", "abd"), "videos/") != key
    assert url_video_key("https://x.org/a/Talk%20One.MOV").startswith("videos/url/talk-one-")
    assert url_video_key("https://x.org/a/Talk%20One.MOV").endswith(".mov")
    assert url_video_key("https://x.org/watch?v=1").startswith("videos/url/watch-")
    assert url_video_key("https://x.org/").startswith("videos/url/video-")
    vid = video_id_for("talent", key, "videos/")
    assert vid.startswith("url__master-") and "/" not in vid


def test_display_url_drops_the_query_and_credentials() -> None:
    assert display_url(BASE) == "https://cdn.example.com/show/ep1/master.m3u8"
    assert display_url("http://u:p@h:8080/a?b#c") == "http://h:8080/a"
