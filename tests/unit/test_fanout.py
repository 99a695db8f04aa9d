"""Chunked detection: a long video on both cores gives the same faces and people as one chunk."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from modal_gpu.chunks import auto_chunk_seconds, plan_chunks
from modal_gpu.fanout import detect_in_chunks
from talent_assets.core.clustering import ClusteringParams, FaceArrays, cluster_identities
from tests.support import media

pytestmark = pytest.mark.slow

SAMPLE_FPS = 0.5  # a 10-minute video still has 300 sampled frames: enough, and quick


@pytest.fixture(scope="module")
def ten_minute_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 minutes, 640x360 at 5 fps: three people taking turns, in 20-second shots."""
    segments = [
        media.Segment(20.0, [media.Appearance(i % 3, pos=(0.5, 0.45), face_px=110)])
        for i in range(30)
    ]
    path = tmp_path_factory.mktemp("long") / "ten_minutes.mp4"
    started = time.perf_counter()
    media.build_video(path, segments, size=(640, 360), fps=5, background="plain")
    print(f"built a 10-minute video in {time.perf_counter() - started:.1f} s")
    return path


def test_two_workers_match_one_chunk(ten_minute_video: Path) -> None:
    duration = 600.0
    chunks = plan_chunks(duration, SAMPLE_FPS, auto_chunk_seconds(duration, workers=2))
    assert len(chunks) == 2
    parallel, p_stats = detect_in_chunks(
        ten_minute_video, video_id="long", pack="bundled", sample_fps=SAMPLE_FPS,
        chunks=chunks, workers=2,
    )  # fmt: skip
    whole, w_stats = detect_in_chunks(
        ten_minute_video, video_id="long", pack="bundled", sample_fps=SAMPLE_FPS,
        chunks=plan_chunks(duration, SAMPLE_FPS, 0), workers=1,
    )  # fmt: skip
    # Both cores were used: two worker processes, running at the same time.
    assert p_stats.extra["worker_processes"] == 2
    assert p_stats.extra["parallel_s"] > 0.25 * p_stats.wall_s
    assert p_stats.frames_analyzed == w_stats.frames_analyzed == 300

    # The same faces, frame for frame, in the same order.
    assert parallel["frame_index"].to_pylist() == whole["frame_index"].to_pylist()
    assert parallel["face_index"].to_pylist() == whole["face_index"].to_pylist()
    np.testing.assert_allclose(
        parallel["x1"].to_numpy(), whole["x1"].to_numpy(), atol=0.5
    )  # 1 vs 2 ORT threads may differ in the last bits
    # And the same people.
    people = [
        cluster_identities(FaceArrays.from_table(t), ClusteringParams()) for t in (parallel, whole)
    ]
    assert people[0].people == people[1].people == 3
    assert people[0].person_id.tolist() == people[1].person_id.tolist()
