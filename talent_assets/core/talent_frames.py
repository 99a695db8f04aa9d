"""What ``selected_frames`` publishes for a video, built from its choices: pure.

Given each person's chosen face and the decoded frames, :func:`build_talent_frames` makes the
JPEGs (full frame, face crop, contact sheet), the manifest entries and the ``selected_frames``
rows, keyed by where they go. No I/O: the asset uploads what this returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from talent_assets.core.clustering import FaceArrays
from talent_assets.core.images import contact_sheet, crop_face, encode_jpeg
from talent_assets.core.manifest import (
    CONTACT_SHEET_NAME,
    person_entry,
    person_face_key,
    person_frame_key,
)
from talent_assets.core.selection import PersonSelection

JPEG = "image/jpeg"


@dataclass(frozen=True)
class TalentFrames:
    """Everything one video publishes, before it is uploaded."""

    files: dict[str, tuple[bytes, str]]  # key -> (data, content type), in upload order
    results: list[dict[str, Any]]  # the manifest's "results"
    rows: list[dict[str, Any]]  # the selected_frames rows
    sheet: np.ndarray  # the contact sheet image
    sheet_key: str


@dataclass(frozen=True)
class OutputLinks:
    """How the output store names an object: a link for people, and a local path or None."""

    url: Callable[[str], str]
    local_path: Callable[[str], str] | None = None


def build_talent_frames(
    *,
    video_id: str,
    folder: str,
    chosen: list[PersonSelection],
    faces: FaceArrays,
    frames: dict[int, np.ndarray],
    links: OutputLinks,
    face_margin: float,
) -> TalentFrames:
    """The frames, crops, contact sheet, manifest entries and rows for ``chosen`` people."""
    files: dict[str, tuple[bytes, str]] = {}
    results: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    crops: list[np.ndarray] = []
    for person in chosen:
        frame = frames[int(faces.frame_index[person.face])]
        crop = crop_face(frame, faces.boxes[person.face], margin=face_margin)
        crops.append(crop)
        frame_key = person_frame_key(folder, person.person_id)
        face_key = person_face_key(folder, person.person_id)
        files[frame_key] = (encode_jpeg(frame), JPEG)
        files[face_key] = (encode_jpeg(crop), JPEG)
        results.append(_result(person, faces, frame_key, face_key, links))
        rows.append(_row(video_id, person, faces, frame_key, face_key))
    sheet = contact_sheet(
        crops, [sheet_label(p.person_id, float(faces.timestamp_s[p.face])) for p in chosen]
    )
    sheet_key = f"{folder}{CONTACT_SHEET_NAME}"
    files[sheet_key] = (encode_jpeg(sheet), JPEG)
    return TalentFrames(files, results, rows, sheet, sheet_key)


def sheet_label(person_id: int, timestamp_s: float) -> str:
    """The label under a person's tile on the contact sheet."""
    return f"#{person_id}  {timestamp_s:.1f}s"


def _result(
    person: PersonSelection, faces: FaceArrays, frame_key: str, face_key: str, links: OutputLinks
) -> dict[str, Any]:
    # The talent is known once the registry has matched this video (it fills these in).
    result = selection_entry(
        person,
        faces,
        s3_key=frame_key,
        s3_url=links.url(frame_key),
        face_s3_key=face_key,
        talent_id=None,
        talent_name=None,
    )
    if links.local_path is not None:
        result["path"] = links.local_path(frame_key)
        result["face_path"] = links.local_path(face_key)
    return result


def selection_entry(person: PersonSelection, faces: FaceArrays, **extra: Any) -> dict[str, Any]:
    """The manifest entry of a chosen person (``extra`` keys follow ``person_id``)."""
    return person_entry(
        person_id=person.person_id,
        **extra,
        timestamp_s=float(faces.timestamp_s[person.face]),
        score=person.score,
        bbox=faces.boxes[person.face],
        first_seen_s=person.first_seen_s,
        last_seen_s=person.last_seen_s,
        screen_time_s=person.screen_time_s,
    )


def _row(
    video_id: str, person: PersonSelection, faces: FaceArrays, frame_key: str, face_key: str
) -> dict[str, Any]:
    bbox = faces.boxes[person.face]
    return {
        "video_id": video_id,
        "person_id": person.person_id,
        "frame_index": int(faces.frame_index[person.face]),
        "timestamp_s": float(faces.timestamp_s[person.face]),
        "score": person.score,
        "face_quality": person.face_quality,
        "centrality": person.centrality,
        "occlusion": person.occlusion,
        "x1": float(bbox[0]),
        "y1": float(bbox[1]),
        "x2": float(bbox[2]),
        "y2": float(bbox[3]),
        "s3_key": frame_key,
        "face_s3_key": face_key,
        "faces": person.faces,
        "first_seen_s": person.first_seen_s,
        "last_seen_s": person.last_seen_s,
        "screen_time_s": person.screen_time_s,
        "centroid": person.centroid.tolist(),
        "exemplars": None if person.exemplars is None else person.exemplars.tolist(),
    }


def cluster_rows_for_faces(
    faces_frame_index: list[int],
    faces_face_index: list[int],
    clusters_frame_index: list[int],
    clusters_face_index: list[int],
) -> np.ndarray | None:
    """For each face_detections row, the identity_clusters row of the same face (joined on
    frame_index, face_index); None when the clusters do not cover exactly these faces."""
    if len(clusters_frame_index) != len(faces_frame_index):
        return None
    index = {
        key: row
        for row, key in enumerate(zip(clusters_frame_index, clusters_face_index, strict=True))
    }
    try:
        return np.array(
            [index[k] for k in zip(faces_frame_index, faces_face_index, strict=True)],
            dtype=np.int64,
        )
    except KeyError:
        return None
