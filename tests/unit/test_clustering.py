"""Unit tests for talent_assets.core.clustering on synthetic faces (no models, no video)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pytest

from modal_gpu.detection import faces_to_table
from modal_gpu.face_engine import DetectedFace
from modal_gpu.schema import EMBEDDING_DIM, FACE_DETECTIONS_SCHEMA
from talent_assets.core.clustering import (
    ClusteringParams,
    FaceArrays,
    box_iou,
    build_tracks,
    cluster_identities,
    constrained_average_linkage,
)

SAMPLE_FPS = 2.0
PARAMS = ClusteringParams()


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def random_people(n: int, seed: int) -> np.ndarray:
    """``n`` random unit 512-d identity vectors (nearly orthogonal to each other)."""
    return unit(np.random.default_rng(seed).normal(size=(n, EMBEDDING_DIM)))


@dataclass
class Builder:
    """Accumulates synthetic faces frame by frame (``SAMPLE_FPS`` samples per second)."""

    seed: int = 0
    noise: float = 0.02  # per-component: cos(face, person) ≈ 0.9
    rows: list[tuple[int, int, float, tuple[float, ...], np.ndarray, float]] = field(
        default_factory=list
    )

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed + 1000)

    def face(self, person: np.ndarray) -> np.ndarray:
        return unit(person + self.rng.normal(scale=self.noise, size=EMBEDDING_DIM))

    def frame(
        self,
        frame: int,
        faces: list[tuple[np.ndarray, tuple[float, float, float, float]]],
        quality: float = 80.0,
    ) -> None:
        """Add one sampled frame with ``(identity vector, box)`` faces in it."""
        for face_index, (vector, box) in enumerate(faces):
            emb = self.face(vector)
            self.rows.append((frame, face_index, frame / SAMPLE_FPS, box, emb, quality))

    def build(self) -> FaceArrays:
        if not self.rows:
            return FaceArrays(
                frame_index=np.zeros(0, np.int64),
                face_index=np.zeros(0, np.int64),
                timestamp_s=np.zeros(0),
                boxes=np.zeros((0, 4)),
                embeddings=np.zeros((0, EMBEDDING_DIM), np.float32),
                quality=np.zeros(0),
            )
        frame, face_index, ts, boxes, emb, quality = zip(*self.rows, strict=True)
        return FaceArrays(
            frame_index=np.array(frame, np.int64),
            face_index=np.array(face_index, np.int64),
            timestamp_s=np.array(ts, np.float64),
            boxes=np.array(boxes, np.float64),
            embeddings=np.stack(emb).astype(np.float32),
            quality=np.array(quality, np.float64),
        )


LEFT = (100.0, 100.0, 200.0, 220.0)
RIGHT = (400.0, 100.0, 500.0, 220.0)
CENTRE = (250.0, 100.0, 350.0, 220.0)


def shift(box: tuple[float, ...], dx: float) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    return (x1 + dx, y1, x2 + dx, y2)


# --- cluster_identities end to end --------------------------------------------------------


def test_two_people_in_alternating_shots() -> None:
    """Shots of B and A alternate (cut = box jump); B is on screen first, so B is person 0."""
    a, b = random_people(2, seed=1)
    builder = Builder(seed=1)
    frame = 0
    for shot in range(6):
        person, box = (b, LEFT) if shot % 2 == 0 else (a, RIGHT)
        for step in range(4):
            builder.frame(frame, [(person, shift(box, 3 * step))])
            frame += 1
    faces = builder.build()
    result = cluster_identities(faces, PARAMS)

    assert result.people == 2
    shot_of_face = faces.frame_index // 4
    expected = np.where(shot_of_face % 2 == 0, 0, 1)
    np.testing.assert_array_equal(result.person_id, expected)
    # Each shot is its own track (cuts break tracks), six in all.
    assert len(np.unique(result.track_id)) == 6
    for shot in range(6):
        assert len(np.unique(result.track_id[shot_of_face == shot])) == 1
    # Similarity to one's own person is high.
    assert result.similarity.min() > 0.8
    assert result.person_id.dtype == np.int32


def test_person_ids_follow_first_appearance_not_input_order() -> None:
    a, b, c = random_people(3, seed=2)
    builder = Builder(seed=2)
    # Rows are given in an order unrelated to time: C appears at t=0, A at t=5, B at t=10.
    for f in range(20, 24):
        builder.frame(f, [(b, CENTRE)])
    for f in range(10, 14):
        builder.frame(f, [(a, LEFT)])
    for f in range(0, 4):
        builder.frame(f, [(c, RIGHT)])
    faces = builder.build()
    result = cluster_identities(faces, PARAMS)
    assert result.people == 3
    first = {int(p): float(faces.timestamp_s[result.person_id == p].min()) for p in range(3)}
    assert first[0] < first[1] < first[2]
    assert set(result.person_id[faces.frame_index < 4]) == {0}
    assert set(result.person_id[(faces.frame_index >= 10) & (faces.frame_index < 14)]) == {1}
    assert set(result.person_id[faces.frame_index >= 20]) == {2}


def test_lookalikes_on_screen_together_are_never_merged() -> None:
    """Twins: embeddings nearly identical, but they share frames, so cannot-link holds."""
    twin = random_people(1, seed=3)[0]
    builder = Builder(seed=3, noise=0.005)
    for f in range(10):
        builder.frame(f, [(twin, LEFT), (twin, RIGHT)])
    faces = builder.build()
    # The two faces of a frame really are near-identical...
    left, right = faces.embeddings[faces.face_index == 0], faces.embeddings[faces.face_index == 1]
    assert float((left * right).sum(axis=1).min()) > 0.9
    result = cluster_identities(faces, PARAMS)
    assert result.people == 2
    for f in range(10):
        in_frame = result.person_id[faces.frame_index == f]
        assert sorted(in_frame.tolist()) == [0, 1]
    # The left twin is consistently one person and the right twin the other.
    assert len(set(result.person_id[faces.face_index == 0].tolist())) == 1
    assert len(set(result.person_id[faces.face_index == 1].tolist())) == 1


def test_single_face_person_is_noise() -> None:
    a, b = random_people(2, seed=4)
    builder = Builder(seed=4)
    for f in range(6):
        builder.frame(f, [(a, LEFT)])
    builder.frame(6, [(a, LEFT), (b, RIGHT)])  # b seen exactly once
    faces = builder.build()
    result = cluster_identities(faces, PARAMS)
    assert result.people == 1
    b_row = int(np.flatnonzero((faces.frame_index == 6) & (faces.face_index == 1))[0])
    assert result.person_id[b_row] == -1
    assert result.similarity[b_row] == 0.0
    assert (np.delete(result.person_id, b_row) == 0).all()

    # With min_faces=1 the same face is a person of its own.
    relaxed = cluster_identities(faces, ClusteringParams(min_faces=1, min_identifiable_frames=1))
    assert relaxed.people == 2
    assert relaxed.person_id[b_row] == 1


def test_low_quality_only_cluster_is_noise() -> None:
    a, b = random_people(2, seed=5)
    builder = Builder(seed=5)
    for f in range(4):
        builder.frame(f, [(a, LEFT)], quality=80.0)
    for f in range(4, 8):
        builder.frame(f, [(b, RIGHT)], quality=10.0)  # never a usable face
    result = cluster_identities(builder.build(), PARAMS)
    assert result.people == 1
    assert result.person_id[:4].tolist() == [0] * 4
    assert result.person_id[4:].tolist() == [-1] * 4


def test_empty_faces() -> None:
    result = cluster_identities(Builder().build(), PARAMS)
    assert result.people == 0
    assert len(result.person_id) == len(result.track_id) == len(result.similarity) == 0


def test_many_tracks_of_ten_people_recovered_exactly() -> None:
    """300 shots (tracks) of 10 people: fast, and exactly the 10 people come back."""
    people = random_people(10, seed=6)
    rng = np.random.default_rng(6)
    # Every person appears in the first ten shots, in a shuffled order, then at random.
    order = np.concatenate([rng.permutation(10), rng.integers(0, 10, size=290)])
    builder = Builder(seed=6, noise=0.03)
    frame = 0
    for shot, who in enumerate(order):
        box = LEFT if shot % 2 == 0 else RIGHT  # a cut always jumps the box
        for _ in range(3):
            builder.frame(frame, [(people[who], box)])
            frame += 1
    faces = builder.build()
    assert len(faces) == 900

    started = time.perf_counter()
    result = cluster_identities(faces, PARAMS)
    elapsed = time.perf_counter() - started

    assert elapsed < 5.0
    assert len(np.unique(result.track_id)) == 300
    assert result.people == 10
    truth = np.repeat(order, 3)
    # A perfect relabelling: person k is whoever appeared k-th.
    first_order = list(dict.fromkeys(order.tolist()))
    expected = np.array([first_order.index(int(t)) for t in truth])
    np.testing.assert_array_equal(result.person_id, expected)


# --- build_tracks ------------------------------------------------------------------------


def test_tracks_link_consecutive_overlapping_similar_faces() -> None:
    (a,) = random_people(1, seed=7)
    builder = Builder(seed=7)
    for f in range(5):
        builder.frame(f, [(a, shift(LEFT, 10 * f))])  # slow pan: boxes overlap
    tracks = build_tracks(builder.build(), PARAMS)
    assert tracks.tolist() == [0] * 5


def test_tracks_break_on_cut() -> None:
    (a,) = random_people(1, seed=8)
    builder = Builder(seed=8)
    for f in range(3):
        builder.frame(f, [(a, LEFT)])
    for f in range(3, 6):
        builder.frame(f, [(a, RIGHT)])  # same person, box jumps: a cut
    tracks = build_tracks(builder.build(), PARAMS)
    assert tracks.tolist() == [0, 0, 0, 1, 1, 1]


def test_tracks_break_when_another_person_takes_the_spot() -> None:
    a, b = random_people(2, seed=9)
    builder = Builder(seed=9)
    for f in range(3):
        builder.frame(f, [(a, LEFT)])
    for f in range(3, 6):
        builder.frame(f, [(b, LEFT)])  # identical box, different identity
    tracks = build_tracks(builder.build(), PARAMS)
    assert tracks.tolist() == [0, 0, 0, 1, 1, 1]


def test_tracks_break_on_long_gap() -> None:
    (a,) = random_people(1, seed=10)
    builder = Builder(seed=10)
    builder.frame(0, [(a, LEFT)])
    builder.frame(1, [(a, LEFT)])  # 0.5 s later: same track
    builder.frame(10, [(a, LEFT)])  # 4.5 s later: beyond track_max_gap_s
    tracks = build_tracks(builder.build(), PARAMS)
    assert tracks.tolist() == [0, 0, 1]


def test_tracks_follow_two_faces_that_swap_face_index() -> None:
    """Two people side by side; their face_index order swaps, tracks follow identity."""
    a, b = random_people(2, seed=11)
    builder = Builder(seed=11)
    for f in range(6):
        pair = [(a, LEFT), (b, RIGHT)]
        builder.frame(f, pair if f % 2 == 0 else pair[::-1])
    faces = builder.build()
    tracks = build_tracks(faces, PARAMS)
    at_left = faces.boxes[:, 0] == LEFT[0]
    assert len(set(tracks[at_left].tolist())) == 1
    assert len(set(tracks[~at_left].tolist())) == 1
    assert set(tracks[at_left].tolist()) != set(tracks[~at_left].tolist())


def test_tracks_of_empty_input() -> None:
    assert build_tracks(Builder().build(), PARAMS).shape == (0,)


def test_box_iou() -> None:
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50.0 / 150.0, 0.0]])
    assert box_iou(b, a).shape == (3, 1)


# --- constrained_average_linkage ---------------------------------------------------------


def no_links(n: int) -> np.ndarray:
    return np.zeros((n, n), dtype=bool)


def at_angle(degrees: float) -> np.ndarray:
    """A 2-d unit vector (padded to 3-d): cosine distances are then easy to reason about."""
    t = np.radians(degrees)
    return np.array([np.cos(t), np.sin(t), 0.0])


def test_linkage_empty_and_single() -> None:
    empty = constrained_average_linkage(np.zeros((0, 512)), no_links(0), 0.5)
    assert empty.shape == (0,)
    single = constrained_average_linkage(random_people(1, seed=12), no_links(1), 0.5)
    assert single.tolist() == [0]


def test_linkage_threshold_cut() -> None:
    # Distances: 0–1 and 2–3: 1-cos(10°)≈0.015; between the pairs 0.5–0.83 (average 0.66).
    vectors = np.stack([at_angle(0), at_angle(10), at_angle(70), at_angle(80)])
    assert constrained_average_linkage(vectors, no_links(4), 0.1).tolist() == [0, 0, 1, 1]
    assert constrained_average_linkage(vectors, no_links(4), 0.01).tolist() == [0, 1, 2, 3]
    assert constrained_average_linkage(vectors, no_links(4), 0.9).tolist() == [0, 0, 0, 0]


def test_linkage_is_average_not_single() -> None:
    """The average distance between {0°, 10°} and {70°, 80°} is ≈0.66: a 0.55 cut keeps them
    apart although the closest pair (10°, 70°) is at 0.5 (single linkage would merge)."""
    vectors = np.stack([at_angle(0), at_angle(10), at_angle(70), at_angle(80)])
    labels = constrained_average_linkage(vectors, no_links(4), 0.55)
    assert labels.tolist() == [0, 0, 1, 1]
    labels = constrained_average_linkage(vectors, no_links(4), 0.67)
    assert labels.tolist() == [0, 0, 0, 0]


def test_linkage_cannot_link_is_respected() -> None:
    vectors = np.stack([at_angle(0), at_angle(1), at_angle(2)])
    cannot = no_links(3)
    cannot[0, 1] = cannot[1, 0] = True
    labels = constrained_average_linkage(vectors, cannot, 0.5)
    assert labels[0] != labels[1]
    assert len(set(labels.tolist())) == 2
    # 2 joins one of them, never both (a merged cluster inherits the cannot-link).
    assert labels[2] in (labels[0], labels[1])


def test_linkage_cannot_link_inherited_through_merges() -> None:
    # 0 and 3 cannot be together; 1 is close to 0 and 2 close to 3; all within the cut.
    vectors = np.stack([at_angle(0), at_angle(2), at_angle(4), at_angle(6)])
    cannot = no_links(4)
    cannot[0, 3] = cannot[3, 0] = True
    labels = constrained_average_linkage(vectors, cannot, 0.5)
    assert labels[0] != labels[3]
    assert labels.tolist() in ([0, 0, 1, 1], [0, 0, 0, 1], [0, 1, 1, 1])


def test_linkage_labels_ordered_by_first_row() -> None:
    vectors = np.stack([at_angle(90), at_angle(0), at_angle(91), at_angle(1), at_angle(180)])
    labels = constrained_average_linkage(vectors, no_links(5), 0.1)
    assert labels.tolist() == [0, 1, 0, 1, 2]
    assert labels.dtype == np.int32


def test_linkage_all_cannot_link() -> None:
    vectors = np.stack([at_angle(0)] * 4)
    cannot = ~np.eye(4, dtype=bool)
    labels = constrained_average_linkage(vectors, cannot, 0.5)
    assert labels.tolist() == [0, 1, 2, 3]


def test_linkage_large_random_case_is_fast_and_exact() -> None:
    people = random_people(10, seed=13)
    rng = np.random.default_rng(13)
    truth = rng.integers(0, 10, size=300)
    vectors = unit(people[truth] + rng.normal(scale=0.02, size=(300, EMBEDDING_DIM)))
    # Random cannot-links only between different people (as shared frames would give).
    cannot = no_links(300)
    for i, j in rng.integers(0, 300, size=(400, 2)):
        if truth[i] != truth[j]:
            cannot[i, j] = cannot[j, i] = True
    started = time.perf_counter()
    labels = constrained_average_linkage(vectors, cannot, 0.62)
    assert time.perf_counter() - started < 5.0
    first = list(dict.fromkeys(truth.tolist()))
    np.testing.assert_array_equal(labels, [first.index(int(t)) for t in truth])


def first_row_labels(labels: np.ndarray) -> list[int]:
    """Relabel a partition 0..k-1 in order of first row."""
    first: dict[int, int] = {}
    return [first.setdefault(int(label), len(first)) for label in labels]


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.7, 0.9, 1.1])
def test_linkage_without_constraints_matches_scipy_average(threshold: float) -> None:
    """With no cannot-links the chain algorithm must give scipy's average-linkage cut."""
    from scipy.cluster import hierarchy  # scipy comes with scikit-learn, a dependency

    rng = np.random.default_rng(16)
    centres = random_people(6, seed=16)
    # Much noise and a low dimension: distances spread out so every cut is informative.
    vectors = unit(centres[rng.integers(0, 6, size=80), :8] + rng.normal(scale=0.5, size=(80, 8)))
    ours = constrained_average_linkage(vectors, no_links(80), threshold)
    tree = hierarchy.linkage(vectors, method="average", metric="cosine")
    reference = hierarchy.fcluster(tree, t=threshold, criterion="distance")
    assert ours.tolist() == first_row_labels(reference)
    assert 1 <= len(set(ours.tolist())) <= 80


