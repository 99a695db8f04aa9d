"""The face engine drops faces under 16 px, on real faces.

docs/design.md, section 4 (``face_detections``): ``FaceEngine.analyse`` keeps score >= 0.5,
or 0.4-0.5 with ``face_quality`` >= 30, and then "drop[s] faces under 16 px".

A 160x96 clip shows two real people with faces of 15 and 17 px. SCRFD sees that small frame
at a 640-px input, so it finds both faces as *strong* detections (score >= 0.5, the score
gates keep them); only the size floor can then tell them apart. The engine is the one the
local detector uses (``cached_engine("bundled")``, the default ``min_face_px``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from modal_gpu.face_engine import FaceEngine
from modal_gpu.video import SampledFrame, iter_sampled_frames
from tests.support import media

FLOOR_PX = 16.0


@pytest.fixture(scope="module")
def small_faces_frame(tmp_path_factory: pytest.TempPathFactory) -> SampledFrame:
    """One analysed frame of a 160x96 clip: a 15-px face on the left, a 17-px one on the
    right (face heights of the pasted photos; SCRFD measures about 14 and 16.3 px)."""
    path = tmp_path_factory.mktemp("floor") / "small_faces.mp4"
    media.build_video(
        path,
        [
            media.Segment(
                0.5,
                [
                    media.Appearance(0, pos=(0.3, 0.45), face_px=15),
                    media.Appearance(1, pos=(0.7, 0.45), face_px=17),
                ],
            )
        ],
        size=(160, 96),
        fps=10,
        background="plain",
    )
    frame = next(iter_sampled_frames(path, 2.0))
    assert frame.scale == 1.0  # analysed at display size: image pixels are display pixels
    return frame


def strong_detection_heights(engine: FaceEngine, frame: SampledFrame) -> list[float]:
    """Heights (display px) of SCRFD's raw detections that pass the strong score gate."""
    boxes, _ = engine.detect(frame.image)
    assert boxes is not None
    return sorted(
        float(b[3] - b[1]) * frame.scale for b in boxes if float(b[4]) >= engine.det_threshold
    )


def test_faces_under_16_px_are_dropped(
    small_faces_frame: SampledFrame, face_engine: FaceEngine
) -> None:
    """design: faces under 16 px are dropped. Both faces are strong detections, one just
    under 16 px and one just over: only the one over 16 px is kept."""
    heights = strong_detection_heights(face_engine, small_faces_frame)
    assert len(heights) == 2
    small, large = heights
    assert 13.0 < small < FLOOR_PX <= large < 18.0  # the faces straddle the floor, closely

    kept = face_engine.analyse([small_faces_frame])
    assert len(kept) == 1
    (face,) = kept
    assert float(face.bbox[3] - face.bbox[1]) == pytest.approx(large, abs=1e-3)
    assert face.bbox[0] > small_faces_frame.image.shape[1] / 2  # the right-hand, 17-px face
    assert face.face_index == 0


def test_the_floor_is_in_display_pixels(
    small_faces_frame: SampledFrame, face_engine: FaceEngine
) -> None:
    """design: the floor applies to the face in the video, not in the analysis image. The
    same picture standing for a frame downscaled 2x for analysis (``scale`` 2: a 320x192
    video) shows faces of about 28 and 33 px: both are kept, with display-pixel boxes."""
    downscaled = replace(small_faces_frame, scale=2.0)
    kept = face_engine.analyse([downscaled])
    assert len(kept) == 2
    heights = sorted(float(f.bbox[3] - f.bbox[1]) for f in kept)
    expected = np.array(strong_detection_heights(face_engine, small_faces_frame)) * 2.0
    np.testing.assert_allclose(heights, expected, atol=1e-3)
    assert heights[0] < 2 * FLOOR_PX


def test_the_floor_can_be_lowered(small_faces_frame: SampledFrame, face_engine: FaceEngine) -> None:
    """The drop above is the 16-px floor and nothing else: with the floor lowered to 10 px the
    same engine settings keep the 14-px face too."""
    lowered = FaceEngine("bundled", min_face_px=10.0)
    assert face_engine.min_face_px == FLOOR_PX
    assert len(lowered.analyse([small_faces_frame])) == 2
