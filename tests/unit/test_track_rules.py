"""The similarity rules of tracks and of merging tracks into people, at their thresholds.

docs/design.md, section 4 (``identity_clusters``):

- "``build_tracks`` links all faces frame to frame (IoU >= 0.2 and cosine >= 0.5 between two
  identifiable faces, 0.35 when one is blurred or occluded [...])"; ``build_tracks``'s
  docstring adds "unless the box barely moved (IoU >= ``track_same_place_iou``)", 0.7;
- "distances scaled by ``size_scale`` so that tracks whose smaller median face is <= 60 px
  need 0.10 more similarity (fading out by 120 px)";
- README, ``identity_clusters``: the threshold is "stricter for small faces (look-alikes at
  low resolution)".

The faces are synthetic, built with the helpers of ``test_identity_evidence`` (calibrated to
the bundled models: clean faces norm 23, quality 80, in focus; a blurred face norm 16). The
similarities sit on either side of each threshold on purpose: 0.45 is a look-alike in a
panning crowd (measured up to 0.46), 0.55 the same person whose face changed; 0.43 between two
tracks is above the bundled cut for large faces (0.38) and below it for small ones (0.48).
"""

from __future__ import annotations

import numpy as np
import pytest

from talent_assets.core.clustering import (
    ClusteringParams,
    cluster_identities,
    size_scale,
    threshold_for_pack,
)
from tests.unit.test_identity_evidence import BOX, SAMPLE_FPS, Faces, blend, person

PARAMS = ClusteringParams(sample_fps=SAMPLE_FPS)
BLURRED_NORM = 16.0  # a defocused face's embedding norm: below the identifiable floor of 19


def shifted(dx: float, box: tuple[float, float, float, float] = BOX) -> tuple[float, ...]:
    x1, y1, x2, y2 = box
    return (x1 + dx, y1, x2 + dx, y2)


def iou_after_shift(dx: float) -> float:
    """IoU of ``BOX`` with itself moved ``dx`` px sideways (equal heights)."""
    width = BOX[2] - BOX[0]
    return (width - dx) / (width + dx)


# Sideways moves of the 80-px-wide ``BOX`` between two samples: "moderate" leaves the boxes
# overlapping enough to track (IoU >= 0.2) but not "in place" (IoU < 0.7); "in place" does.
MODERATE_DX = 17.0
IN_PLACE_DX = 11.0


def two_samples(
    similarity: float, dx: float, *, first_norm: float = 23.0, second_norm: float = 23.0
) -> list[int]:
    """Track ids of two consecutive samples (0.5 s apart) of faces ``similarity`` alike, the
    second box moved ``dx`` px, as ``cluster_identities`` links them."""
    faces = Faces()
    identity = person(21)
    faces.add(0, identity, norm=first_norm)
    faces.add(1, blend(identity, similarity, 22), box=shifted(dx), norm=second_norm)
    arrays = faces.arrays()
    assert float(arrays.embeddings[0] @ arrays.embeddings[1]) == pytest.approx(similarity, 1e-5)
    return cluster_identities(arrays, PARAMS).track_id.tolist()


def linked(track_ids: list[int]) -> bool:
    return track_ids[0] == track_ids[1]


def test_the_box_moves_are_moderate_and_in_place() -> None:
    """The geometry the tests below rely on: both moves keep IoU >= 0.2; only one reaches
    0.7."""
    assert PARAMS.track_iou <= iou_after_shift(MODERATE_DX) < 0.65
    assert iou_after_shift(IN_PLACE_DX) > 0.75


def test_two_identifiable_faces_need_cosine_half_to_extend_a_track() -> None:
    """design: cosine >= 0.5 between two identifiable faces: 0.45 (a look-alike) breaks the
    track, 0.55 extends it, when the box moved (IoU about 0.65)."""
    assert not linked(two_samples(0.45, MODERATE_DX))
    assert linked(two_samples(0.55, MODERATE_DX))


@pytest.mark.parametrize("blurred", ["first", "second"])
def test_a_blurred_face_extends_a_track_from_cosine_0_35(blurred: str) -> None:
    """design: 0.35 (not 0.5) when one of the two faces is blurred or occluded, i.e. not
    identifiable: the same 0.45 that breaks a track of two clear faces now extends it, and
    0.30 still breaks it."""
    norms = {"first_norm": BLURRED_NORM} if blurred == "first" else {"second_norm": BLURRED_NORM}
    assert linked(two_samples(0.45, MODERATE_DX, **norms))
    assert linked(two_samples(0.38, MODERATE_DX, **norms))
    assert not linked(two_samples(0.30, MODERATE_DX, **norms))


