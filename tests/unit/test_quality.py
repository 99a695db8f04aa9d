"""Unit tests for modal_gpu.quality: pose from landmarks, sharpness, exposure, the score."""

from __future__ import annotations

import dataclasses
import itertools
import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modal_gpu.quality import (
    FaceQuality,
    estimate_pose,
    face_quality,
    laplacian_sharpness,
    mean_brightness,
    visible_fraction,
)

# A level, frontal face: eyes 40 px apart, nose tip on the midline at 52 % of the way from
# the eye line to the mouth line (the module's neutral pitch), mouth centred below.
FRONTAL = np.array(
    [
        [30.0, 40.0],  # left eye
        [70.0, 40.0],  # right eye
        [50.0, 40.0 + 0.52 * 40.0],  # nose tip
        [35.0, 80.0],  # left mouth corner
        [65.0, 80.0],  # right mouth corner
    ]
)
CENTRE = np.array([50.0, 60.0])


def rotate(points: np.ndarray, degrees: float, centre: np.ndarray = CENTRE) -> np.ndarray:
    """Rotate image points (x right, y down) by ``degrees`` about ``centre``."""
    t = math.radians(degrees)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return (points - centre) @ rot.T + centre


def with_nose_shift(dx: float) -> np.ndarray:
    pts = FRONTAL.copy()
    pts[2, 0] += dx
    return pts


# --- estimate_pose ----------------------------------------------------------------------


def test_frontal_face_is_level() -> None:
    yaw, pitch, roll = estimate_pose(FRONTAL)
    assert yaw == pytest.approx(0.0, abs=0.5)
    assert pitch == pytest.approx(0.0, abs=0.5)
    assert roll == pytest.approx(0.0, abs=0.5)


def test_accepts_flat_ten_floats() -> None:
    assert estimate_pose(FRONTAL.reshape(10)) == estimate_pose(FRONTAL)


def test_nose_right_gives_positive_yaw_growing_with_shift() -> None:
    yaws = [estimate_pose(with_nose_shift(dx))[0] for dx in (0.0, 4.0, 10.0, 20.0)]
    assert yaws[0] == pytest.approx(0.0, abs=0.5)
    assert all(y > 0 for y in yaws[1:])
    assert yaws == sorted(yaws)
    assert yaws[1] < yaws[2] < yaws[3]
    # Half an eye distance off the midline is a strong turn (> 30°) but not beyond 90°.
    assert 30.0 < yaws[3] < 90.0


def test_nose_left_gives_negative_yaw_symmetric() -> None:
    right = estimate_pose(with_nose_shift(10.0))[0]
    left = estimate_pose(with_nose_shift(-10.0))[0]
    assert left < 0
    assert left == pytest.approx(-right, abs=0.05)


def test_nose_low_gives_positive_pitch() -> None:
    pts = FRONTAL.copy()
    pts[2, 1] += 8.0  # nose tip nearer the mouth: head tilted down
    pitch_down = estimate_pose(pts)[1]
    pts[2, 1] -= 16.0
    pitch_up = estimate_pose(pts)[1]
    assert pitch_down > 5.0
    assert pitch_up < -5.0


@pytest.mark.parametrize("angle", [20.0, -20.0, 45.0])
def test_rotation_shows_as_roll_only(angle: float) -> None:
    yaw, pitch, roll = estimate_pose(rotate(FRONTAL, angle))
    assert roll == pytest.approx(angle, abs=0.1)
    assert yaw == pytest.approx(0.0, abs=0.5)
    assert pitch == pytest.approx(0.0, abs=0.5)


def test_yaw_is_measured_along_the_face_axes() -> None:
    """A turned head that is also rolled keeps its yaw: roll is undone before yaw."""
    turned = with_nose_shift(10.0)
    yaw0, pitch0, _ = estimate_pose(turned)
    yaw20, pitch20, roll20 = estimate_pose(rotate(turned, 20.0))
    assert roll20 == pytest.approx(20.0, abs=0.1)
    assert yaw20 == pytest.approx(yaw0, abs=0.2)
    assert pitch20 == pytest.approx(pitch0, abs=0.2)


