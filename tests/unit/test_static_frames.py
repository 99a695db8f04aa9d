"""Static-frame reuse: near-identical sampled frames take the faces of the last analysed one."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest

from modal_gpu.chunks import plan_chunks, static_block_slots
from modal_gpu.detection import detect_video_faces
from modal_gpu.static_frames import StaticFrameFilter, same_picture, thumbnail
from modal_gpu.video import SampledFrame
from tests.support import media

SAMPLE_FPS = 2.0


def _picture(seed: int = 0) -> np.ndarray:
    """A 640x360 frame with texture and a hard-edged bright square (something that can move)."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 255, (360, 640, 3), dtype=np.uint8), (0, 0), 3)
    image[120:220, 260:360] = 235
    image[150:190, 290:330] = 20
    return image


def _frame(image: np.ndarray, slot: int) -> SampledFrame:
    t = slot / SAMPLE_FPS
    return SampledFrame(frame_index=int(t * 25), timestamp_s=t, image=image, scale=1.0)


def test_identical_and_noisy_frames_reuse_the_analysed_one() -> None:
    base = _picture()
    noise = np.random.default_rng(1).integers(-1, 2, base.shape)
    noisy = np.clip(base.astype(int) + noise, 0, 255).astype(np.uint8)
    gate = StaticFrameFilter(SAMPLE_FPS, block_s=5.0)
    assert gate.reference_for(_frame(base, 0)) is None  # the first frame is analysed
    assert gate.reference_for(_frame(base, 1)) == 0
    assert gate.reference_for(_frame(noisy, 2)) == 0  # still frame 0, the analysed one


def test_motion_blur_and_cuts_are_analysed() -> None:
    base = _picture()
    moved = np.roll(base, 2, axis=1)  # the whole picture 2 px to the right
    blurred = base.copy()
    blurred[100:240, 240:380] = cv2.GaussianBlur(base[100:240, 240:380], (0, 0), 0.7)
    other = _picture(seed=7)
    for changed in (moved, blurred, other):
        gate = StaticFrameFilter(SAMPLE_FPS, block_s=5.0)
        assert gate.reference_for(_frame(base, 0)) is None
        assert gate.reference_for(_frame(changed, 1)) is None
        # The changed frame is the new reference.
        assert gate.reference_for(_frame(changed, 2)) == _frame(changed, 1).frame_index
    assert not same_picture(thumbnail(base), thumbnail(blurred))
    assert same_picture(thumbnail(base), thumbnail(base.copy()))


def test_slow_drift_is_measured_against_the_analysed_frame() -> None:
    base = _picture().astype(np.int16)
    gate = StaticFrameFilter(SAMPLE_FPS, block_s=5.0)
    decisions = []
    for slot in range(5):
        image = np.clip(base + 2 * slot, 0, 255).astype(np.uint8)  # 2 grey levels brighter
        decisions.append(gate.reference_for(_frame(image, slot)))
    # +2 from frame 0 is the same picture; +4 is not, so frame 2 is analysed afresh, and so on.
    assert decisions == [None, 0, None, 25, None]


def test_every_block_starts_with_an_analysed_frame_and_zero_turns_reuse_off() -> None:
    base = _picture()
    gate = StaticFrameFilter(SAMPLE_FPS, block_s=2.0)  # 4 slots
    decisions = [gate.reference_for(_frame(base, slot)) for slot in range(9)]
    assert decisions == [None, 0, 0, 0, None, 50, 50, 50, None]
    off = StaticFrameFilter(SAMPLE_FPS, block_s=0.0)
    assert [off.reference_for(_frame(base, slot)) for slot in range(3)] == [None] * 3
    assert static_block_slots(SAMPLE_FPS, 0.0) == 0
    assert static_block_slots(SAMPLE_FPS, 5.0) == 10


