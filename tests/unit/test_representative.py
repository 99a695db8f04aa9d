"""Representative frames, the pure parts: scoring (modal_gpu/representative.py), windows,
merging chunks, staging and what selected_frames publishes (core/representative_frames.py)."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from modal_gpu import representative as rep
from modal_gpu.representative import (
    Candidate,
    RepresentativePicker,
    look_of,
    merge_candidates,
    target_s,
    window_of,
)
from modal_gpu.static_frames import thumbnail
from modal_gpu.video import SampledFrame
from talent_assets.core import images
from talent_assets.core.manifest import build_manifest, representative_frame_key
from talent_assets.core.representative_frames import (
    contact_strip,
    frames_from_table,
    representative_outputs,
    staged_run_id,
    staged_table,
)
from talent_assets.core.talent_frames import OutputLinks


def scene(seed: int = 0, size: tuple[int, int] = (640, 360)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[:] = np.linspace(50, 200, size[0], dtype=np.uint8)[None, :, None]
    for _ in range(40):
        x, y = (int(v) for v in rng.integers(0, size[0], 2))
        colour = tuple(int(c) for c in rng.integers(20, 235, 3))
        cv2.rectangle(image, (x, y % size[1]), (x + 40, y % size[1] + 25), colour, -1)
    return image


def look(image: np.ndarray) -> rep.FrameLook:
    return look_of(thumbnail(image))


def test_black_white_uniform_and_deep_fades_are_blank_a_scene_is_not() -> None:
    sharp = scene()
    assert not look(sharp).blank and look(sharp).exposure == 1.0
    assert look(np.zeros_like(sharp)).blank
    assert look(np.full_like(sharp, 250)).blank
    assert look(np.full_like(sharp, 128)).blank  # a plain card: nearly uniform
    assert look((sharp * 0.1).astype(np.uint8)).blank  # the bottom of a fade
    half = look((sharp * 0.5).astype(np.uint8))  # mid-fade: not blank, but scores lower
    assert half.sharpness * half.exposure < 0.6 * look(sharp).sharpness


def test_a_blurred_frame_scores_lower_than_a_sharp_one_even_nearer_the_point() -> None:
    count, duration = 4, 8.0  # windows of 2 s, points at 1, 3, 5, 7
    sharp, blurred = look(scene()), look(cv2.GaussianBlur(scene(), (0, 0), 3))
    on_point = rep.frame_score(blurred, 3.0, count, duration)
    at_edge = rep.frame_score(sharp, 2.0, count, duration)
    assert at_edge > on_point
    # Between equals, nearer the point wins.
    assert rep.frame_score(sharp, 2.9, count, duration) > rep.frame_score(
        sharp, 2.2, count, duration
    )


def test_windows_tile_the_video() -> None:
    assert [window_of(t, 5, 10.0) for t in (0.0, 1.99, 2.0, 9.99, 10.0, 12.0)] == [0, 0, 1, 4, 4, 4]
    assert [target_s(i, 5, 10.0) for i in range(5)] == [1.0, 3.0, 5.0, 7.0, 9.0]


def frame(t: float, image: np.ndarray) -> SampledFrame:
    return SampledFrame(frame_index=round(t * 25), timestamp_s=t, image=image, scale=1.0)


def pick(frames: list[tuple[float, np.ndarray]], count: int = 2, duration: float = 4.0):
    picker = RepresentativePicker(count, duration)
    for t, image in frames:
        picker.offer(frame(t, image), thumbnail(image))
    return picker.finish()


def test_a_window_of_only_blank_frames_keeps_the_least_bad() -> None:
    """Documented choice: the least bad (highest score) is kept, flagged blank, so N frames
    come back whenever every window has a sampled frame."""
    black, dim = np.zeros_like(scene()), (scene() * 0.08).astype(np.uint8)
    chosen = pick([(0.5, black), (1.0, dim), (1.5, black), (2.5, scene())])
    assert [(c.window, c.timestamp_s, c.blank) for c in chosen] == [(0, 1.0, True), (1, 2.5, False)]
    decoded = cv2.imdecode(np.frombuffer(chosen[1].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == scene().shape


def test_a_window_without_samples_gives_no_frame() -> None:
    assert [c.window for c in pick([(0.5, scene())], count=4)] == [0]
    assert RepresentativePicker(0, 10.0).finish() == [] and not RepresentativePicker(3, 0).enabled


def test_merging_chunks_gives_the_same_frames_in_any_split_and_order() -> None:
    images = {t: scene(int(t * 10)) for t in np.arange(0.0, 4.0, 0.25)}
    images[1.0] = cv2.GaussianBlur(images[1.0], (0, 0), 4)
    times = sorted(images)
    whole = pick([(t, images[t]) for t in times])
    for cut in (3, 6, 9, 12):
        parts = [
            pick([(t, images[t]) for t in times[:cut]]),
            pick([(t, images[t]) for t in times[cut:]]),
        ]
        for order in itertools.permutations(parts):
            assert merge_candidates(*order) == whole


def test_worker_jpeg_quality_is_the_person_frames() -> None:
    assert rep.JPEG_QUALITY == images.JPEG_QUALITY


def test_candidates_travel_as_plain_dicts() -> None:
    (c,) = pick([(0.5, scene())], count=1, duration=1.0)
    assert Candidate.from_dict(c.to_dict()) == c


def test_staged_frames_round_trip_with_their_run() -> None:
    chosen = pick([(0.5, scene(1)), (2.5, scene(2))])
    table = staged_table(reversed(chosen), "run-1")
    assert staged_run_id(table) == "run-1"
    frames = frames_from_table(table)
    assert [f.timestamp_s for f in frames] == [0.5, 2.5]
    assert [f.jpeg for f in frames] == [c.jpeg for c in chosen]


def test_outputs_name_files_like_person_frames_and_draw_a_strip() -> None:
    frames = frames_from_table(staged_table(pick([(0.5, scene(1)), (2.5, scene(2))]), "r"))
    links = OutputLinks(url=lambda k: f"https://s3/{k}?sig", local_path=lambda k: f"/out/{k}")
    out = representative_outputs("processed/v/", frames, links)
    assert list(out.files) == ["processed/v/frame_00.jpg", "processed/v/frame_01.jpg"]
    assert out.files["processed/v/frame_00.jpg"] == (frames[0].jpeg, "image/jpeg")
    assert out.entries[1] == {
        "index": 1,
        "timestamp": 2.5,
        "s3_key": "processed/v/frame_01.jpg",
        "s3_url": "https://s3/processed/v/frame_01.jpg?sig",
        "path": "/out/processed/v/frame_01.jpg",
        "sharpness": round(frames[1].sharpness, 2),
    }
    assert out.strip is not None and out.strip.shape[1] > 2 * out.strip.shape[0]
    empty = representative_outputs("processed/v/", [], OutputLinks(url=str))
    assert empty.files == {} and empty.entries == [] and empty.strip is None
    assert representative_frame_key("p/", 7) == "p/frame_07.jpg"
    assert contact_strip([scene()] * 3, ["a", "b", "c"], height=90).shape[0] == 90 + 22 + 8


@pytest.mark.parametrize("entries", [None, [], [{"index": 0}]])
def test_manifest_carries_the_frames_after_the_results(entries) -> None:
    manifest = build_manifest(
        video_id="v", bucket="b", key="k", people=[], metrics={},
        video={"duration_s": 1.0, "fps": 25.0, "width": 2, "height": 2},
        representative_frames=entries,
    )  # fmt: skip
    keys = list(manifest)
    if entries is None:
        assert "representative_frames" not in manifest
    else:
        assert keys[keys.index("results") + 1] == "representative_frames"
        assert manifest["representative_frames"] == entries