def test_pose_is_scale_and_translation_invariant() -> None:
    turned = with_nose_shift(6.0)
    moved = turned * 3.5 + np.array([400.0, -20.0])
    assert estimate_pose(moved) == pytest.approx(estimate_pose(turned), abs=0.05)


# --- sharpness and brightness -----------------------------------------------------------


def textured_image(seed: int = 0, size: int = 112) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size=(size, size), dtype=np.uint8)
    checker = ((np.indices((size, size)).sum(axis=0) // 8) % 2 * 120).astype(np.uint8)
    return cv2.addWeighted(noise, 0.5, checker, 0.5, 0)


def test_sharpness_decreases_with_blur() -> None:
    image = textured_image()
    values = [laplacian_sharpness(image)]
    for sigma in (0.8, 1.5, 3.0, 6.0):
        values.append(laplacian_sharpness(cv2.GaussianBlur(image, (0, 0), sigma)))
    assert all(a > b for a, b in itertools.pairwise(values)), values
    assert values[0] > 10 * values[-1]


def test_sharpness_of_flat_image_is_zero() -> None:
    assert laplacian_sharpness(np.full((112, 112), 77, np.uint8)) == 0.0


def test_sharpness_accepts_bgr() -> None:
    gray = textured_image(1)
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    assert laplacian_sharpness(bgr) == pytest.approx(laplacian_sharpness(gray), rel=1e-6)


def test_mean_brightness() -> None:
    assert mean_brightness(np.full((10, 10), 100, np.uint8)) == pytest.approx(100.0)
    assert mean_brightness(np.zeros((4, 4), np.uint8)) == 0.0
    half = np.zeros((10, 10), np.uint8)
    half[:, 5:] = 200
    assert mean_brightness(half) == pytest.approx(100.0)
    bgr = np.full((8, 8, 3), 180, np.uint8)
    assert mean_brightness(bgr) == pytest.approx(180.0, abs=0.5)
    # Luma weights green most: a pure green image is brighter than a pure blue one.
    green = np.zeros((8, 8, 3), np.uint8)
    green[..., 1] = 255
    blue = np.zeros((8, 8, 3), np.uint8)
    blue[..., 0] = 255
    assert mean_brightness(green) > mean_brightness(blue)


# --- visible_fraction -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        ((100, 100, 200, 200), 1.0),
        # Filling the frame's height with a square box: wider than any whole face (<= 0.85),
        # so the top or bottom is cut.
        ((0, 0, 480, 480), 0.85),
        ((0, 0, 640, 480), 480 / (640 / 0.85)),  # wider still at the top and bottom edges
        ((2, 100, 36, 200), 34 / 70),  # narrow at the left edge: boxed without extrapolating
        ((604, 100, 638, 200), 34 / 70),  # the same at the right edge
        ((100, 100, 134, 200), 1.0),  # as narrow, away from the edges: a profile, not cut
        ((100, 2, 220, 92), 90 / (120 / 0.85)),  # wide at the top edge: forehead cut
        ((100, 2, 170, 82), 80 / (70 / 0.85)),  # a 0.88-wide box at the top edge: cut a little
        ((-50, 100, 50, 200), 0.5),  # half out on the left
        ((590, 100, 690, 200), 0.5),  # half out on the right
        ((100, -50, 200, 50), 0.5),  # half out at the top
        ((100, 430, 200, 530), 0.5),  # half out at the bottom
        ((-50, -50, 50, 50), 0.25),  # corner
        ((700, 100, 800, 200), 0.0),  # entirely outside
        ((100, 100, 100, 200), 0.0),  # zero width
        ((200, 200, 100, 100), 0.0),  # inverted
    ],
)
def test_visible_fraction(bbox: tuple[float, ...], expected: float) -> None:
    assert visible_fraction(np.array(bbox, dtype=np.float32), 640, 480) == pytest.approx(expected)


# --- face_quality -----------------------------------------------------------------------

GOOD = {
    "det_score": 0.92,
    "face_height_px": 220.0,
    "sharpness": 600.0,
    "yaw": 0.0,
    "pitch": 0.0,
    "brightness": 120.0,
    "visible": 1.0,
    "eye_ratio": 1.1,
    "box_aspect": 0.75,
}


