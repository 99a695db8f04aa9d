"""Erasing one person from a video's outputs: which faces go, and hiding them in the frames
of the people who stay. Pure (numpy and OpenCV on arrays); ``infra/erasure.py`` does the I/O.
"""

from __future__ import annotations

import cv2
import numpy as np

#: An unassigned face (person -1) this similar to the erased talent's exemplars is erased
#: too: it is the same person, seen too blurred or too briefly to be assigned. Lower than
#: the cross-video match threshold on purpose: erasure errs on the side of removing.
UNASSIGNED_ERASE_SIMILARITY = 0.35
#: Hidden faces are pixelated over their box widened by this fraction on each side.
HIDE_MARGIN = 0.25
PIXEL_BLOCKS = 6


def faces_to_erase(
    person_id: np.ndarray,
    embeddings: np.ndarray,
    erased_people: set[int],
    exemplars: np.ndarray,
) -> np.ndarray:
    """Mask of the faces to erase: the erased people's, and unassigned faces that match
    their exemplars (see :data:`UNASSIGNED_ERASE_SIMILARITY`)."""
    erase = np.isin(person_id, sorted(erased_people))
    unassigned = person_id < 0
    if len(exemplars) and unassigned.any():
        best = (embeddings[unassigned] @ np.asarray(exemplars, np.float32).T).max(axis=1)
        erase[np.flatnonzero(unassigned)[best >= UNASSIGNED_ERASE_SIMILARITY]] = True
    return erase


def hide_faces(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``image`` with each box (display pixels) pixelated beyond recognition."""
    out = image.copy()
    height, width = out.shape[:2]
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        dx, dy = (x2 - x1) * HIDE_MARGIN, (y2 - y1) * HIDE_MARGIN
        left, top = max(0, int(x1 - dx)), max(0, int(y1 - dy))
        right, bottom = min(width, int(np.ceil(x2 + dx))), min(height, int(np.ceil(y2 + dy)))
        if right <= left or bottom <= top:
            continue
        region = out[top:bottom, left:right]
        small = cv2.resize(region, (PIXEL_BLOCKS, PIXEL_BLOCKS), interpolation=cv2.INTER_AREA)
        out[top:bottom, left:right] = cv2.resize(
            small, (right - left, bottom - top), interpolation=cv2.INTER_NEAREST
        )
    return out


def crop_margin(crop_side: int, bbox: np.ndarray) -> float:
    """The margin a stored face crop was cut with (its side = face size × (1 + 2 margin))."""
    face = max(float(bbox[2] - bbox[0]), float(bbox[3] - bbox[1]), 1.0)
    return max(0.0, (crop_side / face - 1.0) / 2.0)
