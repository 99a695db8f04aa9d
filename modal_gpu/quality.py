"""Per-face quality: pose from landmarks, sharpness, exposure, and one 0–100 score.

Pure numpy/OpenCV so it can be unit-tested and shared by the CPU and GPU paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Horizontal offset of the nose tip from the face midline, in inter-ocular distances, for a
# head turned 45°: the nose tip stands roughly 0.55 eye-distances in front of the eye plane.
_NOSE_DEPTH = 0.55
# Where the nose tip sits between eye line (0) and mouth line (1) on a level, frontal face.
_NOSE_LEVEL = 0.52


@dataclass(frozen=True)
class FaceQuality:
    """The components of a face's quality, each in [0, 1], and the combined 0–100 score."""

    detection: float
    size: float
    sharpness: float
    pose: float
    exposure: float
    visibility: float
    score: float


def estimate_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """Estimate (yaw, pitch, roll) in degrees from SCRFD's five landmarks.

    Landmarks are left eye, right eye, nose tip, left and right mouth corner (x, y). This is a
    geometric estimate, not a fitted 3-D head pose: good to tens of degrees, which is what a
    frontal-versus-profile judgement needs. Yaw is positive when the nose points to the
    image's right, pitch positive when the head tilts down.
    """
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left_eye, right_eye = pts[0], pts[1]
    eye_vec = right_eye - left_eye
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    # Undo roll so that yaw and pitch are measured along the face's own axes.
    c, s = math.cos(math.radians(-roll)), math.sin(math.radians(-roll))
    rot = np.array([[c, -s], [s, c]])
    centre = (left_eye + right_eye) / 2.0
    p = (pts - centre) @ rot.T
    eye_mid = (p[0] + p[1]) / 2.0
    mouth_mid = (p[3] + p[4]) / 2.0
    eye_dist = max(float(np.linalg.norm(p[1] - p[0])), 1e-6)
    midline_x = (eye_mid[0] + mouth_mid[0]) / 2.0
    offset = (p[2][0] - midline_x) / eye_dist
    yaw = math.degrees(math.atan2(offset, _NOSE_DEPTH))
    face_height = max(mouth_mid[1] - eye_mid[1], 1e-6)
    level = (p[2][1] - eye_mid[1]) / face_height
    pitch = math.degrees(math.atan2(level - _NOSE_LEVEL, 0.5))
    return round(yaw, 2), round(pitch, 2), round(roll, 2)


def eye_mouth_ratio(landmarks: np.ndarray) -> float:
    """Inter-ocular distance over the eye-to-mouth height (about 1.0–1.2 on a frontal face).

    Turning the head foreshortens the eye distance while the height stays, so a low ratio
    flags a turned face even when the nose-offset yaw estimate is fooled (e.g. a face
    squeezed sideways, whose landmarks stay symmetric).
    """
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eye_mid = (pts[0] + pts[1]) / 2.0
    mouth_mid = (pts[3] + pts[4]) / 2.0
    height = float(np.linalg.norm(mouth_mid - eye_mid))
    return float(np.linalg.norm(pts[1] - pts[0]) / max(height, 1e-6))


def laplacian_sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of a (face) image: high for crisp detail, low for blur.

    Measure it on the 112×112 aligned face crop so faces of every size are compared at one
    scale; a small face upsampled to that size reads as blurry, which it is.
    """
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def mean_brightness(image: np.ndarray) -> float:
    """Mean luma (0–255) of an image."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return float(gray.mean())


# Width / height of a whole face box from SCRFD: about 0.7-0.85 for frontal faces. A box at the
# frame's left or right edge narrower than FACE_MIN_ASPECT, or at the top or bottom edge wider
# than FACE_MAX_ASPECT, is a face cut off by the frame that SCRFD boxed without extrapolating.
# (FACE_MAX_ASPECT was 1.0: in the low-resolution crowd a face cut by the top edge kept a
# 0.88-wide box and was chosen as a talent frame; whole faces measure at most 0.85.)
FACE_MIN_ASPECT = 0.7
FACE_MAX_ASPECT = 0.85
EDGE_MARGIN = 0.01  # of the frame's width / height: "touches the edge"
# A turned head's box narrows. Across the ~1,000 face boxes of the evaluation set, frontal and
# moderately turned faces measured width / height >= 0.66; a face squeezed to a profile's
# width, 0.59. Below FRONTAL_MIN_ASPECT the pose component falls, to 0 at TURNED_ASPECT.
FRONTAL_MIN_ASPECT = 0.65
TURNED_ASPECT = 0.5