def components(q: FaceQuality) -> list[float]:
    return [q.detection, q.size, q.sharpness, q.pose, q.exposure, q.visibility]


def test_clean_face_scores_top() -> None:
    q = face_quality(**GOOD)
    assert components(q) == [1.0] * 6
    assert q.score == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("change", "component"),
    [
        ({"sharpness": 8.0}, "sharpness"),
        ({"brightness": 12.0}, "exposure"),
        ({"brightness": 250.0}, "exposure"),
        ({"yaw": 55.0}, "pose"),
        ({"yaw": -55.0}, "pose"),
        ({"pitch": 45.0}, "pose"),
        ({"face_height_px": 20.0}, "size"),
        ({"visible": 0.5}, "visibility"),
        ({"det_score": 0.4}, "detection"),
        ({"eye_ratio": 0.55}, "pose"),  # eyes close together for the face's height: turned
        ({"box_aspect": 0.55}, "pose"),  # a box narrower than a frontal face's: turned
    ],
)
def test_each_defect_lowers_the_score(change: dict[str, float], component: str) -> None:
    good = face_quality(**GOOD)
    bad = face_quality(**{**GOOD, **change})
    assert bad.score < good.score - 10, (change, bad)
    assert getattr(bad, component) < getattr(good, component)
    # Only the affected component moved.
    for field in dataclasses.fields(FaceQuality):
        if field.name not in (component, "score"):
            assert getattr(bad, field.name) == getattr(good, field.name)


def test_one_bad_component_outweighs_size() -> None:
    """Geometric mean: a large blurred face loses to a smaller crisp one."""
    big_blurred = face_quality(**{**GOOD, "face_height_px": 400.0, "sharpness": 8.0})
    mid_crisp = face_quality(**{**GOOD, "face_height_px": 90.0})
    assert mid_crisp.score > big_blurred.score


def test_score_decreases_monotonically_with_yaw() -> None:
    scores = [face_quality(**{**GOOD, "yaw": y}).score for y in (0, 10, 20, 30, 45, 60, 90)]
    assert all(a >= b for a, b in itertools.pairwise(scores)), scores
    assert scores[0] > scores[-1]


def test_score_increases_with_sharpness() -> None:
    scores = [face_quality(**{**GOOD, "sharpness": s}).score for s in (5, 20, 60, 150, 400)]
    assert all(a < b for a, b in itertools.pairwise(scores)), scores


def test_worst_face_stays_in_range() -> None:
    q = face_quality(
        det_score=0.0,
        face_height_px=0.0,
        sharpness=0.0,
        yaw=180.0,
        pitch=-180.0,
        brightness=0.0,
        visible=0.0,
    )
    assert components(q) == [0.0] * 6
    assert 0.0 <= q.score < 5.0


@settings(max_examples=300, deadline=None)
@given(
    det_score=st.floats(-1.0, 2.0),
    face_height_px=st.floats(-10.0, 1e5),
    sharpness=st.floats(-10.0, 1e7),
    yaw=st.floats(-180.0, 180.0),
    pitch=st.floats(-180.0, 180.0),
    brightness=st.floats(0.0, 255.0),
    visible=st.floats(0.0, 1.0),
    eye_ratio=st.none() | st.floats(0.0, 5.0),
    box_aspect=st.none() | st.floats(0.0, 5.0),
)
def test_property_score_and_components_in_range(
    det_score: float,
    face_height_px: float,
    sharpness: float,
    yaw: float,
    pitch: float,
    brightness: float,
    visible: float,
    eye_ratio: float | None,
    box_aspect: float | None,
) -> None:
    q = face_quality(
        det_score=det_score,
        face_height_px=face_height_px,
        sharpness=sharpness,
        yaw=yaw,
        pitch=pitch,
        brightness=brightness,
        visible=visible,
        eye_ratio=eye_ratio,
        box_aspect=box_aspect,
    )
    assert 0.0 <= q.score <= 100.0
    for value in components(q):
        assert 0.0 <= value <= 1.0