def test_a_face_that_stayed_in_place_extends_its_track_from_cosine_0_35() -> None:
    """design / ``build_tracks``: two identifiable faces whose box barely moved (IoU >= 0.7)
    need only 0.35: the same 0.45 links in place (IoU about 0.76), and 0.30 does not."""
    assert linked(two_samples(0.45, IN_PLACE_DX))
    assert linked(two_samples(0.38, IN_PLACE_DX))
    assert not linked(two_samples(0.30, IN_PLACE_DX))


# --- size-aware merging of tracks into people ----------------------------------------------


def face_box(height: float, left: float) -> tuple[float, float, float, float]:
    """A face box of ``height`` px (width 0.8 x height) with its left edge at ``left``."""
    return (left, 100.0, left + 0.8 * height, 100.0 + height)


def people_of_two_tracks(similarity: float, heights: tuple[float, float]) -> int:
    """People found in two shots (a cut: the box jumps and 3 s pass) of four clean faces
    each; the shots' embeddings are ``similarity`` alike, their faces ``heights`` px high."""
    faces = Faces()
    first = person(31)
    second = blend(first, similarity, 32)
    for frame in range(4):
        faces.add(frame, first, box=face_box(heights[0], 100.0))
    for frame in range(10, 14):
        faces.add(frame, second, box=face_box(heights[1], 700.0))
    result = cluster_identities(faces.arrays(), PARAMS)
    assert result.identifiable.all()
    assert len(np.unique(result.track_id)) == 2
    return result.people


# The bundled cut, 0.62, lets tracks whose means are 0.38 alike merge; small faces need 0.48.
BETWEEN_CUTS = 0.43


def test_small_face_tracks_need_more_similarity_to_be_one_person() -> None:
    """design: tracks whose smaller median face is <= 60 px need 0.10 more similarity to
    merge; README: the threshold is "stricter for small faces". Two shots 0.43 alike are one
    person with 150-px faces and two people with 50-px faces."""
    assert PARAMS.threshold == threshold_for_pack("bundled") == 0.62
    assert people_of_two_tracks(BETWEEN_CUTS, (150.0, 150.0)) == 1
    assert people_of_two_tracks(BETWEEN_CUTS, (50.0, 50.0)) == 2
    # At 60 px the full 0.10 still applies (0.475 < 0.48)...
    assert people_of_two_tracks(0.475, (60.0, 60.0)) == 2
    # ...and small faces still merge when they are clearly one person (0.55 > 0.48).
    assert people_of_two_tracks(0.55, (50.0, 50.0)) == 1


def test_the_smaller_of_the_two_faces_decides() -> None:
    """design: the *smaller* median face of the pair counts: one small-face track keeps a
    large-face track from merging at 0.43, whichever of them comes first."""
    assert people_of_two_tracks(BETWEEN_CUTS, (50.0, 150.0)) == 2
    assert people_of_two_tracks(BETWEEN_CUTS, (150.0, 50.0)) == 2


def test_the_extra_similarity_fades_out_by_120_px() -> None:
    """design: "fading out by 120 px": halfway (90 px) the extra is 0.05 (cut at 0.43
    similarity), at 120 px nothing."""
    assert people_of_two_tracks(0.41, (90.0, 90.0)) == 2
    assert people_of_two_tracks(0.45, (90.0, 90.0)) == 1
    assert people_of_two_tracks(0.40, (120.0, 120.0)) == 1


@pytest.mark.parametrize(
    ("smaller_px", "extra"),
    [(20.0, 0.10), (60.0, 0.10), (75.0, 0.075), (90.0, 0.05), (105.0, 0.025), (120.0, 0.0),
     (400.0, 0.0)],
)  # fmt: skip
def test_size_scale_asks_small_faces_for_up_to_0_10_more_similarity(
    smaller_px: float, extra: float
) -> None:
    """design: the pure rule behind the cut. A pair of tracks merges when its scaled distance
    is <= the threshold, i.e. its similarity is >= (1 - threshold) + extra, with extra 0.10
    up to 60 px falling linearly to 0 at 120 px (of the smaller of the two faces)."""
    sizes = np.array([smaller_px, 500.0])
    scale = size_scale(sizes, PARAMS)
    allowed_distance = PARAMS.threshold / scale[0, 1]
    assert PARAMS.threshold - allowed_distance == pytest.approx(extra, abs=1e-9)
    assert scale[0, 1] == scale[1, 0]
    assert scale[1, 1] == pytest.approx(1.0)  # two large faces: the plain cut