@pytest.fixture(scope="module")
def static_then_moving(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s of one still person, then 4 s of another person drifting across the frame."""
    path = tmp_path_factory.mktemp("static") / "static_then_moving.mp4"
    media.build_video(
        path,
        [
            media.Segment(6.0, [media.Appearance(0, pos=(0.5, 0.45), face_px=120)]),
            media.Segment(
                4.0, [media.Appearance(2, pos=(0.3, 0.45), end_pos=(0.7, 0.45), face_px=120)]
            ),
        ],
        size=(640, 360),
        fps=10,
    )
    return path


def test_static_shot_rows_are_copies_and_moving_shot_rows_are_fresh(
    static_then_moving: Path, face_engine
) -> None:
    reused, r_stats = detect_video_faces(
        static_then_moving, video_id="v", engine=face_engine, sample_fps=SAMPLE_FPS
    )
    fresh, f_stats = detect_video_faces(
        static_then_moving, video_id="v", engine=face_engine, sample_fps=SAMPLE_FPS,
        static_block_s=0,
    )  # fmt: skip
    assert r_stats.frames_analyzed == f_stats.frames_analyzed == 20
    assert f_stats.frames_reused == 0
    # Blocks of 5 s: 0-5 s (static: 1 analysed, 9 copied), 5-6 s static (1 + 1), then the
    # moving person: every frame analysed.
    assert r_stats.frames_reused == 10

    # One row per face per sampled frame either way, in the same order.
    assert reused["frame_index"].to_pylist() == fresh["frame_index"].to_pylist()
    assert reused["face_index"].to_pylist() == fresh["face_index"].to_pylist()
    assert reused["timestamp_s"].to_pylist() == fresh["timestamp_s"].to_pylist()
    np.testing.assert_allclose(reused["x1"].to_numpy(), fresh["x1"].to_numpy(), atol=2.0)

    def rows(table: pa.Table, start: float, end: float) -> pa.Table:
        t = table["timestamp_s"].to_numpy()
        return table.filter(pa.array((t >= start) & (t < end)))

    # Within the first block every row is a copy of the one analysed at 0 s...
    block = rows(reused, 0.0, 5.0)
    assert block.num_rows == 10
    for column in ("x1", "y1", "det_score", "face_quality", "embedding"):
        values = block[column].to_pylist()
        assert all(v == values[0] for v in values), column
    # ... and the second block starts afresh: 2 analysed stills (0 s, 5 s) + 8 moving frames.
    assert r_stats.frames_analyzed - r_stats.frames_reused == 10
    # The moving shot: every row analysed, so the boxes move.
    moving = rows(reused, 6.0, 10.0)["x1"].to_numpy()
    assert len(moving) == 8 and len(np.unique(moving)) == 8


def test_chunks_on_block_bounds_give_the_same_rows_as_the_whole(
    static_then_moving: Path, face_engine
) -> None:
    block_s = 2.0
    chunks = plan_chunks(10.0, SAMPLE_FPS, 3.0, align_slots=static_block_slots(SAMPLE_FPS, 2.0))
    assert [c.start_s for c in chunks] == [0.0, 4.0, 8.0]  # 3 s rounded up to 2-s blocks
    parts = [
        detect_video_faces(
            static_then_moving,
            video_id="v",
            engine=face_engine,
            sample_fps=SAMPLE_FPS,
            start_s=c.start_s,
            end_s=c.end_s,
            static_block_s=block_s,
        )
        for c in chunks
    ]
    whole, stats = detect_video_faces(
        static_then_moving, video_id="v", engine=face_engine, sample_fps=SAMPLE_FPS,
        static_block_s=block_s,
    )  # fmt: skip
    joined = pa.concat_tables([table for table, _ in parts])
    assert sum(s.frames_reused for _, s in parts) == stats.frames_reused > 0
    assert joined["frame_index"].to_pylist() == whole["frame_index"].to_pylist()
    assert joined["embedding"].to_pylist() == whole["embedding"].to_pylist()
    assert joined["x1"].to_pylist() == whole["x1"].to_pylist()
