"""Representative frames: N evenly spaced stills of a video, chosen while it is decoded.

Like the keyframe thumbnails of cloud video indexers: point ``i`` of ``N`` sits at
``(i + 0.5) * duration / N`` and owns the window ``[i * duration / N, (i + 1) * duration / N)``
(the point +- duration / 2N), so the windows tile the video and every sampled frame belongs to
exactly one of them (frames past the stated duration to the last one).

Each sampled frame is scored from the small grey thumbnail the static-frame filter makes
anyway (``modal_gpu.static_frames.thumbnail``: cell means and cell detail):

- *brightness*: mean grey level (0-255); *contrast*: spread of the cell means;
  *sharpness*: mean absolute Laplacian (fine detail, i.e. focus) at the analysis size;
- a frame is *blank* when it is very dark (black, the bottom of a fade), very bright (a
  flash, a fade to white) or nearly uniform (a title card's plain field, mid-fade);
- score = sharpness x exposure x proximity, where exposure falls from 1 towards 0 as a frame
  nears the blank limits and proximity falls linearly from 1 at the point to 0.75 at the
  window's edges (a sharp frame a little off the point beats a blurred one on it).

Per window the best frame wins: any non-blank frame beats every blank one; then the higher
score; then the one nearer the point; then the earlier. A window holding only blank frames
keeps the least bad of them (the highest score: the most visible, e.g. the lightest frame of
a fade), so a video whose every window has a sampled frame gives exactly N frames; a window
with no sampled frame at all (N larger than the number of samples) gives none.

The choice of a window depends only on the frames in it, each scored on its own, so chunks
(which see disjoint frames) keep their best per window and :func:`merge_candidates` picks the
same frames as one pass over the whole video. Only the current best frame of each open
window is kept, undecoded beyond what sampling did; it is converted at full size and encoded
as JPEG once its window is closed: no frame is decoded a second time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from modal_gpu.video import SampledFrame, frame_to_bgr

# As talent_assets.core.images.JPEG_QUALITY (the person frames); a test keeps them equal.
JPEG_QUALITY = 92

# Blank limits, grey levels 0-255 (see the module docstring).
DARK = 28.0  # mean below: black or the bottom of a fade
BRIGHT = 235.0  # mean above: white or a flash
FLAT = 6.0  # spread of the cell means below: nearly uniform
# Exposure factor: 1 between these, falling linearly to EXPOSURE_FLOOR at the limits.
WELL_LIT = (64.0, 200.0)
WELL_CONTRASTED = 16.0
EXPOSURE_FLOOR = 0.02
EDGE_PROXIMITY = 0.75  # proximity factor at a window's edges (1 at its point)


@dataclass(frozen=True)
class FrameLook:
    """Cheap measures of one sampled frame, from its thumbnail."""

    brightness: float
    contrast: float
    sharpness: float

    @property
    def blank(self) -> bool:
        return self.brightness < DARK or self.brightness > BRIGHT or self.contrast < FLAT

    @property
    def exposure(self) -> float:
        """1 for a well-lit, contrasted frame, down to EXPOSURE_FLOOR at the blank limits."""
        low, high = WELL_LIT
        dark = (self.brightness - DARK) / (low - DARK)
        bright = (BRIGHT - self.brightness) / (BRIGHT - high)
        flat = (self.contrast - FLAT) / (WELL_CONTRASTED - FLAT)
        return float(np.clip(min(dark, bright, flat, 1.0), EXPOSURE_FLOOR, 1.0))


def look_of(small: np.ndarray) -> FrameLook:
    """The :class:`FrameLook` of a ``static_frames.thumbnail`` (cell means, cell detail)."""
    return FrameLook(
        brightness=float(small[0].mean()),
        contrast=float(small[0].std()),
        sharpness=float(small[1].mean()),
    )


def window_of(timestamp_s: float, count: int, duration_s: float) -> int:
    """The window (0..count-1) a frame at ``timestamp_s`` belongs to."""
    return min(count - 1, max(0, math.floor(timestamp_s * count / duration_s + 1e-9)))


def target_s(window: int, count: int, duration_s: float) -> float:
    """The time of point ``window``: the middle of its window."""
    return (window + 0.5) * duration_s / count


def frame_score(look: FrameLook, timestamp_s: float, count: int, duration_s: float) -> float:
    """sharpness x exposure x proximity of a frame to its window's point."""
    window = window_of(timestamp_s, count, duration_s)
    half = duration_s / (2 * count)
    distance = min(1.0, abs(timestamp_s - target_s(window, count, duration_s)) / half)
    proximity = 1.0 - (1.0 - EDGE_PROXIMITY) * distance
    return look.sharpness * look.exposure * proximity


