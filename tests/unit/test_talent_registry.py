"""The talent registry's pure core: exemplars, similarity between people, grouping people of
many videos into talents, stable talent ids, curation replay, events and erasure.

``talent_assets/core/talent_matching.py``, ``talent_registry.py`` and ``erasure.py``.

Claims about *matching* run on REAL embeddings of real faces, made by the bundled pack's
``FaceEngine`` (the pixels-to-embedding path of a run):

* Barack Obama in three different photographs (``face_recognition`` 1.3.0's test photos,
  ``benchmarks/eval_set.py``) and Joe Biden in one: the only different photos of one person
  we have. Measured with this pack: 0.65-0.72 between Obama's photos (single faces and
  members alike), <= 0.22 between any two of the people used here.
* people of insightface's ``t1.jpg`` (``tests/support/media.py``), shown as the evaluation
  set's variants (mirror, warm, cool, soft). ``t1_p1`` is the bridge case: its mildly
  defocused look ("soft") scores 0.38-0.42 to the sharp one (below the 0.55 threshold),
  while a video that shows both looks (joined by its track) scores 0.75-0.77 to each.

Synthetic vectors only where the claim is pure graph or id logic (which group a link is
allowed to make, which id a group gets), with similarities spelled out.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from benchmarks.eval_set import FACE_RECOGNITION_BOXES, VARIANTS, face_recognition_image
from modal_gpu.video import SampledFrame
from talent_assets.core.erasure import (
    HIDE_MARGIN,
    UNASSIGNED_ERASE_SIMILARITY,
    crop_margin,
    faces_to_erase,
    hide_faces,
)
from talent_assets.core.images import crop_face
from talent_assets.core.talent_matching import (
    TOP_PAIRS,
    Link,
    Member,
    choose_exemplars,
    group_members,
    match_threshold,
    member_links,
    member_similarity,
)
from talent_assets.core.talent_registry import (
    REGISTRY_ACTOR,
    Curation,
    Grouping,
    curation_from_events,
    group_into_talents,
    registry_event,
    talent_code,
)
from tests.support import media

THRESHOLD = match_threshold("bundled")
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TALENT_ID = re.compile(r"T[a-z2-7]{6}")
EVENT_FIELDS = {
    "event_id",
    "occurred_at",
    "actor",
    "event",
    "talent_id",
    "other_talent_id",
    "name",
    "detail",
}
DIM = 512
Key = tuple[str, int]

# --------------------------------------------------------------------------------------------
# Real faces
# --------------------------------------------------------------------------------------------

#: The looks embedded once per module: name -> (source, chain of eval-set variants).
#: Sources: "obama.jpg" etc. (face_recognition photos), "t1_p<n>" (insightface's t1 cast).
LOOKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ob1": ("obama.jpg", ()),
    "ob1_mirror": ("obama.jpg", ("mirror",)),
    "ob1_warm": ("obama.jpg", ("warm",)),
    "ob2": ("obama2.jpg", ()),
    "ob2_mirror": ("obama2.jpg", ("mirror",)),
    "ob2_warm": ("obama2.jpg", ("warm",)),
    "ob3": ("obama3.jpg", ()),
    "ob3_mirror": ("obama3.jpg", ("mirror",)),
    "biden": ("biden.jpg", ()),
    "biden_mirror": ("biden.jpg", ("mirror",)),
    "p1": ("t1_p1", ()),
    "p1_mirror": ("t1_p1", ("mirror",)),
    "p1_warm": ("t1_p1", ("warm",)),
    "p1_soft": ("t1_p1", ("soft",)),
    "p1_mirror_soft": ("t1_p1", ("mirror", "soft")),
    "p1_cool_soft": ("t1_p1", ("cool", "soft")),
    "p1_warm_soft": ("t1_p1", ("warm", "soft")),
    "p0": ("t1_p0", ()),
    "p0_mirror": ("t1_p0", ("mirror",)),
    "p2": ("t1_p2", ()),
    "p3": ("t1_p3", ()),
}


@dataclass(frozen=True)
class Faces:
    """Real embeddings (unit, float32) and face qualities by look name."""

    embedding: dict[str, np.ndarray]
    quality: dict[str, float]

    def __call__(self, *names: str) -> np.ndarray:
        """The looks' embeddings stacked: a member's exemplars."""
        return np.stack([self.embedding[n] for n in names])


def _source(name: str) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    if name.startswith("t1_p"):
        person = media.t1_cast()[int(name[4:])]
        return np.ascontiguousarray(person.image), person.face_box
    return face_recognition_image(name), FACE_RECOGNITION_BOXES[name]


def _analyse(engine: Any, image: np.ndarray) -> list[Any]:
    return engine.analyse([SampledFrame(0, 0.0, np.ascontiguousarray(image), 1.0)])


@pytest.fixture(scope="module")
def faces(face_engine: Any) -> Faces:
    """Every look of :data:`LOOKS`, one clear face each, embedded by the bundled engine."""
    transforms = {v.name: v.transform for v in VARIANTS}
    embedding, quality = {}, {}
    for name, (source, chain) in LOOKS.items():
        image, box = _source(source)
        for variant in chain:
            image, box = transforms[variant](np.ascontiguousarray(image), box)
        found = _analyse(face_engine, image)
        assert len(found) == 1, (name, len(found))
        embedding[name] = found[0].embedding.astype(np.float32)
        quality[name] = float(found[0].face_quality)
    return Faces(embedding, quality)


def test_the_real_faces_sit_where_the_threshold_expects(faces: Faces) -> None:
    """The premises of the real-embedding tests below (measured: another photo of one man
    0.65-0.71 as members, two people <= 0.22 for their closest faces, t1_p1 soft to sharp
    0.38-0.42 and either to a video showing both 0.75-0.77), asserted with room."""
    obama = [faces("ob1", "ob1_mirror"), faces("ob2", "ob2_mirror"), faces("ob3", "ob3_mirror")]
    for a, b in itertools.combinations(obama, 2):
        assert 0.60 <= member_similarity(a, b) <= 0.80
    people = {
        "obama": faces("ob1", "ob2", "ob3"),
        "biden": faces("biden", "biden_mirror"),
        "p0": faces("p0", "p0_mirror"),
        "p1": faces("p1", "p1_soft"),
        "p2": faces("p2"),
        "p3": faces("p3"),
    }
    for a, b in itertools.combinations(people.values(), 2):
        assert float((a @ b.T).max()) <= 0.40  # different people: one pair at most 0.40
    sharp, soft = faces("p1", "p1_mirror"), faces("p1_soft", "p1_mirror_soft")
    both = faces("p1_warm", "p1_warm_soft")
    assert member_similarity(sharp, soft) <= THRESHOLD - 0.08
    assert member_similarity(sharp, faces("p1_cool_soft")) <= THRESHOLD - 0.05
    assert member_similarity(sharp, both) >= THRESHOLD + 0.15
    assert member_similarity(soft, both) >= THRESHOLD + 0.15


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def blend(base: np.ndarray, similarity: float, seed: int) -> np.ndarray:
    """A unit vector with cosine ``similarity`` to the unit vector ``base``."""
    noise = np.random.default_rng(seed).normal(size=base.shape[-1])
    noise = noise - (noise @ base) * base
    noise /= np.linalg.norm(noise)
    return unit(similarity * base + np.sqrt(1 - similarity**2) * noise)


def identity(seed: int) -> np.ndarray:
    return unit(np.random.default_rng(seed).normal(size=DIM))


def member(
    video: str, person: int, exemplars: np.ndarray, day: float, talent_id: str | None = None
) -> Member:
    return Member(
        video, person, np.asarray(exemplars, np.float32), T0 + timedelta(days=day), talent_id
    )


def enrolment(talent_id: str, exemplars: np.ndarray, day: float) -> Member:
    return member(f"enrol:{talent_id}", -1, exemplars, day, talent_id)


def ids_by_key(members: Sequence[Member], grouping: Grouping) -> dict[Key, str]:
    return {m.key: t for m, t in zip(members, grouping.talent_ids, strict=True)}


def partition(members: Sequence[Member], grouping: Grouping) -> set[frozenset[Key]]:
    groups: dict[str, set[Key]] = {}
    for m, talent in zip(members, grouping.talent_ids, strict=True):
        groups.setdefault(talent, set()).add(m.key)
    return {frozenset(g) for g in groups.values()}


def index_groups(members: Sequence[Member], groups: list[list[int]]) -> set[frozenset[Key]]:
    return {frozenset(members[i].key for i in g) for g in groups}


def carried(members: Sequence[Member], grouping: Grouping) -> list[Member]:
    """The members as the next update sees them: each with the talent id it got."""
    return [
        dataclasses.replace(m, talent_id=t)
        for m, t in zip(members, grouping.talent_ids, strict=True)
    ]


def group(
    members: Sequence[Member], curation: Curation | None = None, days: float = 30
) -> Grouping:
    return group_into_talents(members, curation or Curation(), THRESHOLD, T0 + timedelta(days=days))


def rows_of(chosen: np.ndarray, embeddings: np.ndarray) -> list[int]:
    """The input row each chosen exemplar is (exact match)."""
    return [int(np.flatnonzero((embeddings == row).all(axis=1))[0]) for row in chosen]


def leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v)
    else:
        yield value


def assert_plain_event(event: dict[str, Any]) -> None:
    """A ``talent_events`` row: the fixed columns, scalars only, a detail of no numbers but
    member keys' person ids (never an embedding)."""
    assert set(event) == EVENT_FIELDS
    for key, value in event.items():
        assert value is None or isinstance(value, str | datetime), key
    assert not any(isinstance(v, float) for v in leaves(json.loads(event["detail"])))