# --- FaceArrays.from_table ----------------------------------------------------------------


def detected(
    frame: int, face_index: int, box: tuple[float, ...], emb: np.ndarray, q: float
) -> DetectedFace:
    return DetectedFace(
        frame_index=frame,
        face_index=face_index,
        timestamp_s=frame / SAMPLE_FPS,
        bbox=np.array(box, dtype=np.float32),
        landmarks=np.arange(10, dtype=np.float32).reshape(5, 2) + frame,
        det_score=0.9,
        embedding=emb.astype(np.float32),
        embedding_norm=21.5,
        sharpness=300.0,
        brightness=120.0,
        yaw=1.0,
        pitch=-2.0,
        roll=0.5,
        face_quality=q,
    )


def test_from_table_round_trip() -> None:
    people = random_people(2, seed=14)
    faces = [
        detected(0, 0, LEFT, people[0], 81.0),
        detected(0, 1, RIGHT, people[1], 55.5),
        detected(1, 0, shift(LEFT, 5), people[0], 70.25),
    ]
    table = faces_to_table(faces, "vid-12345678", "bundled")
    assert table.schema.equals(FACE_DETECTIONS_SCHEMA)
    arrays = FaceArrays.from_table(table)

    assert len(arrays) == 3
    assert arrays.frame_index.tolist() == [0, 0, 1]
    assert arrays.face_index.tolist() == [0, 1, 0]
    np.testing.assert_allclose(arrays.timestamp_s, [0.0, 0.0, 0.5])
    np.testing.assert_allclose(arrays.boxes, [LEFT, RIGHT, shift(LEFT, 5)])
    assert arrays.boxes.shape == (3, 4)
    assert arrays.embeddings.shape == (3, EMBEDDING_DIM)
    assert arrays.embeddings.dtype == np.float32
    np.testing.assert_allclose(arrays.embeddings, people[[0, 1, 0]], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(arrays.quality, [81.0, 55.5, 70.25])

    # And it clusters: the two faces of person 0 (consecutive frames) are one person.
    result = cluster_identities(arrays, PARAMS)
    assert result.person_id.tolist() == [0, -1, 0]


def test_from_table_of_chunked_table() -> None:
    """Tables read back from Parquet or concatenated come in several chunks."""
    people = random_people(1, seed=15)
    first = faces_to_table([detected(0, 0, LEFT, people[0], 80.0)], "v", "bundled")
    second = faces_to_table([detected(1, 0, LEFT, people[0], 90.0)], "v", "bundled")
    table = pa.concat_tables([first, second])
    assert table["embedding"].num_chunks == 2
    arrays = FaceArrays.from_table(table)
    assert arrays.frame_index.tolist() == [0, 1]
    np.testing.assert_allclose(arrays.embeddings, people[[0, 0]], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(arrays.quality, [80.0, 90.0])


@pytest.mark.parametrize(
    "table",
    [FACE_DETECTIONS_SCHEMA.empty_table(), faces_to_table([], "vid", "bundled")],
    ids=["schema-empty", "faces_to_table-empty"],
)
def test_from_table_empty(table: pa.Table) -> None:
    arrays = FaceArrays.from_table(table)
    assert len(arrays) == 0
    assert arrays.boxes.shape == (0, 4)
    assert arrays.embeddings.shape == (0, EMBEDDING_DIM)
    assert arrays.quality.shape == (0,)
    result = cluster_identities(arrays, PARAMS)
    assert result.people == 0
    assert result.person_id.shape == (0,)
