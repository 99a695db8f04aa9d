"""Who counts as a person, and which face is their talent frame, on hard footage.

Synthetic faces calibrated to what the bundled models measure on real faces
(docs/performance.md): a person's clean faces sit ~0.95 from their centre, different people
<= 0.25 apart, an unidentifiable face 0.1-0.8 from its own person; clean embedding norms
20-27, blurred or occluded 15-18.5; sharpness per px of face height >= 0.33 when in focus.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from modal_gpu.schema import EMBEDDING_DIM
from talent_assets.core.clustering import ClusteringParams, FaceArrays, cluster_identities
from talent_assets.core.selection import SelectionParams, occlusion_score, select_best_frames

SAMPLE_FPS = 2.0
BOX = (100.0, 100.0, 180.0, 200.0)  # a 100-px face
RIGHT = (700.0, 100.0, 780.0, 200.0)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def person(seed: int) -> np.ndarray:
    return unit(np.random.default_rng(seed).normal(size=EMBEDDING_DIM))


def blend(identity: np.ndarray, similarity: float, seed: int) -> np.ndarray:
    """A unit vector with cosine ``similarity`` to ``identity``."""
    noise = np.random.default_rng(seed).normal(size=EMBEDDING_DIM)
    noise = unit(noise - (noise @ identity) * identity)
    return unit(similarity * identity + np.sqrt(1 - similarity**2) * noise)


@dataclass
class Faces:
    rows: list[dict] = field(default_factory=list)

    def add(
        self,
        frame: int,
        vector: np.ndarray,
        *,
        box: tuple[float, float, float, float] = BOX,
        quality: float = 80.0,
        norm: float = 23.0,
        sharpness: float = 150.0,
    ) -> None:
        index = sum(1 for r in self.rows if r["frame"] == frame)
        self.rows.append(
            dict(
                frame=frame, index=index, box=box, emb=vector, q=quality, norm=norm, sharp=sharpness
            )
        )

    def arrays(self) -> FaceArrays:
        r = self.rows
        return FaceArrays(
            frame_index=np.array([x["frame"] for x in r], np.int64),
            face_index=np.array([x["index"] for x in r], np.int64),
            timestamp_s=np.array([x["frame"] / SAMPLE_FPS for x in r]),
            boxes=np.array([x["box"] for x in r], np.float64),
            embeddings=np.stack([x["emb"] for x in r]).astype(np.float32),
            quality=np.array([x["q"] for x in r], np.float64),
            embedding_norm=np.array([x["norm"] for x in r], np.float64),
            sharpness=np.array([x["sharp"] for x in r], np.float64),
        )


PARAMS = ClusteringParams(sample_fps=SAMPLE_FPS)


def test_a_guest_in_short_flashes_is_a_person_wherever_the_flashes_are() -> None:
    host, guest = person(1), person(2)
    faces = Faces()
    for frame in range(40):
        if frame in (7, 21, 33):  # three one-sample flashes, far apart, cut-aways
            faces.add(frame, blend(guest, 0.95, frame), box=RIGHT)
        else:
            faces.add(frame, blend(host, 0.95, frame))
    result = cluster_identities(faces.arrays(), PARAMS)
    assert result.people == 2
    guest_rows = [i for i, r in enumerate(faces.rows) if r["frame"] in (7, 21, 33)]
    assert len({int(result.person_id[i]) for i in guest_rows}) == 1
    assert result.person_id[guest_rows[0]] >= 0
    # 1.5 s on screen: the optional screen-time filter (off by default) would drop the guest.
    strict = ClusteringParams(sample_fps=SAMPLE_FPS, min_screen_time_s=2.0)
    assert cluster_identities(faces.arrays(), strict).people == 1


def test_one_identifiable_frame_is_not_evidence() -> None:
    faces = Faces()
    faces.add(0, blend(person(3), 0.95, 0))
    faces.add(1, blend(person(3), 0.95, 1), norm=16.0)  # a second face, but blurred
    result = cluster_identities(faces.arrays(), PARAMS)
    assert result.people == 0 and (result.person_id == -1).all()
    assert result.identifiable.tolist() == [True, False]


def test_unidentifiable_faces_never_found_a_person() -> None:
    """A blur seen for a long time (low norm / low quality / soft for its size) is nobody."""
    faces = Faces()
    ghost = person(4)
    for frame in range(10):
        faces.add(frame, blend(ghost, 0.95, frame), norm=16.5)
    for frame in range(10, 20):
        faces.add(frame, blend(ghost, 0.95, frame), quality=30.0)
    for frame in range(20, 30):  # large in the frame but soft on its crop: out of focus
        faces.add(frame, blend(ghost, 0.95, frame), sharpness=22.0)
    result = cluster_identities(faces.arrays(), PARAMS)
    assert result.people == 0
    assert not result.identifiable.any()


def test_an_unidentifiable_face_joins_through_its_track() -> None:
    anna = person(5)
    faces = Faces()
    for frame in range(6):
        faces.add(frame, blend(anna, 0.95, frame))
    for frame in range(6, 10):  # same shot, same place, the camera's focus drifts
        faces.add(frame, blend(anna, 0.6, frame), norm=16.0, sharpness=20.0)
    result = cluster_identities(faces.arrays(), PARAMS)
    assert result.people == 1 and (result.person_id == 0).all()


def test_a_separate_blurred_stretch_joins_only_a_clearly_similar_person() -> None:
    anna, bob = person(6), person(7)
    faces = Faces()
    for frame in range(6):
        faces.add(frame, blend(anna, 0.95, frame))
        faces.add(frame, blend(bob, 0.95, frame + 100), box=RIGHT)
    for frame in range(20, 24):  # after a cut: anna out of focus, clearly anna
        faces.add(frame, blend(anna, 0.55, frame), norm=16.0)
    for frame in range(40, 44):  # after another cut: a blur like nobody in particular
        faces.add(frame, unit(blend(anna, 0.3, frame) + blend(bob, 0.3, frame + 7)), norm=16.0)
    result = cluster_identities(faces.arrays(), PARAMS)
    ids = result.person_id
    assert result.people == 2
    anna_id = ids[0]
    assert (ids[[i for i, r in enumerate(faces.rows) if 20 <= r["frame"] < 24]] == anna_id).all()
    assert (ids[[i for i, r in enumerate(faces.rows) if r["frame"] >= 40]] == -1).all()


def test_a_blurred_track_on_screen_with_a_person_is_never_that_person() -> None:
    anna = person(8)
    faces = Faces()
    for frame in range(6):
        faces.add(frame, blend(anna, 0.95, frame))
        # Another face in the same frames, blurred, that resembles anna: a look-alike, not her.
        faces.add(frame, blend(anna, 0.6, frame + 50), box=RIGHT, norm=16.0)
    result = cluster_identities(faces.arrays(), PARAMS)
    right = [i for i, r in enumerate(faces.rows) if r["box"] == RIGHT]
    assert (result.person_id[right] == -1).all()
    assert result.people == 1


def test_occlusion_score_from_the_embedding_norm() -> None:
    params = SelectionParams()
    scores = occlusion_score(np.array([26.5, 26.0, 24.0, 22.0, 19.0]), 26.5, params)
    assert scores[0] == 0.0 and scores[1] == 0.0  # within 3 % of the strongest face
    assert 0.4 < scores[2] < 0.6  # a microphone over the mouth: 9 % weaker
    assert scores[3] == 1.0 and scores[4] == 1.0  # 17 % and more: occluded or blurred


def test_the_talent_frame_is_never_occluded_when_a_clear_face_exists() -> None:
    anna = person(9)
    faces = Faces()
    for frame in range(8):  # large, frontal, sharp, high quality: but behind a microphone
        faces.add(frame, blend(anna, 0.94, frame), quality=95.0, norm=24.0, box=(0, 0, 200, 240))
    for frame in range(8, 11):  # smaller and plainer, but clear
        faces.add(frame, blend(anna, 0.97, frame), quality=88.0, norm=26.5)
    arrays = faces.arrays()
    clusters = cluster_identities(arrays, PARAMS)
    chosen = select_best_frames(
        arrays, clusters.person_id, SelectionParams(sample_fps=SAMPLE_FPS), clusters.identifiable
    )
    assert len(chosen) == 1
    assert arrays.frame_index[chosen[0].face] >= 8
    assert chosen[0].occlusion == 0.0
    # Without the clear stretch the least occluded face is chosen, and says so.
    only_occluded = Faces(rows=faces.rows[:8])
    arrays = only_occluded.arrays()
    clusters = cluster_identities(arrays, PARAMS)
    chosen = select_best_frames(
        arrays, clusters.person_id, SelectionParams(sample_fps=SAMPLE_FPS), clusters.identifiable
    )
    assert chosen[0].occlusion == 0.0  # relative to the best face this person has
