"""The face engine's score gates, on real faces."""

from __future__ import annotations

import pytest

from modal_gpu.face_engine import WEAK_DETECTION_MIN_QUALITY, FaceEngine
from modal_gpu.video import SampledFrame, iter_sampled_frames
from tests.support import media


@pytest.fixture(scope="module")
def clean_and_dark_frame(tmp_path_factory: pytest.TempPathFactory) -> SampledFrame:
    """One frame: a clean face on the left, a badly underexposed one on the right."""
    path = tmp_path_factory.mktemp("gates") / "clean_and_dark.mp4"
    media.build_video(
        path,
        [
            media.Segment(
                1.0,
                [
                    media.Appearance(0, pos=(0.3, 0.45), face_px=130),
                    media.Appearance(1, pos=(0.7, 0.45), face_px=130, degradation="dark"),
                ],
            )
        ],
        size=(640, 360),
        fps=10,
    )
    return next(iter_sampled_frames(path, 2.0))


def test_weak_detections_are_kept_only_when_the_face_is_clear(
    clean_and_dark_frame: SampledFrame, face_engine
) -> None:
    # With the default gates both faces are strong detections and are kept.
    both = face_engine.analyse([clean_and_dark_frame])
    assert len(both) == 2
    assert min(f.det_score for f in both) >= face_engine.det_threshold
    clean, dark = sorted(both, key=lambda f: f.bbox[0])
    assert clean.face_quality >= WEAK_DETECTION_MIN_QUALITY > dark.face_quality

    # Raise the strong gate above both scores: both become weak detections, and only the
    # clear face passes the quality test for weak ones.
    strict = FaceEngine("bundled", det_threshold=0.99, weak_det_threshold=0.4)
    kept = strict.analyse([clean_and_dark_frame])
    assert len(kept) == 1
    assert kept[0].bbox[0] == pytest.approx(clean.bbox[0], abs=1.0)
    assert kept[0].face_index == 0

    # And below the weak gate nothing is kept at all.
    none = FaceEngine("bundled", det_threshold=0.999, weak_det_threshold=0.999)
    assert none.analyse([clean_and_dark_frame]) == []


def test_a_weak_gate_above_the_strong_one_drops_no_strong_detection(
    clean_and_dark_frame: SampledFrame, face_engine
) -> None:
    """A weak gate set above the strong one must not turn strong detections away: both faces
    score above the strong gate, so both are kept, as with the defaults."""
    both = face_engine.analyse([clean_and_dark_frame])
    lowest = min(f.det_score for f in both)
    inverted = FaceEngine("bundled", det_threshold=lowest - 0.05, weak_det_threshold=0.999)
    kept = inverted.analyse([clean_and_dark_frame])
    assert len(kept) == 2
    assert sorted(f.det_score for f in kept) == pytest.approx(sorted(f.det_score for f in both))