# --------------------------------------------------------------------------------------------
# 1. choose_exemplars
# --------------------------------------------------------------------------------------------


def _two_looks(faces: Faces) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Obama in two photographs (the best faces: photo 1), then worse faces that are the most
    different of all: other people and defocused shots, the worse half by quality."""
    names = [
        *("ob1", "ob1_mirror", "ob1_warm"),  # look 1, quality 95-93
        *("ob2", "ob2_mirror", "ob2_warm"),  # look 2, quality 80-78
        *("biden", "p0", "p2", "p3", "p1_soft", "p1_cool_soft"),  # quality 30-10
    ]
    quality = np.array([95, 94, 93, 80, 79, 78, 30, 25, 20, 15, 12, 10], np.float64)
    order = np.random.default_rng(3).permutation(len(names))  # input order must not matter
    return [names[i] for i in order], faces(*(names[i] for i in order)), quality[order]


def test_choose_exemplars_at_most_k_best_first_diverse_never_the_worse_half(
    faces: Faces,
) -> None:
    """choose_exemplars: at most k; the best-quality face first; two looks of one person are
    both represented before a second face of either; never a face of the worse half by
    quality, however different it is (a blurred outlier is not picked for being different)."""
    names, embeddings, quality = _two_looks(faces)
    look = {n: n[:3] for n in names}
    worse_half = {n for n, q in zip(names, quality, strict=True) if q < 50}
    for k in (1, 2, 3, 5):
        chosen = [names[i] for i in rows_of(choose_exemplars(embeddings, quality, k), embeddings)]
        assert len(chosen) == k
        assert len(set(chosen)) == k
        assert chosen[0] == "ob1"  # the best face
        assert not set(chosen) & worse_half, (k, chosen)
        if k >= 2:  # both looks, although look 1 alone has three better faces
            assert {look[n] for n in chosen} == {"ob1", "ob2"}, chosen
    # Fewer faces than k: all of them; none: an empty (0, dim) array.
    few = choose_exemplars(faces("ob1", "ob2"), np.array([1.0, 2.0]), k=5)
    assert len(few) == 2 and (few[0] == faces("ob2")[0]).all()
    assert choose_exemplars(np.zeros((0, DIM), np.float32), np.zeros(0), k=5).shape == (0, DIM)


def test_choose_exemplars_on_many_faces_keeps_k() -> None:
    """At most k out of many (the pool is the better half: more than k)."""
    rng = np.random.default_rng(0)
    embeddings = unit(rng.normal(size=(40, DIM)))
    quality = rng.uniform(0, 100, 40)
    chosen = choose_exemplars(embeddings, quality, k=5)
    assert chosen.shape == (5, DIM)
    rows = rows_of(chosen, embeddings)
    assert rows[0] == int(np.argmax(quality))
    assert all(quality[r] >= np.median(quality) for r in rows)


# --------------------------------------------------------------------------------------------
# 2. member_similarity
# --------------------------------------------------------------------------------------------


def test_member_similarity_is_the_mean_of_the_top_pairs_and_symmetric(faces: Faces) -> None:
    """member_similarity: the mean of the best 3 exemplar-pair cosines, so one lucky pair
    (the same photo in both, everything else other people) does not make a match, while two
    different photos of one man do; and symmetric."""
    assert TOP_PAIRS == 3
    lucky_a = faces("ob1", "p0", "p2")
    lucky_b = faces("ob1_warm", "biden", "p3")
    pairs = np.sort((lucky_a.astype(np.float64) @ lucky_b.T.astype(np.float64)).ravel())
    assert pairs[-1] >= 0.9  # the lucky pair
    lucky = member_similarity(lucky_a, lucky_b)
    assert lucky == pytest.approx(pairs[-3:].mean(), abs=1e-5)
    assert lucky < THRESHOLD - 0.1

    same_man = member_similarity(faces("ob1", "ob1_mirror"), faces("ob2", "ob2_mirror"))
    assert same_man >= THRESHOLD + 0.05
    # Fewer pairs than TOP_PAIRS: the mean of those there are; no exemplars: -1.
    one_each = member_similarity(faces("ob1"), faces("ob3", "p0"))
    assert one_each == pytest.approx(float((faces("ob1") @ faces("ob3", "p0").T).mean()))
    assert member_similarity(faces("ob1"), np.zeros((0, DIM), np.float32)) == -1.0

    names = list(LOOKS)
    rng = np.random.default_rng(1)
    for _ in range(30):
        a = faces(*rng.choice(names, size=rng.integers(1, 6), replace=False))
        b = faces(*rng.choice(names, size=rng.integers(1, 6), replace=False))
        assert member_similarity(a, b) == pytest.approx(member_similarity(b, a), abs=1e-6)


# --------------------------------------------------------------------------------------------
# 3. member_links
# --------------------------------------------------------------------------------------------


def naive_links(members: Sequence[Member], threshold: float) -> list[tuple[Key, Key, float]]:
    """Every pair scored: the definition member_links' prefilter must reproduce."""
    found = []
    for i, j in itertools.combinations(range(len(members)), 2):
        if members[i].video_id == members[j].video_id:
            continue
        similarity = member_similarity(members[i].exemplars, members[j].exemplars)
        if similarity >= threshold:
            found.append((members[i].key, members[j].key, similarity))
    return sorted(found, key=lambda x: (-x[2], x[0], x[1]))


