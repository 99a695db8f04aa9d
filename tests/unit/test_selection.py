"""Unit tests for talent_assets.core.selection: the talent frame of each person."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modal_gpu.schema import EMBEDDING_DIM
from talent_assets.core.clustering import FaceArrays
from talent_assets.core.selection import SelectionParams, centrality_score, select_best_frames

PARAMS = SelectionParams()  # sample_fps = 2


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def make_faces(
    frames: list[int],
    embeddings: np.ndarray,
    quality: list[float],
    sample_fps: float = 2.0,
) -> FaceArrays:
    n = len(frames)
    frame_index = np.array(frames, np.int64)
    face_index = np.zeros(n, np.int64)
    for i in range(n):  # position within its frame
        face_index[i] = int((frame_index[:i] == frame_index[i]).sum())
    return FaceArrays(
        frame_index=frame_index,
        face_index=face_index,
        timestamp_s=frame_index / sample_fps,
        boxes=np.tile([100.0, 100.0, 200.0, 220.0], (n, 1)),
        embeddings=np.asarray(embeddings, np.float32),
        quality=np.array(quality, np.float64),
    )


def noisy(person: np.ndarray, n: int, rng: np.random.Generator, scale: float = 0.02) -> np.ndarray:
    return unit(person + rng.normal(scale=scale, size=(n, EMBEDDING_DIM)))


def test_centrality_beats_a_sharp_outlier() -> None:
    """The top-quality face is barely like the person (a clustering stray): not chosen."""
    rng = np.random.default_rng(0)
    person, stranger = unit(rng.normal(size=(2, EMBEDDING_DIM)))
    typical = noisy(person, 8, rng)
    outlier = noisy(stranger, 1, rng)
    embeddings = np.vstack([typical, outlier])
    quality = [60, 70, 88, 75, 65, 80, 72, 68, 99]  # outlier (row 8) has the best quality
    faces = make_faces(list(range(9)), embeddings, quality)
    person_id = np.zeros(9, np.int32)

    (chosen,) = select_best_frames(faces, person_id, PARAMS)
    assert chosen.face == 2  # the best of the typical faces
    assert chosen.face_quality == pytest.approx(88.0)
    assert chosen.centrality == pytest.approx(1.0)
    assert chosen.score == pytest.approx(0.75 * 88 + 25.0, abs=0.01)

    # Centrality is what made the difference: without it the outlier wins.
    (quality_only,) = select_best_frames(faces, person_id, SelectionParams(centrality_weight=0.0))
    assert quality_only.face == 8
    assert quality_only.score == pytest.approx(99.0)


def test_centroid_is_unit_and_close_to_the_person() -> None:
    rng = np.random.default_rng(1)
    (person,) = unit(rng.normal(size=(1, EMBEDDING_DIM)))
    faces = make_faces(list(range(6)), noisy(person, 6, rng), [50, 60, 70, 80, 90, 55])
    (chosen,) = select_best_frames(faces, np.zeros(6, np.int32), PARAMS)
    assert chosen.centroid.shape == (EMBEDDING_DIM,)
    assert chosen.centroid.dtype == np.float32
    assert float(np.linalg.norm(chosen.centroid)) == pytest.approx(1.0, abs=1e-5)
    assert float(chosen.centroid @ person) > 0.95
    assert chosen.face == 4


def test_screen_time_first_and_last_seen() -> None:
    rng = np.random.default_rng(2)
    a, b = unit(rng.normal(size=(2, EMBEDDING_DIM)))
    # Person 0 in frames 3, 4, 4 (two faces in one frame: counted once), 10; person 1 in 5, 6.
    frames = [3, 4, 4, 10, 5, 6]
    embeddings = np.vstack([noisy(a, 4, rng), noisy(b, 2, rng)])
    person_id = np.array([0, 0, 0, 0, 1, 1], np.int32)
    faces = make_faces(frames, embeddings, [70] * 6)

    first, second = select_best_frames(faces, person_id, PARAMS)
    assert first.person_id == 0
    assert first.faces == 4
    assert first.screen_time_s == pytest.approx(3 * 0.5)  # 3 distinct frames at 2 fps
    assert first.first_seen_s == pytest.approx(1.5)
    assert first.last_seen_s == pytest.approx(5.0)
    assert second.person_id == 1
    assert second.faces == 2
    assert second.screen_time_s == pytest.approx(1.0)
    assert second.first_seen_s == pytest.approx(2.5)
    assert second.last_seen_s == pytest.approx(3.0)

    # At 5 samples per second each frame is worth 0.2 s.
    (first5, _) = select_best_frames(faces, person_id, SelectionParams(sample_fps=5.0))
    assert first5.screen_time_s == pytest.approx(0.6)


def test_ordered_by_person_id_and_noise_ignored() -> None:
    rng = np.random.default_rng(3)
    people = unit(rng.normal(size=(4, EMBEDDING_DIM)))
    # Rows are interleaved and person ids are not in row order; -1 rows are noise.
    person_id = np.array([2, -1, 0, 1, 2, 0, -1, 1, 0], np.int32)
    embeddings = np.vstack(
        [noisy(people[p] if p >= 0 else people[3], 1, rng) for p in person_id.tolist()]
    )
    quality = [40, 100, 50, 60, 45, 55, 100, 65, 52]  # noise faces have the best quality
    faces = make_faces(list(range(9)), embeddings, quality)

    selections = select_best_frames(faces, person_id, PARAMS)
    assert [s.person_id for s in selections] == [0, 1, 2]
    chosen_rows = {s.person_id: s.face for s in selections}
    assert chosen_rows == {0: 5, 1: 7, 2: 4}
    for s in selections:
        assert person_id[s.face] == s.person_id
    assert sum(s.faces for s in selections) == 7


def test_only_noise_gives_nothing() -> None:
    rng = np.random.default_rng(4)
    faces = make_faces([0, 1], noisy(unit(rng.normal(size=EMBEDDING_DIM)), 2, rng), [90, 90])
    assert select_best_frames(faces, np.array([-1, -1], np.int32), PARAMS) == []


def test_ties_go_to_the_earliest_face() -> None:
    rng = np.random.default_rng(5)
    (person,) = unit(rng.normal(size=(1, EMBEDDING_DIM)))
    embeddings = np.repeat(person[None, :], 4, axis=0)  # identical: identical scores
    faces = make_faces([7, 3, 5, 9], embeddings, [80, 80, 80, 80])
    (chosen,) = select_best_frames(faces, np.zeros(4, np.int32), PARAMS)
    assert chosen.face == 1  # frame 3 is the earliest


def test_centrality_score_mapping() -> None:
    sims = np.array([-1.0, 0.0, 0.30, 0.525, 0.75, 0.9, 1.0])
    np.testing.assert_allclose(centrality_score(sims, PARAMS), [0, 0, 0, 0.5, 1, 1, 1])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 30),
    people=st.integers(1, 4),
    weight=st.floats(0.0, 1.0),
    noise=st.floats(0.0, 2.0),
)
def test_property_scores_in_range(
    seed: int, n: int, people: int, weight: float, noise: float
) -> None:
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(people, EMBEDDING_DIM)))
    person_id = rng.integers(-1, people, size=n).astype(np.int32)
    embeddings = np.vstack(
        [noisy(centres[max(p, 0)], 1, rng, scale=noise / 20) for p in person_id.tolist()]
    )
    quality = rng.uniform(0.0, 100.0, size=n)
    faces = make_faces(rng.integers(0, 50, size=n).tolist(), embeddings, quality.tolist())
    selections = select_best_frames(faces, person_id, SelectionParams(centrality_weight=weight))
    expected_ids = sorted({int(p) for p in person_id if p >= 0})
    assert [s.person_id for s in selections] == expected_ids
    for s in selections:
        assert 0.0 <= s.score <= 100.0
        assert 0.0 <= s.centrality <= 1.0
        assert person_id[s.face] == s.person_id
        assert s.first_seen_s <= faces.timestamp_s[s.face] <= s.last_seen_s
        rows = person_id == s.person_id
        assert s.faces == int(rows.sum())
        assert s.screen_time_s == pytest.approx(len(np.unique(faces.frame_index[rows])) * 0.5)