@dataclass(frozen=True)
class Candidate:
    """The best frame a chunk saw in one window, encoded; ``rank`` orders candidates."""

    window: int
    timestamp_s: float
    frame_index: int
    sharpness: float
    brightness: float
    contrast: float
    score: float
    blank: bool
    distance_s: float
    jpeg: bytes = b""

    def rank(self) -> tuple[bool, float, float, float]:
        return (not self.blank, self.score, -self.distance_s, -self.timestamp_s)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        return cls(**data)


def merge_candidates(*groups: Iterable[Candidate]) -> list[Candidate]:
    """The best candidate per window over all ``groups`` (e.g. chunks), in window order."""
    best: dict[int, Candidate] = {}
    for group in groups:
        for candidate in group:
            held = best.get(candidate.window)
            if held is None or candidate.rank() > held.rank():
                best[candidate.window] = candidate
    return [best[w] for w in sorted(best)]


def encode_jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - imencode fails only for unsupported formats
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


class RepresentativePicker:
    """Keeps the best frame per window of one time-ordered pass; encodes each window's
    winner once the pass has moved past the window.

    ``offer`` takes a :class:`SampledFrame` decoded with ``keep_source=True`` (its decoded
    picture, so the winner can be converted at full size without decoding it again).
    """

    def __init__(self, count: int, duration_s: float) -> None:
        self.count = count if duration_s > 0 else 0
        self.duration_s = duration_s
        self._open: dict[int, tuple[Candidate, Any]] = {}  # window -> (unencoded, source)
        self._done: list[Candidate] = []

    @property
    def enabled(self) -> bool:
        return self.count > 0

    def offer(self, frame: SampledFrame, small: np.ndarray) -> None:
        """Consider ``frame`` (with its thumbnail ``small``) for its window."""
        if not self.enabled:
            return
        window = window_of(frame.timestamp_s, self.count, self.duration_s)
        for older in [w for w in self._open if w < window]:
            self._close(older)
        look = look_of(small)
        candidate = Candidate(
            window=window,
            timestamp_s=frame.timestamp_s,
            frame_index=frame.frame_index,
            sharpness=round(look.sharpness, 4),
            brightness=round(look.brightness, 2),
            contrast=round(look.contrast, 2),
            score=round(frame_score(look, frame.timestamp_s, self.count, self.duration_s), 4),
            blank=look.blank,
            distance_s=round(abs(frame.timestamp_s - target_s(window, self.count,
                                                              self.duration_s)), 6),
        )  # fmt: skip
        held = self._open.get(window)
        if held is None or candidate.rank() > held[0].rank():
            self._open[window] = (candidate, frame.source if frame.source is not None else frame)

    def _close(self, window: int) -> None:
        candidate, source = self._open.pop(window)
        image = source.image if isinstance(source, SampledFrame) else frame_to_bgr(source)[0]
        self._done.append(_with_jpeg(candidate, encode_jpeg(image)))

    def finish(self) -> list[Candidate]:
        """The encoded best frame of every window this pass saw, in window order."""
        for window in sorted(self._open):
            self._close(window)
        return merge_candidates(self._done)


def _with_jpeg(candidate: Candidate, jpeg: bytes) -> Candidate:
    return Candidate(**{**asdict(candidate), "jpeg": jpeg})
