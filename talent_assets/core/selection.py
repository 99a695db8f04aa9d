"""Pick the talent frame of each person: a high-quality face close to the person's centre."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talent_assets.core.clustering import FaceArrays, person_centroid


@dataclass(frozen=True)
class SelectionParams:
    """Knobs of :func:`select_best_frames`."""

    # Share of the score given to how typical the face is of the person (vs. its quality):
    # a sharp, frontal face that is barely like the others may be a clustering stray.
    centrality_weight: float = 0.25
    # Cosine similarity to the centroid that counts as fully typical / not typical at all.
    centrality_full: float = 0.75
    centrality_zero: float = 0.30
    sample_fps: float = 2.0


@dataclass(frozen=True)
class PersonSelection:
    """The chosen face of one person and the person's summary."""

    person_id: int
    face: int  # row index into the FaceArrays
    score: float  # 0–100
    face_quality: float
    centrality: float
    faces: int
    first_seen_s: float
    last_seen_s: float
    screen_time_s: float
    centroid: np.ndarray


def centrality_score(similarity: np.ndarray, params: SelectionParams) -> np.ndarray:
    """Map similarity-to-centroid onto [0, 1]."""
    span = params.centrality_full - params.centrality_zero
    return np.clip((similarity - params.centrality_zero) / span, 0.0, 1.0)


def select_best_frames(
    faces: FaceArrays, person_id: np.ndarray, params: SelectionParams
) -> list[PersonSelection]:
    """One :class:`PersonSelection` per person id >= 0, ordered by person id.

    Score = (1 - w) · face_quality + w · 100 · centrality. Screen time counts the sampled
    frames a person is in, each worth one sampling interval.
    """
    selections: list[PersonSelection] = []
    interval = 1.0 / params.sample_fps if params.sample_fps > 0 else 0.0
    for pid in sorted(int(p) for p in np.unique(person_id) if p >= 0):
        rows = np.flatnonzero(person_id == pid)
        centroid = person_centroid(faces.embeddings[rows], faces.quality[rows])
        centrality = centrality_score(faces.embeddings[rows] @ centroid, params)
        w = params.centrality_weight
        scores = (1.0 - w) * faces.quality[rows] + w * 100.0 * centrality
        # Ties (common with identical quality) go to the earliest appearance: deterministic.
        best = int(np.lexsort((faces.timestamp_s[rows], -scores))[0])
        stamps = faces.timestamp_s[rows]
        selections.append(
            PersonSelection(
                person_id=pid,
                face=int(rows[best]),
                score=round(float(scores[best]), 2),
                face_quality=round(float(faces.quality[rows[best]]), 2),
                centrality=round(float(centrality[best]), 4),
                faces=len(rows),
                first_seen_s=float(stamps.min()),
                last_seen_s=float(stamps.max()),
                screen_time_s=round(len(np.unique(faces.frame_index[rows])) * interval, 3),
                centroid=centroid,
            )
        )
    return selections
