"""A clip for representative frames, built at test time: sharp shots, a fade through black,
a blurred stretch, a black stretch, a white flash and a plain grey card, on a known script.

Every frame also carries a bar whose position is its frame number, so no two frames are
alike and a JPEG can be matched to the one frame it shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

FPS = 25
SIZE = (1600, 900)  # wider than the 1280-px analysis size: "full frame" is visible
DURATION_S = 10.0

# (start, end, what) in seconds; anything not listed shows the sharp shot of its second.
BAD = "bad"  # black, fading, white or uniform
BLUR = "blur"


@dataclass(frozen=True)
class Stretch:
    start_s: float
    end_s: float
    kind: str  # "fade_out", "black", "fade_in", "blur", "white", "grey"

    def covers(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


#: The script. With N = 5 the windows are [0,2) [2,4) [4,6) [6,8) [8,10), points 1,3,5,7,9:
#: window 0 fades through black around its point, window 1 is blurred around its point,
#: window 2 is black throughout, window 3 flashes white around its point, window 4 shows a
#: plain grey card around its point; the rest of every window is a sharp shot.
SCRIPT = (
    Stretch(0.3, 0.7, "fade_out"),
    Stretch(0.7, 1.3, "black"),
    Stretch(1.3, 1.7, "fade_in"),
    Stretch(2.5, 3.6, "blur"),
    Stretch(4.0, 6.0, "black"),
    Stretch(6.5, 7.5, "white"),
    Stretch(8.4, 9.6, "grey"),
)


def stretch_at(t: float) -> Stretch | None:
    return next((s for s in SCRIPT if s.covers(t)), None)


def visibility(t: float) -> float:
    """How much of the sharp shot the frame at ``t`` shows: 1 outside the script, the fade's
    level inside a fade, 0 for black, white, the grey card and the blurred stretch."""
    stretch = stretch_at(t)
    if stretch is None:
        return 1.0
    u = (t - stretch.start_s) / (stretch.end_s - stretch.start_s)
    return {"fade_out": 1.0 - u, "fade_in": u}.get(stretch.kind, 0.0)


def _shot(seed: int) -> np.ndarray:
    """A sharp, busy picture: rectangles, circles and lines on a gradient."""
    width, height = SIZE
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = np.linspace(60, 170, width, dtype=np.uint8)[None, :, None]
    for _ in range(60):
        colour = tuple(int(c) for c in rng.integers(20, 235, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(20, 160))
        shape = rng.integers(0, 3)
        if shape == 0:
            cv2.rectangle(image, (x, y), (x + size, y + size // 2), colour, -1)
        elif shape == 1:
            cv2.circle(image, (x, y), size // 2, colour, -1, cv2.LINE_AA)
        else:
            cv2.line(image, (x, y), (x + size, y + size), colour, 3, cv2.LINE_AA)
    return image


def _fade(image: np.ndarray, alpha: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * alpha, 0, 255).astype(np.uint8)


def frame_at(index: int, shots: dict[int, np.ndarray]) -> np.ndarray:
    """Frame ``index`` of the clip (BGR)."""
    t = index / FPS
    shot = shots[min(int(t // 2), 4)]
    stretch = stretch_at(t)
    kind = stretch.kind if stretch else None
    if kind == "fade_out":
        image = _fade(shot, 1 - (t - stretch.start_s) / (stretch.end_s - stretch.start_s))
    elif kind == "fade_in":
        image = _fade(shot, (t - stretch.start_s) / (stretch.end_s - stretch.start_s))
    elif kind == "black":
        image = np.zeros_like(shot)
    elif kind == "white":
        image = np.full_like(shot, 250)
    elif kind == "grey":
        image = np.full_like(shot, 128)
    elif kind == "blur":
        image = cv2.GaussianBlur(shot, (0, 0), 6)
    else:
        image = shot.copy()
    if kind not in ("black", "white", "grey"):  # the frame counter: a bar at x = 6 * index
        x = 6 * index % (SIZE[0] - 12)
        cv2.rectangle(image, (x, SIZE[1] - 40), (x + 8, SIZE[1] - 10), (255, 255, 255), -1)
    return image


def fade_clip(directory: Path) -> Path:
    """Encode the clip (H.264, keyframe every second) to ``directory/fades.mp4``."""
    path = Path(directory) / "fades.mp4"
    if path.exists():
        return path
    shots = {i: _shot(100 + i) for i in range(5)}
    tmp = path.with_name(".fades.partial.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"preset": "veryfast", "crf": "18", "x264-params": "keyint=25"}
        for index in range(round(DURATION_S * FPS)):
            frame = av.VideoFrame.from_ndarray(frame_at(index, shots), format="bgr24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    os.replace(tmp, path)
    return path
