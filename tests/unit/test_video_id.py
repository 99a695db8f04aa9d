"""Unit tests for talent_assets.core.video_id: partition keys and output folders from S3 keys."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talent_assets.core.objects import check_key
from talent_assets.core.video_id import VIDEO_EXTENSIONS, is_video_key, output_stem, video_id_for

# The DESIGN's rule for ids: a readable slug, then "-" and 8 hex digits of the hash.
ID_RE = re.compile(r"^[a-z0-9_-]+-[0-9a-f]{8}$")
# Slug (60) + "-" + 8 hex.
MAX_ID_LEN = 69

ODD_KEYS = [
    "videos/../../etc/passwd.mp4",
    "videos/Ünïcødé name!!.MOV",
    "videos/.mp4",
    "videos/" + "very long name " * 80 + ".mp4",
    "videos/" + "/".join(["deep"] * 100) + "/clip.mp4",
    "videos/日本語のビデオ.mp4",
    "videos/a|b|c.mp4",
    "videos/a...b.mp4",
    "videos/...mp4",
    "videos//double//slash.mp4",
    "//leading.mp4",
    "videos/back\\slash\\..\\x.mp4",
    "videos/nul\x00byte.mp4",
    "videos/tab\tnew\nline.mp4",
    "",
    "/",
    "..",
    "videos/",
]


def assert_valid_partition_key(video_id: str) -> None:
    """Dagster refuses '/', '|', '...' and control characters; we promise [a-z0-9_-] only."""
    assert ID_RE.match(video_id), video_id
    assert "/" not in video_id
    assert "|" not in video_id
    assert "..." not in video_id
    assert "." not in video_id
    assert len(video_id) <= MAX_ID_LEN


def expected_digest(bucket: str, key: str) -> str:
    return hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:8]


# --- video_id_for -----------------------------------------------------------------------


def test_design_example() -> None:
    key = "videos/2026/Interview One.mp4"
    video_id = video_id_for("talent", key)
    assert re.fullmatch(r"2026__interview-one-[0-9a-f]{8}", video_id), video_id
    assert video_id.endswith("-" + expected_digest("talent", key))


def test_stable_across_calls() -> None:
    key = "videos/2026/Interview One.mp4"
    ids = {video_id_for("talent", key) for _ in range(5)}
    assert len(ids) == 1


def test_different_bucket_same_key_differs() -> None:
    key = "videos/a.mp4"
    a, b = video_id_for("bucket-a", key), video_id_for("bucket-b", key)
    assert a != b
    # Readable part is the same, only the hash tells them apart.
    assert a.rsplit("-", 1)[0] == b.rsplit("-", 1)[0] == "a"


@pytest.mark.parametrize(
    "keys",
    [
        ("videos/Interview One.mp4", "videos/interview-one.mp4", "videos/INTERVIEW_ONE.mov"),
        ("videos/a/b.mp4", "videos/a__b.mp4", "videos/a/b.mov"),
        ("videos/x!.mp4", "videos/x?.mp4", "videos/x.mp4"),
    ],
)
def test_keys_that_slug_alike_get_distinct_ids(keys: tuple[str, ...]) -> None:
    ids = [video_id_for("talent", k) for k in keys]
    assert len(set(ids)) == len(keys), ids
    # ...even though their readable slugs (everything before the hash) coincide or nearly so.
    for video_id in ids:
        assert_valid_partition_key(video_id)


def test_prefix_is_dropped_only_when_present() -> None:
    assert video_id_for("b", "videos/clip.mp4").startswith("clip-")
    assert video_id_for("b", "other/clip.mp4").startswith("other__clip-")
    assert video_id_for("b", "in/clip.mp4", video_prefix="in/").startswith("clip-")


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_keys_give_valid_bounded_ids(key: str) -> None:
    video_id = video_id_for("talent", key)
    assert_valid_partition_key(video_id)
    assert video_id.endswith(expected_digest("talent", key))


def test_traversal_key_has_no_dots() -> None:
    video_id = video_id_for("talent", "videos/../../etc/passwd.mp4")
    assert video_id.startswith("etc__passwd-")


def test_unicode_is_transliterated() -> None:
    video_id = video_id_for("talent", "videos/Ünïcødé name!!.MOV")
    # NFKD keeps the base letters of Ü, ï, é; ø has no decomposition and is dropped.
    assert video_id.startswith("unicde-name-"), video_id
    assert output_stem("videos/Ünïcødé name!!.MOV") == "Unicde_name"


def test_unslugable_key_falls_back_to_video() -> None:
    assert video_id_for("talent", "videos/日本語.mp4").startswith("video-")
    assert video_id_for("talent", "videos/!!!.mp4").startswith("video-")


def test_long_key_is_truncated() -> None:
    key = "videos/" + "x" * 1000 + ".mp4"
    video_id = video_id_for("talent", key)
    assert len(video_id) <= MAX_ID_LEN
    assert video_id.startswith("x" * 60 + "-")


S3_KEYS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=300
)
PREFIXED_KEYS = st.builds(
    lambda body, ext: "videos/" + body + ext,
    S3_KEYS,
    st.sampled_from([*VIDEO_EXTENSIONS, ".MP4", ".Mov", "", ".txt"]),
)
ANY_KEYS = st.one_of(S3_KEYS, PREFIXED_KEYS)


@settings(max_examples=300, deadline=None)
@given(bucket=st.text(min_size=1, max_size=63), key=ANY_KEYS)
def test_property_ids_are_valid_partition_keys(bucket: str, key: str) -> None:
    video_id = video_id_for(bucket, key)
    assert_valid_partition_key(video_id)
    assert video_id == video_id_for(bucket, key)
    assert video_id.endswith("-" + expected_digest(bucket, key))


@settings(max_examples=200, deadline=None)
@given(key_a=ANY_KEYS, key_b=ANY_KEYS)
def test_property_distinct_keys_distinct_ids(key_a: str, key_b: str) -> None:
    if key_a != key_b:
        assert video_id_for("talent", key_a) != video_id_for("talent", key_b)


# --- output_stem ------------------------------------------------------------------------


def test_output_stem_original_behaviour() -> None:
    assert output_stem("videos/test.mp4") == "test"


def test_output_stem_keeps_subfolders() -> None:
    assert output_stem("videos/2026/march/Interview One.mp4") == "2026/march/Interview_One"
    assert output_stem("videos/a/x.mp4") != output_stem("videos/b/x.mp4")


def test_output_stem_drops_traversal() -> None:
    stem = output_stem("videos/../../etc/passwd.mp4")
    assert stem == "etc/passwd"


def test_output_stem_non_video_keeps_full_name() -> None:
    assert output_stem("videos/notes.txt") == "notes.txt"


def assert_safe_stem(stem: str) -> None:
    assert stem
    assert not stem.startswith("/")
    segments = stem.split("/")
    for segment in segments:
        assert segment not in ("", ".", ".."), stem
        assert re.fullmatch(r"[A-Za-z0-9._-]+", segment), stem
        assert len(segment) <= 100
    # Usable as a key below the output prefix without escaping it.
    check_key(f"processed/{stem}/manifest.json")


@pytest.mark.parametrize("key", ODD_KEYS)
def test_output_stem_odd_keys_are_safe(key: str) -> None:
    assert_safe_stem(output_stem(key))


@settings(max_examples=300, deadline=None)
@given(key=ANY_KEYS)
def test_property_output_stem_is_safe(key: str) -> None:
    stem = output_stem(key)
    assert_safe_stem(stem)
    assert stem == output_stem(key)


# --- is_video_key -----------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"])
def test_is_video_key_accepts_video_extensions(ext: str) -> None:
    assert is_video_key(f"videos/clip{ext}")
    assert is_video_key(f"videos/clip{ext.upper()}")
    assert is_video_key(f"videos/Clip{ext[:2]}{ext[2:].upper()}")


@pytest.mark.parametrize(
    "key",
    [
        "videos/notes.txt",
        "videos/",
        "videos/folder.mp4/",
        "videos/clip.mp4.txt",
        "videos/clip_mp4",
        "videos/clip.mp3",
        "videos/image.jpg",
        "",
    ],
)
def test_is_video_key_rejects_others(key: str) -> None:
    assert not is_video_key(key)