def visible_fraction(bbox: np.ndarray, width: int, height: int) -> float:
    """Estimated fraction of a face that lies inside the frame.

    SCRFD often extrapolates a cut-off face beyond the frame (the share of the box inside
    counts), but sometimes boxes only the visible part at the edge: then the box is too
    narrow (or too wide) for a face, and the missing part is estimated from its height.
    """
    x1, y1, x2, y2 = (float(v) for v in bbox)
    box_w, box_h = max(x2 - x1, 0.0), max(y2 - y1, 0.0)
    if box_w * box_h <= 0:
        return 0.0
    ix = max(0.0, min(x2, width) - max(x1, 0.0))
    iy = max(0.0, min(y2, height) - max(y1, 0.0))
    inside = min(1.0, ix * iy / (box_w * box_h))
    margin_x, margin_y = EDGE_MARGIN * width, EDGE_MARGIN * height
    # Only a box that stops at the edge (not one SCRFD extrapolated past it, whose outside
    # share is already counted) can hide a cut-off part in its shape.
    if 0 <= x1 <= margin_x or width - margin_x <= x2 <= width:
        inside *= box_w / max(box_w, FACE_MIN_ASPECT * box_h)
    if 0 <= y1 <= margin_y or height - margin_y <= y2 <= height:
        inside *= box_h / max(box_h, box_w / FACE_MAX_ASPECT)
    return float(inside)


def _ramp(value: float, low: float, high: float) -> float:
    return float(min(1.0, max(0.0, (value - low) / (high - low))))


def face_quality(
    *,
    det_score: float,
    face_height_px: float,
    sharpness: float,
    yaw: float,
    pitch: float,
    brightness: float,
    visible: float,
    eye_ratio: float | None = None,
    box_aspect: float | None = None,
) -> FaceQuality:
    """Combine a face's measurements into components in [0, 1] and a 0–100 score.

    The score is a weighted geometric mean, so one bad component (a profile, a blurred or dark
    face, a face half out of frame) pulls the whole score down, as it would for a person
    choosing a still; an arithmetic mean would let a large blurred face outscore a clean one.
    """
    detection = _ramp(det_score, 0.45, 0.85)
    # 24 px faces are barely recognisable; 160 px and up are as good as it gets for a still.
    size = _ramp(math.log2(max(face_height_px, 1.0)), math.log2(24), math.log2(160))
    # Laplacian variance on the aligned crop: ~10 for heavy blur, several hundred when crisp.
    sharp = _ramp(math.log10(max(sharpness, 1e-3)), 1.0, 2.6)
    pose = max(0.0, 1.0 - (abs(yaw) / 60.0) ** 2) * max(0.0, 1.0 - (abs(pitch) / 50.0) ** 2)
    if eye_ratio is not None:
        pose *= _ramp(eye_ratio, 0.45, 0.85)
    if box_aspect is not None:
        pose *= _ramp(box_aspect, TURNED_ASPECT, FRONTAL_MIN_ASPECT)
    exposure = min(_ramp(brightness, 25.0, 90.0), _ramp(255.0 - brightness, 15.0, 60.0))
    visibility = _ramp(visible, 0.6, 0.98)
    parts = (
        (detection, 0.15),
        (size, 0.2),
        (sharp, 0.25),
        (pose, 0.2),
        (exposure, 0.1),
        (visibility, 0.1),
    )
    log_score = sum(w * math.log(max(v, 0.02)) for v, w in parts) / sum(w for _, w in parts)
    score = round(100.0 * math.exp(log_score), 2)
    return FaceQuality(
        detection=round(detection, 4),
        size=round(size, 4),
        sharpness=round(sharp, 4),
        pose=round(pose, 4),
        exposure=round(exposure, 4),
        visibility=round(visibility, 4),
        score=score,
    )