def random_members(seed: int) -> list[Member]:
    """Members of a few identities with exemplars at varied similarity (0.3-0.95) to them,
    0-5 exemplars each, several per video, in random order: many pairs have one good
    exemplar pair but a low mean (what the prefilter must not drop)."""
    rng = np.random.default_rng(seed)
    identities = [identity(seed * 100 + k) for k in range(6)]
    members = []
    for n in range(60):
        who = identities[rng.integers(len(identities))]
        count = int(rng.integers(0, 6))
        exemplars = np.zeros((count, DIM), np.float32)
        for e in range(count):
            exemplars[e] = blend(who, rng.uniform(0.3, 0.95), seed * 1000 + n * 10 + e)
        video = f"v{rng.integers(0, 15):02d}"
        members.append(member(video, n, exemplars, float(rng.integers(0, 20))))
    # Members without exemplars first and last too (the blocks must skip them).
    empty = np.zeros((0, DIM), np.float32)
    return [member("v99", 98, empty, 0), *members, member("v99", 99, empty, 0)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_member_links_prefilter_equals_brute_force(seed: int) -> None:
    """member_links: with its block-max prefilter, exactly the links (pairs, similarities and
    order) of scoring every pair of different videos; strongest first, ties by keys."""
    members = random_members(seed)
    threshold = 0.5
    expected = naive_links(members, threshold)
    links = member_links(members, threshold)
    got = [(members[x.a].key, members[x.b].key, x.similarity) for x in links]
    assert got == expected
    # The prefilter mattered: pairs whose best exemplar pair passes but whose mean does not.
    near = sum(
        1
        for a, b in itertools.combinations(members, 2)
        if a.video_id != b.video_id
        and len(a.exemplars)
        and len(b.exemplars)
        and float((a.exemplars @ b.exemplars.T).max())
        >= threshold
        > member_similarity(a.exemplars, b.exemplars)
    )
    assert len(expected) >= 50 and near >= 5, (len(expected), near)
    assert all(x.a < x.b for x in links)


def test_member_links_only_across_videos_in_a_total_order(faces: Faces) -> None:
    """Two members of one video are never linked, however alike; equal similarities come in
    key order, so the order of the links is total."""
    obama = faces("ob1", "ob1_mirror")
    members = [
        member("v2", 0, obama, 0),
        member("v2", 1, obama, 0),  # the same faces, same video: never linked
        member("v1", 0, obama, 0),  # equally like both of v2's
        member("v0", 3, faces("ob2", "ob2_mirror"), 0),
        member("v3", 0, faces("biden"), 0),
    ]
    links = member_links(members, THRESHOLD)
    pairs = [(members[x.a].key, members[x.b].key) for x in links]
    assert all(members[x.a].video_id != members[x.b].video_id for x in links)
    # The two identical pairs first (similarity exactly equal), by keys; then v0's.
    assert pairs[:2] == [(("v2", 0), ("v1", 0)), (("v2", 1), ("v1", 0))]
    assert links[0].similarity == links[1].similarity
    assert {p for p in pairs[2:]} == {
        (("v2", 0), ("v0", 3)),
        (("v2", 1), ("v0", 3)),
        (("v1", 0), ("v0", 3)),
    }
    sims = [x.similarity for x in links]
    assert sims == sorted(sims, reverse=True)
    assert all(not ({("v3", 0)} & set(p)) for p in pairs)  # Biden matches nobody

    # Four identical members of four videos: six equal links, in the order of their keys.
    alike = [member(f"w{n}", 0, obama, 0) for n in range(4)]
    tied = [(alike[x.a].key[0], alike[x.b].key[0]) for x in member_links(alike, THRESHOLD)]
    assert tied == list(itertools.combinations(["w0", "w1", "w2", "w3"], 2))


# --------------------------------------------------------------------------------------------
# 4. group_members
# --------------------------------------------------------------------------------------------


def test_two_people_of_one_video_never_share_a_group() -> None:
    """group_members: a third person like both people of one video joins the one it is more
    like (Kruskal: the stronger link first), never both; nor does a chain of allowed links
    put two people of one video together."""
    b = identity(1)
    for stronger in (0, 1):
        sims = (0.8, 0.7) if stronger == 0 else (0.7, 0.8)
        members = [
            member("A", 0, np.stack([blend(b, sims[0], 2)]), 0),
            member("A", 1, np.stack([blend(b, sims[1], 3)]), 0),
            member("B", 0, np.stack([b]), 1),
        ]
        groups = group_members(members, member_links(members, THRESHOLD))
        assert index_groups(members, groups) == {
            frozenset({("A", stronger), ("B", 0)}),
            frozenset({("A", 1 - stronger)}),
        }
    # a1 - b, c - a2, then b - c would put a1 and a2 together: refused.
    chain = [member("A", 0, b[None], 0), member("B", 0, b[None], 0)]
    chain += [member("C", 0, b[None], 0), member("A", 1, b[None], 0)]
    links = [Link(0, 1, 0.9), Link(2, 3, 0.85), Link(1, 2, 0.8), Link(0, 2, 0.7)]
    assert group_members(chain, links) == [[0, 1], [2, 3]]


def test_two_enrolments_never_share_a_group() -> None:
    """group_members: a person like two enrolled talents joins the nearer enrolment; the two
    enrolments (person -1, talent id set) are never one group, directly or through people."""
    b = identity(4)
    members = [
        enrolment("Taaaaaa", np.stack([blend(b, 0.7, 5)]), 0),
        enrolment("Tbbbbbb", np.stack([blend(b, 0.8, 6)]), 0),
        member("v1", 0, np.stack([b]), 1),
        member("v2", 0, np.stack([blend(b, 0.9, 7)]), 2),
    ]
    groups = group_members(members, member_links(members, THRESHOLD))
    assert groups == [[0], [1, 2, 3]]
    links = [Link(0, 2, 0.9), Link(1, 3, 0.9), Link(2, 3, 0.8), Link(0, 1, 0.7)]
    assert group_members(members, links) == [[0, 2], [1, 3]]
    # One enrolment with many videos is fine: the rule is about two enrolments.
    assert group_members(members[1:], member_links(members[1:], THRESHOLD)) == [[0, 1, 2]]


# --------------------------------------------------------------------------------------------
# 5. Order independence (real faces)
# --------------------------------------------------------------------------------------------


def world(faces: Faces) -> list[Member]:
    """Five videos and one enrolment of real people; who is who is known:
    Obama (three photos, and an enrolment from one of them), Biden twice, t1_p0 twice,
    t1_p1 sharp in one video, soft in another and both in a third, t1_p2 and t1_p3 once."""
    return [
        member("v1", 0, faces("ob1", "ob1_mirror"), 0),
        member("v1", 1, faces("p0", "p0_mirror"), 0),
        member("v1", 2, faces("p1", "p1_mirror"), 0),
        member("v2", 0, faces("ob2", "ob2_mirror", "ob2_warm"), 1),
        member("v2", 1, faces("biden"), 1),
        member("v2", 2, faces("p1_soft", "p1_mirror_soft"), 1),
        member("v3", 0, faces("ob3"), 2),
        member("v3", 1, faces("p0_mirror"), 2),
        member("v3", 2, faces("p2"), 2),
        member("v4", 0, faces("p1_warm", "p1_warm_soft"), 3),
        member("v4", 1, faces("biden_mirror"), 3),
        member("v5", 0, faces("p3"), 4),
        enrolment("Tobama2", faces("ob3_mirror"), 0.5),
    ]


TRUTH = {
    frozenset({("v1", 0), ("v2", 0), ("v3", 0), ("enrol:Tobama2", -1)}),
    frozenset({("v1", 1), ("v3", 1)}),
    frozenset({("v1", 2), ("v2", 2), ("v4", 0)}),
    frozenset({("v2", 1), ("v4", 1)}),
    frozenset({("v3", 2)}),
    frozenset({("v5", 0)}),
}


def test_grouping_is_right_and_independent_of_member_order(faces: Faces) -> None:
    """group_into_talents on any permutation of the same real members: the same partition
    (the true one) and the same ids, so the order in which videos arrived does not matter."""
    members = world(faces)
    reference = group(members)
    assert partition(members, reference) == TRUTH
    expected_ids = ids_by_key(members, reference)
    assert expected_ids[("enrol:Tobama2", -1)] == "Tobama2"  # the enrolment names its group
    rng = np.random.default_rng(5)
    orders = [list(reversed(members))] + [
        [members[i] for i in rng.permutation(len(members))] for _ in range(6)
    ]
    for shuffled in orders:
        grouping = group(shuffled)
        assert partition(shuffled, grouping) == TRUTH
        assert ids_by_key(shuffled, grouping) == expected_ids


def test_an_exact_tie_between_two_enrolments_is_broken_the_same_in_any_order(
    faces: Faces,
) -> None:
    """Order independence with an exact tie: one photo enrolled as two talents, and a video
    of that man. He joins one of the two enrolments; which one must not depend on order."""
    members = [
        enrolment("Taaaaaa", faces("ob3"), 0),
        enrolment("Tzzzzzz", faces("ob3"), 0),
        member("m", 0, faces("ob1", "ob1_mirror"), 1),
    ]
    seen = {frozenset(partition(p, group(p))) for p in itertools.permutations(members)}
    assert len(seen) == 1, seen


# --------------------------------------------------------------------------------------------
# 6. Stable ids: keep, merge, split
# --------------------------------------------------------------------------------------------


def test_rerunning_with_previous_ids_keeps_every_id(faces: Faces) -> None:
    """Stable ids: the next update, each member carrying the id it got, gives every member
    the same id again and records no event."""
    members = world(faces)
    first = group(members)
    again = group(carried(members, first), days=31)
    assert again.talent_ids == first.talent_ids
    assert again.events == []
    assert all(TALENT_ID.fullmatch(t) for t in first.talent_ids)


def bridge_world(faces: Faces) -> tuple[list[Member], Member]:
    """t1_p1 sharp in v1 (one person), soft in v2 and v3 (two): apart. Then v4 shows both
    looks (the track joined them): the bridge. Biden and t1_p0 are bystanders."""
    before = [
        member("v1", 0, faces("p1", "p1_mirror"), 0),
        member("v2", 0, faces("p1_soft", "p1_mirror_soft"), 1),
        member("v2", 1, faces("biden"), 1),
        member("v3", 0, faces("p0"), 2),
        member("v3", 1, faces("p1_cool_soft"), 2),
    ]
    bridge = member("v4", 0, faces("p1_warm", "p1_warm_soft"), 3)
    return before, bridge


@pytest.mark.parametrize("older", ["sharp", "soft"])
def test_a_bridge_merges_two_talents_into_the_older(faces: Faces, older: str) -> None:
    """A new member that bridges two talents merges them: the older talent (by
    curation.created), not the one with more members nor the smaller id, keeps its id; one
    ``merge`` event (actor registry, other_talent_id = the younger) is returned."""
    before, bridge = bridge_world(faces)
    first = group(before, days=2)
    ids = ids_by_key(before, first)
    sharp, soft = ids[("v1", 0)], ids[("v2", 0)]
    assert sharp != soft and ids[("v3", 1)] == soft  # soft has two members, sharp one
    keep, other = (sharp, soft) if older == "sharp" else (soft, sharp)
    curation = Curation(created={keep: T0, other: T0 + timedelta(days=1)})
    now = T0 + timedelta(days=4)
    members = [*carried(before, first), bridge]
    merged = group_into_talents(members, curation, THRESHOLD, now)
    after = ids_by_key(members, merged)
    p1 = [("v1", 0), ("v2", 0), ("v3", 1), ("v4", 0)]
    assert {after[k] for k in p1} == {keep}
    assert after[("v2", 1)] == ids[("v2", 1)] and after[("v3", 0)] == ids[("v3", 0)]
    assert len(merged.events) == 1
    (event,) = merged.events
    assert (event["event"], event["talent_id"], event["other_talent_id"]) == ("merge", keep, other)
    assert event["actor"] == REGISTRY_ACTOR and event["occurred_at"] == now
    assert_plain_event(event)
    # Replayed, the younger id is an alias of the older; the next update changes nothing.
    replayed = curation_from_events(merged.events)
    assert replayed.resolve(other) == keep
    assert group(carried(members, merged), replayed, days=5).events == []


def test_when_the_bridge_goes_the_larger_part_keeps_the_id(faces: Faces) -> None:
    """A talent whose members fall into two groups (its bridging video is gone): the larger
    part keeps the id, the rest gets a new one, and a ``split`` event records it."""
    before, bridge = bridge_world(faces)
    members = [*before, bridge]
    merged = group(members)
    talent = ids_by_key(members, merged)[("v1", 0)]
    assert ids_by_key(members, merged)[("v3", 1)] == talent
    remaining = carried(members, merged)[:-1]  # v4 deleted
    now = T0 + timedelta(days=40)
    split = group_into_talents(remaining, Curation(created={talent: T0}), THRESHOLD, now)
    after = ids_by_key(remaining, split)
    assert after[("v2", 0)] == after[("v3", 1)] == talent  # two members: the larger part
    rest = after[("v1", 0)]
    assert rest != talent and TALENT_ID.fullmatch(rest)
    assert [(e["event"], e["talent_id"], e["other_talent_id"]) for e in split.events] == [
        ("split", rest, talent)
    ]
    assert split.events[0]["actor"] == REGISTRY_ACTOR
    assert_plain_event(split.events[0])


def test_a_cannot_link_splits_a_talent_and_the_larger_part_keeps_it(faces: Faces) -> None:
    """A cannot-link appears inside a talent (a second enrolment that one of its people is
    more like): that person leaves with the new enrolment, the larger part keeps the id, and
    the registry records a ``split`` (never a merge of the two enrolled talents)."""
    t, u = "Tttttt2", "Tuuuuu2"
    members = [
        member("v2", 0, faces("ob2", "ob2_mirror"), 2, t),
        enrolment(t, faces("ob1_mirror"), 0),
        member("v1", 0, faces("ob1", "ob1_warm"), 1, t),
        enrolment(u, faces("ob2_warm"), 5),
    ]
    events = [
        registry_event("enrol", t, T0, actor="alice", name="Barack Obama"),
        registry_event("enrol", u, T0 + timedelta(days=5), actor="bob", name="Obama"),
    ]
    grouping = group(members, curation_from_events(events))
    after = ids_by_key(members, grouping)
    assert after[(f"enrol:{t}", -1)] == after[("v1", 0)] == t
    assert after[(f"enrol:{u}", -1)] == after[("v2", 0)] == u
    assert [(e["event"], e["talent_id"], e["other_talent_id"]) for e in grouping.events] == [
        ("split", u, t)
    ]


def test_an_enrolment_keeps_its_own_talent_id(faces: Faces) -> None:
    """An enrolled talent's photos stay under its id: T (enrolled "Barack Obama" from
    obama3.jpg) held two videos of the lectern speech (obama2.jpg); then U is enrolled from
    a still of that speech. The speech's people join U (more alike), T keeps its enrolment
    and its id, and no merge of U into T is recorded."""
    t, u = "Tttttt2", "Tuuuuu2"
    members = [
        enrolment(t, faces("ob3", "ob3_mirror"), 0),
        member("v1", 0, faces("ob2_mirror"), 1, t),
        member("v2", 0, faces("ob2"), 2, t),
        enrolment(u, faces("ob2_warm"), 5),
    ]
    events = [
        registry_event("enrol", t, T0, actor="alice", name="Barack Obama"),
        registry_event("enrol", u, T0 + timedelta(days=5), actor="bob", name="Obama"),
    ]
    grouping = group(members, curation_from_events(events))
    after = ids_by_key(members, grouping)
    assert partition(members, grouping) == {
        frozenset({(f"enrol:{t}", -1)}),
        frozenset({("v1", 0), ("v2", 0), (f"enrol:{u}", -1)}),
    }
    assert after[(f"enrol:{t}", -1)] == t
    assert after[(f"enrol:{u}", -1)] == u
    assert not [e for e in grouping.events if e["event"] == "merge"]


# --------------------------------------------------------------------------------------------
# 7. New ids
# --------------------------------------------------------------------------------------------


def test_new_ids_come_from_the_founder_and_rebuild_the_same(faces: Faces) -> None:
    """A new id is T + 6 of [a-z2-7], a hash of the founder (earliest seen_at, then key):
    the same members with no previous ids get the same ids in another run, in another
    order, at another time; moving the founder changes the id."""
    members = world(faces)
    first = group(members, days=10)
    again = group(list(reversed(members)), days=99)
    assert ids_by_key(members, first) == ids_by_key(list(reversed(members)), again)
    obama_ids = {t for m, t in zip(members, first.talent_ids, strict=True) if m.key[0] == "v1"}
    assert all(TALENT_ID.fullmatch(t) for t in obama_ids)

    obama = [
        member("vb", 1, faces("ob2"), 3),
        member("va", 7, faces("ob1"), 2),  # the founder: earliest
        member("vc", 0, faces("ob3"), 2.5),
    ]
    (talent,) = set(group(obama).talent_ids)
    assert talent == talent_code("va/7", set())
    obama[2] = dataclasses.replace(obama[2], seen_at=T0 + timedelta(days=1))
    (talent,) = set(group(obama).talent_ids)
    assert talent == talent_code("vc/0", set())
    obama[0] = dataclasses.replace(obama[0], seen_at=obama[2].seen_at)  # a tie: by key
    (talent,) = set(group(obama).talent_ids)
    assert talent == talent_code("vb/1", set())


def test_new_ids_avoid_taken_and_retired_ids(faces: Faces) -> None:
    """talent_code avoids taken ids; a new talent never gets a forgotten id or one merged
    away, and members of a forgotten talent do not keep its id."""
    code = talent_code("seed", set())
    assert TALENT_ID.fullmatch(code) and talent_code("seed", set()) == code
    other = talent_code("seed", {code})
    assert other != code and TALENT_ID.fullmatch(other)
    assert talent_code("seed", {code, other}) not in {code, other}

    obama = [member("va", 0, faces("ob1"), 0), member("vb", 0, faces("ob2"), 1)]
    (fresh,) = set(group(obama).talent_ids)
    assert fresh == talent_code("va/0", set())
    for event in (
        registry_event("forget", fresh, T0, actor="alice"),
        registry_event("merge", "Tkeep22", T0, actor="alice", other_talent_id=fresh),
    ):
        curation = curation_from_events([event])
        assert fresh in curation.retired()
        (new,) = set(group(obama, curation).talent_ids)
        assert new != fresh and TALENT_ID.fullmatch(new)
    forgotten = curation_from_events([registry_event("forget", fresh, T0, actor="alice")])
    was_forgotten = [dataclasses.replace(m, talent_id=fresh) for m in obama]
    (new,) = set(group(was_forgotten, forgotten).talent_ids)
    assert new != fresh


# --------------------------------------------------------------------------------------------
# 8. Curation
# --------------------------------------------------------------------------------------------


def test_curation_replays_names_merges_and_forgets() -> None:
    """curation_from_events, in any order: the latest name wins; a merge aliases the merged
    id and gives its name to a survivor without one; only manual merges bind members;
    forget retires the id and drops its name; resolve follows chains (and ends on cycles)."""

    def at(hours: float) -> datetime:
        return T0 + timedelta(hours=hours)

    events = [
        registry_event("enrol", "Taaaaaa", at(0), actor="alice", name="Ann"),
        registry_event("name", "Taaaaaa", at(0.5), actor="bob", name="Anna"),
        registry_event("name", "Tbbbbbb", at(1), actor="bob", name="Bee"),
        registry_event(
            "merge",
            "Tcccccc",
            at(2),
            actor="alice",
            other_talent_id="Tbbbbbb",
            detail={"members": [["v1", 0], ["v2", 3]]},
        ),
        registry_event("name", "Tddddd2", at(1), actor="bob", name="Dee"),
        registry_event("merge", "Taaaaaa", at(3), actor=REGISTRY_ACTOR, other_talent_id="Tddddd2"),
        registry_event(
            "merge",
            "Taaaaaa",
            at(4),
            actor="carol",
            other_talent_id="Tcccccc",
            detail={"members": [["v1", 0], ["v2", 3], ["v5", 1]]},
        ),
        registry_event("name", "Teeeeee", at(1), actor="bob", name="Eve"),
        registry_event("forget", "Teeeeee", at(6), actor="alice"),
    ]
    shuffled = [events[i] for i in np.random.default_rng(0).permutation(len(events))]
    curation = curation_from_events(shuffled)
    assert curation.names["Taaaaaa"] == "Anna"  # the latest name, kept through two merges
    assert curation.names["Tcccccc"] == "Bee"  # unnamed survivor: the merged one's name
    assert "Teeeeee" not in curation.names
    assert curation.aliases == {"Tbbbbbb": "Tcccccc", "Tddddd2": "Taaaaaa", "Tcccccc": "Taaaaaa"}
    assert curation.resolve("Tbbbbbb") == "Taaaaaa"  # a chain
    assert curation.resolve("Taaaaaa") == "Taaaaaa"
    assert curation.resolve("Tzzzzzz") == "Tzzzzzz" and curation.resolve(None) is None
    assert curation.forgotten == {"Teeeeee"}
    assert curation.retired() == {"Tbbbbbb", "Tcccccc", "Tddddd2", "Teeeeee"}
    assert curation.bound == [[("v1", 0), ("v2", 3)], [("v1", 0), ("v2", 3), ("v5", 1)]]
    assert curation.created["Tbbbbbb"] == at(1) and curation.created["Tddddd2"] == at(1)
    assert curation.created["Taaaaaa"] == at(0) and curation.created["Tcccccc"] == at(2)
    looped = Curation(aliases={"Tx": "Ty", "Ty": "Tx"})
    assert looped.resolve("Tx") in {"Tx", "Ty"}


def test_a_manual_merge_binds_its_members_below_the_threshold(faces: Faces) -> None:
    """A merge by hand binds its members: later groupings keep Obama and Biden (similarity
    ~0, far below the threshold) together under the kept id, with no event; the same merge
    by the registry binds nothing."""
    obama, biden = faces("ob1", "ob1_mirror"), faces("biden", "biden_mirror")
    assert member_similarity(obama, biden) < THRESHOLD - 0.3
    members = [member("v1", 0, obama, 0), member("v2", 0, biden, 1)]
    first = group(members)
    keep, other = first.talent_ids
    assert keep != other
    keys = [["v1", 0], ["v2", 0]]
    for actor, bound in (("alice", True), (REGISTRY_ACTOR, False)):
        event = registry_event(
            "merge", keep, T0, actor=actor, other_talent_id=other, detail={"members": keys}
        )
        curation = curation_from_events([event])
        later = [*carried(members, first), member("v3", 0, faces("biden"), 5)]
        grouping = group(later, curation)
        together = len(set(grouping.talent_ids)) == 1
        assert together == bound, actor
        if bound:
            assert set(grouping.talent_ids) == {keep}
            assert grouping.events == []
    # A member that was in a talent merged by hand stays bound to it (here t1_p3, which
    # matches nobody, once grouped into Biden's talent), though the merge did not list it.
    event = registry_event(
        "merge", keep, T0, actor="alice", other_talent_id=other, detail={"members": keys}
    )
    later = [*carried(members, first), member("v4", 0, faces("p3"), 5, other)]
    grouping = group(later, curation_from_events([event]))
    assert set(grouping.talent_ids) == {keep} and grouping.events == []


# --------------------------------------------------------------------------------------------
# 9. registry_event
# --------------------------------------------------------------------------------------------


def test_registry_events_carry_no_embeddings_and_known_kinds_only() -> None:
    """registry_event: one row of ids, names, time and a JSON detail of ids/member keys; an
    embedding cannot ride along silently (not JSON); unknown kinds are refused."""
    event = registry_event(
        "merge",
        "Taaaaaa",
        T0,
        actor="alice",
        other_talent_id="Tbbbbbb",
        detail={"members": [["v1", 0], ["v2", 3]]},
    )
    assert_plain_event(event)
    assert (event["event"], event["talent_id"], event["other_talent_id"]) == (
        "merge",
        "Taaaaaa",
        "Tbbbbbb",
    )
    assert json.loads(event["detail"]) == {"members": [["v1", 0], ["v2", 3]]}
    assert re.fullmatch(r"[0-9a-f]{16}", event["event_id"])
    named = registry_event("name", "Taaaaaa", T0, actor="bob", name="Ann")
    assert (named["name"], named["detail"]) == ("Ann", "{}")
    assert named["event_id"] != event["event_id"]
    with pytest.raises(TypeError):
        registry_event("enrol", "Taaaaaa", T0, actor="a", detail={"embedding": np.ones(DIM)})
    for kind in ("create", "rename", "MERGE", ""):
        with pytest.raises(ValueError, match="unknown talent event"):
            registry_event(kind, "Taaaaaa", T0, actor="alice")


def test_grouping_events_hold_ids_only(faces: Faces) -> None:
    """The events group_into_talents returns (merges and splits) are plain rows with an empty
    detail: no embedding, no similarity."""
    before, bridge = bridge_world(faces)
    members = [*before, bridge]
    first = group(before)
    merged = group([*carried(before, first), bridge])
    split = group(carried(members, merged)[:-1], days=40)
    events = merged.events + split.events
    assert {e["event"] for e in events} == {"merge", "split"}
    for event in events:
        assert_plain_event(event)
        assert event["detail"] == "{}"


# --------------------------------------------------------------------------------------------
# 10. Erasure
# --------------------------------------------------------------------------------------------


def test_faces_to_erase_takes_the_person_and_their_unassigned_faces_only(faces: Faces) -> None:
    """faces_to_erase: the erased people's faces, and unassigned faces like the talent's
    exemplars (>= UNASSIGNED_ERASE_SIMILARITY: the same man defocused, measured 0.40-0.44), but
    not other people's faces, assigned or not, even one as like the exemplars."""
    exemplars = faces("p1", "p1_mirror")
    rows = [
        (0, "p1_warm"),  # the erased person
        (0, "p1"),
        (-1, "p1_soft"),  # unassigned, the same man too blurred to be assigned
        (-1, "p1_cool_soft"),
        (-1, "biden"),  # unassigned strangers
        (-1, "p0"),
        (1, "p0_mirror"),  # another person
        (2, "p1_mirror_soft"),  # another person of this video, however alike
        (3, "ob1"),
    ]
    person = np.array([p for p, _ in rows])
    embeddings = faces(*(n for _, n in rows))
    best = (embeddings @ exemplars.T).max(axis=1)
    assert UNASSIGNED_ERASE_SIMILARITY <= best[2] < THRESHOLD
    assert UNASSIGNED_ERASE_SIMILARITY <= best[3] < THRESHOLD
    assert best[7] >= UNASSIGNED_ERASE_SIMILARITY
    assert best[4] < UNASSIGNED_ERASE_SIMILARITY - 0.1 and best[5] < UNASSIGNED_ERASE_SIMILARITY
    erase = faces_to_erase(person, embeddings, {0}, exemplars)
    assert erase.tolist() == [True, True, True, True, False, False, False, False, False]
    # Two people erased; without exemplars only their own faces.
    both = faces_to_erase(person, embeddings, {0, 3}, exemplars)
    assert both.tolist() == [True, True, True, True, False, False, False, False, True]
    bare = faces_to_erase(person, embeddings, {0}, np.zeros((0, DIM), np.float32))
    assert bare.tolist() == [True, True] + [False] * 7


def _t1_photo() -> np.ndarray:
    spec = importlib.util.find_spec("insightface")
    assert spec is not None and spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "data" / "images" / "t1.jpg"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def _widened(bbox: np.ndarray, margin: float, shape: tuple[int, ...]) -> np.ndarray:
    """Mask of ``bbox`` widened by ``margin`` of its size on each side."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    mask = np.zeros(shape[:2], bool)
    mask[
        max(0, int(y1 - dy)) : int(np.ceil(y2 + dy)), max(0, int(x1 - dx)) : int(np.ceil(x2 + dx))
    ] = True
    return mask


def test_hide_faces_hides_one_face_and_nothing_else(face_engine: Any) -> None:
    """hide_faces on a real group photo (t1.jpg, six people): only the face's box widened by
    HIDE_MARGIN changes; afterwards no detected face is like the hidden one (cos <= 0.3),
    and the five others are still found and recognised (cos >= 0.9)."""
    photo = _t1_photo()
    before = sorted(_analyse(face_engine, photo), key=lambda f: f.bbox[0])
    assert len(before) == 6
    target = before[2]
    hidden = hide_faces(photo, target.bbox[None])
    assert hidden.shape == photo.shape and hidden.dtype == photo.dtype
    assert (photo == _t1_photo()).all()  # the input is left as it was

    changed = (hidden != photo).any(axis=2)
    assert 0.2 <= HIDE_MARGIN <= 0.5  # hair and ears go too, not the neighbours
    assert not changed[~_widened(target.bbox, HIDE_MARGIN, photo.shape)].any()
    inner = _widened(target.bbox, 0.0, photo.shape)
    assert changed[inner].mean() > 0.9
    ring = _widened(target.bbox, 0.2, photo.shape) & ~inner
    assert changed[ring].mean() > 0.5  # the margin around the box goes too

    after = _analyse(face_engine, hidden)
    target_embedding = target.embedding.astype(np.float32)
    assert all(float(f.embedding @ target_embedding) <= 0.3 for f in after)
    for face in before[:2] + before[3:]:
        assert max(float(f.embedding @ face.embedding) for f in after) >= 0.9


def test_hide_faces_clips_boxes_at_the_frame_edges() -> None:
    """Boxes partly or wholly outside the image: the part inside is pixelated, nothing
    fails, and a box entirely outside changes nothing."""
    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    corner = hide_faces(image, np.array([[-30.0, -20.0, 40.0, 50.0]]))
    changed = (corner != image).any(axis=2)
    assert changed[:60, :55].mean() > 0.9 and not changed[70:, :].any()
    outside = hide_faces(image, np.array([[400.0, 400.0, 500.0, 500.0]]))
    assert (outside == image).all()
    assert (hide_faces(image, np.zeros((0, 4))) == image).all()


@pytest.mark.parametrize("margin", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize(
    "bbox", [(100.0, 80.0, 180.0, 200.0), (40.0, 60.0, 240.0, 150.0), (10.5, 20.2, 73.9, 97.3)]
)
def test_crop_margin_inverts_crop_face(margin: float, bbox: tuple[float, ...]) -> None:
    """crop_margin(side of crop_face(image, bbox, margin), bbox) gives the margin back, to
    within the rounding of the side to whole pixels; tall and wide boxes alike."""
    image = np.zeros((300, 300, 3), np.uint8)
    box = np.array(bbox)
    side = crop_face(image, box, margin).shape[0]
    face = max(box[2] - box[0], box[3] - box[1])
    assert crop_margin(side, box) == pytest.approx(margin, abs=0.5 / face + 1e-9)
    assert crop_margin(int(face) // 2, box) == 0.0  # never negative
