"""Group a video's faces into people: face tracks first, then tracks into identities.

A track links a face to the same person's face in the next sampled frames (boxes overlap and
embeddings agree), so the unit that gets clustered is a short, confident stretch of one face
rather than a single, possibly poor, detection. Tracks are clustered by average-linkage on
cosine distance of their quality-weighted embeddings, with one hard rule: two tracks that are
on screen in the same frame are different people and are never merged.

Only *identifiable* faces (:func:`identifiable_faces`: a clear enough face whose embedding
carries enough signal) found people. A face that is detected but not identifiable (out of
focus, motion-blurred, occluded, dark, turned away) belongs to a person only through a
confident link: its track holds identifiable faces of that person, or its track is clearly
more similar to one person than to anyone else; otherwise it stays unassigned (-1). A person
needs identifiable faces in at least ``min_identifiable_frames`` sampled frames, wherever
they are in the video, so a guest seen in a few short flashes counts and a blur does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

# Average-linkage cosine distance under which two tracks are one person, per model pack.
# MobileFaceNet (bundled) embeddings are noisier than R50's (buffalo_l), so its cut is looser.
CLUSTER_THRESHOLDS = {"bundled": 0.62, "buffalo_l": 0.60}
DEFAULT_CLUSTER_THRESHOLD = 0.62

# A face is identifiable when its ArcFace embedding had at least this L2 norm before
# normalisation (the norm falls as a face loses identity signal: blur, occlusion, darkness,
# a turned head) and its face_quality reaches IDENTIFIABLE_MIN_QUALITY. Measured on the
# evaluation set with the bundled pack (docs/performance.md): clean faces 18.6-27.1 (5th
# percentile 20.4), defocused 15.9, motion-blurred 16-18, eye bar 16.8-18.5, dark 16.6-22
# (but quality <= 25), soft 15.6-21 (quality <= 45), half out <= 16.7, profile <= 16.6.
# buffalo_l cannot be measured offline; its R50 norms are on a similar scale, so it uses
# the same value until measured.
IDENTIFIABLE_MIN_NORM = {"bundled": 19.0, "buffalo_l": 19.0}
IDENTIFIABLE_MIN_QUALITY = 35.0
# ...and its aligned crop is at least this sharp per pixel of face height: a face that is
# large in the frame but soft on its 112-px crop is out of focus (a small face is soft on the
# crop simply because it is small). Measured: clean faces >= 0.33 (1st percentile 0.42), real
# clips >= 1.4; defocused <= 0.24, motion-blurred <= 0.20, dark <= 0.06.
IDENTIFIABLE_MIN_SHARPNESS_PER_PX = 0.3


def identifiable_norm_for_pack(pack: str) -> float:
    """The embedding-norm floor of an identifiable face for a model pack."""
    return IDENTIFIABLE_MIN_NORM.get(pack, IDENTIFIABLE_MIN_NORM["bundled"])


def threshold_for_pack(pack: str) -> float:
    """The clustering threshold calibrated for a model pack."""
    return CLUSTER_THRESHOLDS.get(pack, DEFAULT_CLUSTER_THRESHOLD)


@dataclass(frozen=True)
class FaceArrays:
    """The columns of ``face_detections`` that clustering needs, as numpy arrays."""

    frame_index: np.ndarray  # (n,) int
    face_index: np.ndarray  # (n,) int
    timestamp_s: np.ndarray  # (n,) float
    boxes: np.ndarray  # (n, 4) float
    embeddings: np.ndarray  # (n, 512) float, L2-normalised
    quality: np.ndarray  # (n,) float, 0–100
    embedding_norm: np.ndarray | None = None  # (n,) float: norm before normalisation
    sharpness: np.ndarray | None = None  # (n,) Laplacian variance of the aligned 112-px crop

    def __len__(self) -> int:
        return len(self.frame_index)

    @classmethod
    def from_table(cls, table: pa.Table) -> FaceArrays:
        """Columns of a ``face_detections`` table (in its row order)."""
        n = table.num_rows

        def matrix(column: str, width: int) -> np.ndarray:
            flat = table[column].combine_chunks().flatten().to_numpy(zero_copy_only=False)
            return flat.reshape(n, width).astype(np.float32)

        return cls(
            frame_index=table["frame_index"].to_numpy().astype(np.int64),
            face_index=table["face_index"].to_numpy().astype(np.int64),
            timestamp_s=table["timestamp_s"].to_numpy().astype(np.float64),
            boxes=np.stack([table[c].to_numpy() for c in ("x1", "y1", "x2", "y2")], axis=1)
            if n
            else np.zeros((0, 4)),
            embeddings=matrix("embedding", 512) if n else np.zeros((0, 512), np.float32),
            quality=table["face_quality"].to_numpy().astype(np.float64),
            embedding_norm=table["embedding_norm"].to_numpy().astype(np.float64),
            sharpness=table["sharpness"].to_numpy().astype(np.float64),
        )


# A person needs identifiable faces in at least this many sampled frames (anywhere in the
# video): one good frame can be a look-alike or a stray, two are evidence.
MIN_IDENTIFIABLE_FRAMES = 2


@dataclass(frozen=True)
class ClusteringParams:
    """Knobs of :func:`cluster_identities`; defaults suit 1–5 samples per second."""

    threshold: float = DEFAULT_CLUSTER_THRESHOLD
    track_iou: float = 0.2
    track_similarity: float = 0.35
    track_identifiable_similarity: float = 0.5
    # ...unless the box stays where it was (a face whose focus drifts, not a neighbour who
    # moved into the spot during a pan): then track_similarity is enough.
    track_same_place_iou: float = 0.7
    track_max_gap_s: float = 1.01
    min_faces: int = 2
    min_best_quality: float = 25.0
    min_identifiable_frames: int = MIN_IDENTIFIABLE_FRAMES
    min_embedding_norm: float = IDENTIFIABLE_MIN_NORM["bundled"]
    min_identifiable_quality: float = IDENTIFIABLE_MIN_QUALITY
    min_sharpness_per_px: float = IDENTIFIABLE_MIN_SHARPNESS_PER_PX
    # A track of unidentifiable faces joins a person when its mean embedding is at least
    # this similar to the person's centre and join_margin more similar than to anyone else.
    # Measured: unidentifiable faces sit 0.14-0.83 from their own person, <= 0.24 from others.
    join_similarity: float = 0.45
    join_margin: float = 0.15
    # Optional filter: a person seen for less than this in total is dropped (0 = off).
    min_screen_time_s: float = 0.0
    sample_fps: float = 2.0
    # Small faces embed noisily: two different people at 40-60 px reached similarity 0.46 on
    # the evaluation set (0.39 at 80-120 px, 0.24 above), one person's tracks never fell
    # below 0.50 (0.73 at 60-80 px, 0.78 above). So two tracks whose smaller face is at most
    # small_face_px need this much more similarity to merge, fading out by large_face_px.
    small_face_px: float = 60.0
    large_face_px: float = 120.0
    small_face_extra_similarity: float = 0.10


@dataclass(frozen=True)
class Clustering:
    """Per-face track and person ids (``-1`` = noise), and each face's similarity to its person."""

    track_id: np.ndarray
    person_id: np.ndarray
    similarity: np.ndarray
    people: int
    identifiable: np.ndarray  # per face: could found a person on its own


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` (n, 4) and ``b`` (m, 4)."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def build_tracks(
    faces: FaceArrays, params: ClusteringParams, identifiable: np.ndarray | None = None
) -> np.ndarray:
    """Link faces frame to frame into tracks; returns a track id per face.

    Greedy matching by IoU + embedding similarity against each live track's latest face. A
    cut breaks tracks naturally (boxes jump), and the embedding test stops a track from
    jumping to another person who steps into the same spot. Two identifiable faces must be
    ``track_identifiable_similarity`` alike (a look-alike in a panning crowd reaches 0.46)
    unless the box barely moved (IoU >= ``track_same_place_iou``); a blurred or occluded
    face only ``track_similarity``, so it can still follow its track.
    """
    n = len(faces)
    track_ids = np.full(n, -1, dtype=np.int32)
    if n == 0:
        return track_ids
    order = np.lexsort((faces.face_index, faces.timestamp_s))
    live: dict[int, int] = {}  # track id -> index of its latest face
    next_track = 0
    frames = faces.frame_index[order]
    boundaries = np.flatnonzero(np.diff(frames)) + 1
    for group in np.split(order, boundaries):
        t = faces.timestamp_s[group[0]]
        live = {
            tid: i for tid, i in live.items() if t - faces.timestamp_s[i] <= params.track_max_gap_s
        }
        taken: set[int] = set()
        if live:
            tids = list(live)
            last = np.array([live[tid] for tid in tids])
            iou = box_iou(faces.boxes[group], faces.boxes[last])
            sim = faces.embeddings[group] @ faces.embeddings[last].T
            needed = np.full(sim.shape, params.track_similarity)
            if identifiable is not None:
                both = identifiable[group][:, None] & identifiable[last][None, :]
                needed[both & (iou < params.track_same_place_iou)] = (
                    params.track_identifiable_similarity
                )
            ok = (iou >= params.track_iou) & (sim >= needed)
            score = np.where(ok, iou + sim, -np.inf)
            while np.isfinite(score).any():
                gi, ti = np.unravel_index(np.argmax(score), score.shape)
                face = group[gi]
                track_ids[face] = tids[ti]
                live[tids[ti]] = face
                taken.add(face)
                score[gi, :] = -np.inf
                score[:, ti] = -np.inf
        for face in group:
            if face not in taken:
                track_ids[face] = next_track
                live[next_track] = face
                next_track += 1
    return track_ids


def _weighted_mean(embeddings: np.ndarray, weights: np.ndarray) -> np.ndarray:
    mean = (embeddings * weights[:, None]).sum(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def constrained_average_linkage(
    vectors: np.ndarray,
    cannot_link: np.ndarray,
    threshold: float,
    scale: np.ndarray | None = None,
) -> np.ndarray:
    """Average-linkage clustering on cosine distance with cannot-link pairs; cut at threshold.

    Uses the nearest-neighbour chain algorithm (O(n²) time and memory). A cannot-link pair has
    infinite distance, and a merged cluster inherits infinity from either side: the result is
    still a reducible linkage, so the chain finds the same hierarchy as greedy merging.
    ``scale`` (n × n, optional) multiplies the pairwise distances first: it makes the cut
    stricter for some pairs (see :func:`size_scale`). Returns a cluster label per row, labels
    0..k-1 in order of first row.
    """
    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    dist = 1.0 - np.clip(vectors @ vectors.T, -1.0, 1.0)
    if scale is not None:
        dist = dist * scale
    dist[cannot_link] = np.inf
    np.fill_diagonal(dist, np.inf)
    return _cut(_nearest_neighbour_chain(dist), n, threshold)


def _nearest_neighbour_chain(dist: np.ndarray) -> list[tuple[float, int, int]]:
    """The (height, a, b) merges of average linkage over ``dist`` (modified in place)."""
    n = len(dist)
    size = np.ones(n)
    active = np.ones(n, dtype=bool)
    merges: list[tuple[float, int, int]] = []
    chain: list[int] = []
    remaining = n
    while remaining > 1:
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        a = chain[-1]
        row = np.where(active, dist[a], np.inf)
        b = int(np.argmin(row))
        if not np.isfinite(row[b]):
            # a can never merge again; retire it from the chain and the search.
            chain.pop()
            active[a] = False
            remaining -= 1
            continue
        # Prefer the chain's previous element on ties, so the chain always terminates.
        if len(chain) > 1 and row[chain[-2]] <= row[b]:
            b = chain[-2]
        if len(chain) > 1 and b == chain[-2]:
            chain.pop()
            chain.pop()
            merges.append((float(dist[a, b]), a, b))
            _merge_into(dist, size, active, a, b)
            remaining -= 1
        else:
            chain.append(b)
    return merges


def _merge_into(dist: np.ndarray, size: np.ndarray, active: np.ndarray, a: int, b: int) -> None:
    """Merge cluster b into a: the Lance–Williams update for average linkage; inf stays inf."""
    new = (size[a] * dist[a] + size[b] * dist[b]) / (size[a] + size[b])
    new[~np.isfinite(dist[a]) | ~np.isfinite(dist[b])] = np.inf
    dist[a] = new
    dist[:, a] = new
    dist[a, a] = np.inf
    size[a] += size[b]
    active[b] = False
    dist[b] = np.inf
    dist[:, b] = np.inf


def _cut(merges: list[tuple[float, int, int]], n: int, threshold: float) -> np.ndarray:
    """Labels after applying the merges at or under ``threshold`` (union-find, by height),
    numbered 0..k-1 in order of first row."""
    root = np.arange(n)

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for height, a, b in sorted(merges):
        if height <= threshold:
            root[find(b)] = find(a)
    roots = np.array([find(i) for i in range(n)])
    _, labels = np.unique(roots, return_inverse=True)
    first: dict[int, int] = {}
    for label in labels:
        first.setdefault(int(label), len(first))
    return np.array([first[int(label)] for label in labels], dtype=np.int32)


def size_scale(sizes: np.ndarray, params: ClusteringParams) -> np.ndarray:
    """Pairwise distance multipliers so that one cut at ``params.threshold`` asks tracks with
    small faces (their smaller median face height, px) for ``small_face_extra_similarity``
    more similarity than tracks with large ones."""
    span = max(params.large_face_px - params.small_face_px, 1e-9)
    smaller = np.minimum(sizes[:, None], sizes[None, :])
    fade = np.clip((params.large_face_px - smaller) / span, 0.0, 1.0)
    allowed = params.threshold - params.small_face_extra_similarity * fade
    return params.threshold / np.maximum(allowed, 1e-6)


def identifiable_faces(faces: FaceArrays, params: ClusteringParams) -> np.ndarray:
    """Per face: is its embedding trustworthy enough to found a person on its own?"""
    ok = faces.quality >= params.min_identifiable_quality
    if faces.embedding_norm is not None:  # arrays built by hand may lack the measurements
        ok &= faces.embedding_norm >= params.min_embedding_norm
    if faces.sharpness is not None:
        heights = faces.boxes[:, 3] - faces.boxes[:, 1]
        ok &= faces.sharpness >= params.min_sharpness_per_px * heights
    return ok


def cluster_identities(faces: FaceArrays, params: ClusteringParams) -> Clustering:
    """Assign every face a track and a person; people are numbered by first appearance."""
    n = len(faces)
    if n == 0:
        empty = np.zeros(0, dtype=np.int32)
        return Clustering(empty, empty, np.zeros(0, dtype=np.float32), 0, np.zeros(0, bool))
    identifiable = identifiable_faces(faces, params)
    track_ids = build_tracks(faces, params, identifiable)
    tracks = np.unique(track_ids)
    track_pos = np.searchsorted(tracks, track_ids)
    cannot = _together_on_screen(faces, track_pos, len(tracks))
    strong = np.array([identifiable[track_pos == k].any() for k in range(len(tracks))], bool)
    weights = np.maximum(faces.quality, 1.0) ** 2  # trust the good faces of a track most
    cluster_of_track = np.full(len(tracks), -1, dtype=np.int64)
    if strong.any():
        cluster_of_track[strong] = _cluster_tracks(
            faces, params, identifiable, weights, track_pos, cannot, strong
        )
    person_of_track = _people_with_evidence(
        faces, params, identifiable, track_pos, cluster_of_track
    )
    anchor_weights = np.where(identifiable, weights, 0.0)
    _join_weak_tracks(faces, params, anchor_weights, weights, track_pos, cannot, person_of_track)
    person_id = _number_by_first_appearance(faces, person_of_track[track_pos])
    people = int(person_id.max()) + 1 if (person_id >= 0).any() else 0
    similarity = np.zeros(n, dtype=np.float32)
    for p in range(people):
        members = person_id == p
        anchors = members & identifiable
        centroid = _weighted_mean(faces.embeddings[anchors], weights[anchors])
        similarity[members] = faces.embeddings[members] @ centroid
    return Clustering(track_ids, person_id, similarity, people, identifiable)


def _cluster_tracks(
    faces: FaceArrays,
    params: ClusteringParams,
    anchors: np.ndarray,
    weights: np.ndarray,
    track_pos: np.ndarray,
    cannot: np.ndarray,
    strong: np.ndarray,
) -> np.ndarray:
    """Cluster labels of the ``strong`` tracks, each represented by the weighted mean of its
    identifiable faces (``anchors``) and judged by their median height."""
    heights = faces.boxes[:, 3] - faces.boxes[:, 1]
    members = [(track_pos == k) & anchors for k in np.flatnonzero(strong)]
    vectors = np.stack([_weighted_mean(faces.embeddings[m], weights[m]) for m in members])
    sizes = np.array([np.median(heights[m]) for m in members])
    return constrained_average_linkage(
        vectors, cannot[np.ix_(strong, strong)], params.threshold, size_scale(sizes, params)
    )


def _together_on_screen(faces: FaceArrays, track_pos: np.ndarray, n_tracks: int) -> np.ndarray:
    """Cannot-link matrix: tracks sharing a frame are two people on screen together."""
    cannot = np.zeros((n_tracks, n_tracks), dtype=bool)
    for frame in np.unique(faces.frame_index):
        present = np.unique(track_pos[faces.frame_index == frame])
        if len(present) > 1:
            cannot[np.ix_(present, present)] = True
    np.fill_diagonal(cannot, False)
    return cannot


def _people_with_evidence(
    faces: FaceArrays,
    params: ClusteringParams,
    identifiable: np.ndarray,
    track_pos: np.ndarray,
    cluster_of_track: np.ndarray,
) -> np.ndarray:
    """Person (provisional id) per track: clusters with enough evidence; -1 for the rest."""
    person_of_track = np.full(len(cluster_of_track), -1, dtype=np.int64)
    cluster_of_face = cluster_of_track[track_pos]
    for c in np.unique(cluster_of_track[cluster_of_track >= 0]):
        members = cluster_of_face == c
        evidence = len(np.unique(faces.frame_index[members & identifiable]))
        frames_seen = len(np.unique(faces.frame_index[members]))
        if (
            members.sum() < params.min_faces
            or evidence < params.min_identifiable_frames
            or frames_seen / params.sample_fps < params.min_screen_time_s - 1e-9
            or faces.quality[members].max() < params.min_best_quality
        ):
            continue
        person_of_track[cluster_of_track == c] = c
    return person_of_track


def _join_weak_tracks(
    faces: FaceArrays,
    params: ClusteringParams,
    anchor_weights: np.ndarray,
    weights: np.ndarray,
    track_pos: np.ndarray,
    cannot: np.ndarray,
    person_of_track: np.ndarray,
) -> None:
    """Give each unassigned track to a person it clearly resembles and never shares a frame
    with (in place); tracks that resemble nobody clearly stay -1. A person's centre is the
    mean of their identifiable faces (``anchor_weights`` are 0 elsewhere)."""
    people = np.unique(person_of_track[person_of_track >= 0])
    if not len(people):
        return
    members = {int(p): person_of_track == p for p in people}
    centres = np.stack(
        [
            _weighted_mean(*_faces_of(faces, anchor_weights, track_pos, members[int(p)]))
            for p in people
        ]
    )
    for k in np.flatnonzero(person_of_track < 0):
        vector = _weighted_mean(*_faces_of(faces, weights, track_pos, np.arange(len(cannot)) == k))
        sims = centres @ vector
        order = np.argsort(-sims)
        best = order[0]
        second = sims[order[1]] if len(order) > 1 else -1.0
        clear = sims[best] >= params.join_similarity and sims[best] - second >= params.join_margin
        target = int(people[best])
        if clear and not cannot[k, members[target]].any():
            person_of_track[k] = target
            members[target][k] = True  # later tracks must not share a frame with this one


def _faces_of(
    faces: FaceArrays, weights: np.ndarray, track_pos: np.ndarray, tracks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and weights of the faces on the selected tracks (a boolean track mask)."""
    mask = tracks[track_pos]
    return faces.embeddings[mask], weights[mask]


def _number_by_first_appearance(faces: FaceArrays, provisional: np.ndarray) -> np.ndarray:
    """Renumber provisional person ids 0..k-1 in order of each person's first face."""
    firsts = sorted(
        (float(faces.timestamp_s[provisional == p].min()), int(p))
        for p in np.unique(provisional[provisional >= 0])
    )
    number = {p: i for i, (_, p) in enumerate(firsts)}
    return np.array([number.get(int(p), -1) for p in provisional], dtype=np.int32)


def person_centroid(embeddings: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Quality-weighted, L2-normalised mean embedding of one person's faces."""
    return _weighted_mean(embeddings, np.maximum(quality, 1.0) ** 2).astype(np.float32)
