"""Near-identical frames in static shots: analyse once, reuse the faces.

An interview or a presenter in front of a still camera gives long runs of sampled frames that
differ only by encoder noise. Detecting and embedding each of them costs ~40 ms of CPU and
finds the same faces. :class:`StaticFrameFilter` compares a small grey thumbnail of each
sampled frame (cell brightness and cell detail) with the last *analysed* one (not the
previous frame, so slow drift adds up and triggers a fresh analysis) and says when the faces
can be copied instead.

Determinism across chunks: the reference frame is forgotten at every block boundary (every
``block_s`` seconds of the sampling grid) and the first sampled frame of each block is always
analysed. A decision therefore depends only on frames of its own block, and chunk bounds on
block multiples (``plan_chunks(..., align_slots=static_block_slots(...))``, both in
``modal_gpu.chunks``) give the same rows whichever way a video is split. The block also
bounds how stale a copied face can be.
"""

from __future__ import annotations

import cv2
import numpy as np

from modal_gpu.chunks import STATIC_BLOCK_S, static_block_slots
from modal_gpu.video import SampledFrame, sample_slot

# Largest change of any thumbnail cell for "the same picture", in grey levels (0-255):
# - brightness (the cell's mean): static shots measured 1.0 (rounding), handheld and
#   talking-head clips 10 and more; a face moving by a pixel shifts its outline's cells by
#   several levels;
# - detail (the cell's mean absolute Laplacian): cell means are blind to a change of focus,
#   which a best frame must see; blurring a face with sigma 0.5 px moved it by 6 (1280-px
#   frame) to 17 (640 px), static shots by <= 1, sensor-like noise (sigma 3) by 8-9: noisy
#   footage is simply analysed.
STATIC_MAX_DIFF = 3.0
STATIC_MAX_DETAIL_DIFF = 4.0
THUMBNAIL_WIDTH = 64  # cells across: 20 px square on a 1280-px analysis frame


def thumbnail(image: np.ndarray) -> np.ndarray:
    """Two small maps of a BGR frame, (2, h, w) float32: each cell's mean grey level and its
    mean absolute Laplacian (how much fine detail, i.e. focus, it holds)."""
    height, width = image.shape[:2]
    size = (THUMBNAIL_WIDTH, max(1, round(THUMBNAIL_WIDTH * height / width)))
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    detail = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    return np.stack(
        [
            cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32),
            cv2.resize(detail, size, interpolation=cv2.INTER_AREA),
        ]
    )


def same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two :func:`thumbnail` maps show the same picture (up to noise)."""
    if a.shape != b.shape:
        return False
    return (
        float(np.abs(a[0] - b[0]).max()) <= STATIC_MAX_DIFF
        and float(np.abs(a[1] - b[1]).max()) <= STATIC_MAX_DETAIL_DIFF
    )


class StaticFrameFilter:
    """Says, frame by frame in time order, whose faces a sampled frame can reuse."""

    def __init__(self, sample_fps: float, block_s: float = STATIC_BLOCK_S) -> None:
        self.sample_fps = sample_fps
        self.block_slots = static_block_slots(sample_fps, block_s)
        self._reference: tuple[int, int, np.ndarray] | None = None  # block, frame, thumbnail

    def thumbnail_for(self, frame: SampledFrame) -> np.ndarray | None:
        """``frame``'s :func:`thumbnail`, or None when reuse is off (a few ms per 720p frame:
        callers may make it in another thread and pass it to :meth:`reference_for`)."""
        return thumbnail(frame.image) if self.block_slots else None

    def reference_for(self, frame: SampledFrame, small: np.ndarray | None = None) -> int | None:
        """The ``frame_index`` of an analysed frame showing the same picture, or None when
        ``frame`` must be analysed (it then becomes the reference). ``small``: the frame's
        thumbnail if already made."""
        if not self.block_slots:
            return None
        block = sample_slot(frame.timestamp_s, self.sample_fps) // self.block_slots
        if small is None:
            small = thumbnail(frame.image)
        if self._reference is not None:
            ref_block, ref_frame, ref_small = self._reference
            if ref_block == block and same_picture(small, ref_small):
                return ref_frame
        self._reference = (block, frame.frame_index, small)
        return None
