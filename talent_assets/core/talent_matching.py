"""Who is who across videos: exemplars, similarity between people, and the grouping into
talents. Pure (numpy only): the registry asset and ``talent`` commands feed it rows.

A *member* is one person of one video (or the photos of one enrolment). Each member carries a
few exemplar embeddings: diverse good faces, not one mean, so a presenter seen once with
glasses and once without still matches through the closer pair. Two members match when the
mean of their best few exemplar-pair cosines reaches the pack's threshold.

Grouping is a constrained single linkage (Kruskal): links are taken strongest first and two
groups join unless that would put two people of one video, or two different enrolments, in
one talent. The result depends only on the set of members, never on the order in which
videos arrived: a later video that bridges two talents merges them (the registry records the
merge; see :mod:`talent_assets.core.talent_registry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

#: Exemplars kept per person of a video, and per talent in the ``talents`` table.
EXEMPLARS_PER_PERSON = 5
EXEMPLARS_PER_TALENT = 8
#: The similarity of two members is the mean of this many best exemplar-pair cosines: one
#: lucky pair is not enough, yet two appearances need to share only one look.
TOP_PAIRS = 3

#: Cross-video match threshold per model pack (the mean of the best exemplar-pair cosines).
#: ``bundled`` (MobileFaceNet), measured by ``python -m benchmarks.registry_eval`` (see
#: docs/performance.md, "Talents across videos"): different photos of one man score
#: 0.65-0.72, the closest two different people of the evaluation set (a crowd filmed at low
#: resolution) 0.45. ``buffalo_l`` (ResNet-50) separates better; its value follows
#: InsightFace's usual verification cut and is not measured here (the pack is not offline).
MATCH_THRESHOLDS: dict[str, float] = {"bundled": 0.55, "buffalo_l": 0.45}
DEFAULT_MATCH_THRESHOLD = 0.55


def match_threshold(model_pack: str) -> float:
    """The cross-video match threshold of ``model_pack``."""
    return MATCH_THRESHOLDS.get(model_pack, DEFAULT_MATCH_THRESHOLD)


def choose_exemplars(
    embeddings: np.ndarray, quality: np.ndarray, k: int = EXEMPLARS_PER_PERSON
) -> np.ndarray:
    """Up to ``k`` diverse good faces: farthest-point sampling from the best face, among the
    better half by quality (so a blurred outlier is never picked for being different)."""
    if len(embeddings) == 0:
        return np.zeros((0, embeddings.shape[1] if embeddings.ndim == 2 else 512), np.float32)
    order = np.argsort(-np.asarray(quality, dtype=np.float64), kind="stable")
    pool = order[: max(k, (len(order) + 1) // 2)]
    vectors = np.asarray(embeddings[pool], dtype=np.float32)
    chosen = [0]
    closest = vectors @ vectors[0]
    while len(chosen) < min(k, len(pool)):
        closest[chosen] = np.inf
        pick = int(np.argmin(closest))
        chosen.append(pick)
        closest = np.maximum(closest, vectors @ vectors[pick])
    return vectors[chosen]


def member_similarity(a: np.ndarray, b: np.ndarray, top: int = TOP_PAIRS) -> float:
    """Mean of the ``top`` best cosines between two members' exemplars."""
    if len(a) == 0 or len(b) == 0:
        return -1.0
    sims = (np.asarray(a, np.float32) @ np.asarray(b, np.float32).T).ravel()
    best = np.sort(sims)[-min(top, sims.size) :]
    return float(best.mean())


@dataclass(frozen=True)
class Member:
    """One person of one video (``person_id`` ≥ 0) or one enrolment's photos (``person_id``
    -1, ``video_id`` = ``enrol:<talent id>``).

    ``talent_id`` is the talent the member belonged to before (None for a new person);
    ``seen_at`` orders founders (the video's ingestion, or the enrolment's time).
    """

    video_id: str
    person_id: int
    exemplars: np.ndarray
    seen_at: datetime
    talent_id: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.video_id, self.person_id)

    @property
    def enrolled(self) -> bool:
        return self.person_id < 0


@dataclass(frozen=True)
class Link:
    """Two members (indices) and their similarity."""

    a: int
    b: int
    similarity: float


def member_links(members: Sequence[Member], threshold: float) -> list[Link]:
    """Every pair of members from different videos whose similarity reaches ``threshold``,
    strongest first (ties by member keys, so the order is total).

    One matrix product per member against all exemplars; a pair is scored exactly only when
    its best exemplar pair reaches the threshold (the mean of the best pairs cannot exceed
    the best one), so the cost stays near one pass over the exemplars per member.
    """
    if not members:
        return []
    counts = np.array([len(m.exemplars) for m in members])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    matrix = np.concatenate([np.asarray(m.exemplars, np.float32) for m in members])
    links: list[Link] = []
    for i, member in enumerate(members):
        if counts[i] == 0:
            continue
        later = np.arange(i + 1, len(members))
        later = later[counts[later] > 0]
        if not len(later):
            continue
        best = (np.asarray(member.exemplars, np.float32) @ matrix.T).max(axis=0)
        block_best = np.maximum.reduceat(best, starts[later]) if len(later) else best[:0]
        # reduceat runs to the next start; members after i are contiguous, so the last
        # block ends at the end of the matrix as it should.
        for j in later[block_best >= threshold]:
            if members[j].video_id == member.video_id:
                continue
            similarity = member_similarity(member.exemplars, members[j].exemplars)
            if similarity >= threshold:
                links.append(Link(i, int(j), similarity))
    # Ties by the pair's keys, smaller first: independent of the order of ``members``.
    links.sort(key=lambda x: (-x.similarity, *sorted((members[x.a].key, members[x.b].key))))
    return links


class _Groups:
    """Union-find over members that remembers each group's videos and enrolments."""

    def __init__(self, members: Sequence[Member]):
        self.parent = list(range(len(members)))
        self.videos = [{m.video_id} for m in members]
        self.enrolments = [{m.talent_id} if m.enrolled else set() for m in members]

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def try_union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if self.videos[ra] & self.videos[rb]:
            return False  # two people of one video are two people
        if self.enrolments[ra] and self.enrolments[rb]:
            return False  # two named enrolments are two talents unless merged by hand
        self.parent[rb] = ra
        self.videos[ra] |= self.videos[rb]
        self.enrolments[ra] |= self.enrolments[rb]
        return True


def group_members(members: Sequence[Member], links: Sequence[Link]) -> list[list[int]]:
    """Constrained single linkage: groups of member indices, each sorted, ordered by their
    first member."""
    groups = _Groups(members)
    for link in links:
        groups.try_union(link.a, link.b)
    by_root: dict[int, list[int]] = {}
    for i in range(len(members)):
        by_root.setdefault(groups.find(i), []).append(i)
    return sorted(by_root.values(), key=lambda g: g[0])


def best_link_similarity(group: Sequence[int], links: Sequence[Link]) -> dict[int, float]:
    """For each member of ``group``, its strongest link to another member of the group."""
    inside = set(group)
    best: dict[int, float] = {}
    for link in links:
        if link.a in inside and link.b in inside:
            for i in (link.a, link.b):
                best[i] = max(best.get(i, -1.0), link.similarity)
    return best
