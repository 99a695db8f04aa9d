"""Erase people from one video's outputs: rows, images, contact sheet and manifest.

Called by ``talent forget`` (``infra/curation.forget_talent``) for every video in which the
talent appears, under the registry's lease. The outputs go first (others' stills
and the representative frames pixelated, the contact sheet and manifest rewritten, the
person's images deleted) and the
tables last: until then the tables still name the person, so a forget that stopped half-way
finds the same work when run again, and each step is idempotent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from talent_assets.core.erasure import crop_margin, faces_to_erase, hide_faces
from talent_assets.core.images import contact_sheet, crop_face, decode_image, encode_jpeg
from talent_assets.core.manifest import (
    CONTACT_SHEET_NAME,
    MANIFEST_NAME,
    representative_frame_key,
)
from talent_assets.core.objects import ObjectNotFoundError
from talent_assets.core.representative_frames import frames_from_table
from talent_assets.core.talent_frames import JPEG, cluster_rows_for_faces, sheet_label
from talent_assets.infra.representative_staging import read_staged, stage_representative
from talent_assets.infra.storage import ObjectStore
from talent_assets.infra.warehouse import Warehouse


@dataclass(frozen=True)
class VideoErasure:
    """What was erased from one video."""

    video_id: str
    people: int  # selected_frames rows removed
    faces: int  # face_detections rows removed
    files: int  # images deleted
    frames_hidden: int  # other people's frames in which the person was pixelated


def erase_people(
    warehouse: Warehouse,
    outputs: ObjectStore,
    video_id: str,
    people: set[int],
    exemplars: np.ndarray,
) -> VideoErasure:
    """Remove ``people`` of ``video_id`` from its tables and outputs (see the module doc)."""
    faces = warehouse.read("face_detections", video_id)
    clusters = warehouse.read("identity_clusters", video_id)
    selected = warehouse.read("selected_frames", video_id)
    if faces is None or clusters is None or selected is None:
        return VideoErasure(video_id, 0, 0, 0, 0)
    erase, boxes_by_frame = _erased_faces(faces, clusters, people, exemplars)
    gone = pc.is_in(selected["person_id"], pa.array(sorted(people), pa.int32()))
    kept, removed = selected.filter(pc.invert(gone)), selected.filter(gone).to_pylist()
    # Outputs first, tables last: until the tables are rewritten they still name the person,
    # so a run that stopped half-way finds the same plan when run again.
    hidden = _hide_in_kept_frames(outputs, kept.to_pylist(), boxes_by_frame)
    if len(selected):
        folder = selected["s3_key"][0].as_py().rsplit("/", 1)[0] + "/"
        hidden += _hide_in_representative_frames(outputs, folder, boxes_by_frame)
        _rewrite_sheet_and_manifest(outputs, folder, kept.to_pylist(), people)
    files = [k for r in removed for k in (r["s3_key"], r["face_s3_key"])]
    outputs.delete(files)
    warehouse.write("face_detections", video_id, faces.filter(pa.array(~erase)))
    warehouse.write("identity_clusters", video_id, _clusters_keeping(faces, clusters, erase))
    warehouse.write("selected_frames", video_id, kept)
    return VideoErasure(video_id, len(removed), int(erase.sum()), len(files), hidden)


def _erased_faces(
    faces: pa.Table, clusters: pa.Table, people: set[int], exemplars: np.ndarray
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The face_detections rows to erase, and their boxes by frame index."""
    rows = cluster_rows_for_faces(
        faces["frame_index"].to_pylist(),
        faces["face_index"].to_pylist(),
        clusters["frame_index"].to_pylist(),
        clusters["face_index"].to_pylist(),
    )
    person = (
        clusters["person_id"].to_numpy()[rows]
        if rows is not None
        else np.full(faces.num_rows, -1, np.int32)  # out of date: match by similarity only
    )
    n = faces.num_rows
    embeddings = (
        (faces["embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False)).reshape(
            n, -1
        )
        if n
        else np.zeros((0, 512), np.float32)
    )
    erase = faces_to_erase(person, embeddings, people, exemplars)
    frame = faces["frame_index"].to_numpy()
    boxes = np.stack([faces[c].to_numpy() for c in ("x1", "y1", "x2", "y2")], axis=1) if n else None
    by_frame = {int(f): boxes[erase & (frame == f)] for f in np.unique(frame[erase])}
    return erase, by_frame


def _clusters_keeping(faces: pa.Table, clusters: pa.Table, erase: np.ndarray) -> pa.Table:
    """identity_clusters without the erased faces' rows (joined on frame and face index)."""
    gone = {
        (f, i)
        for f, i, e in zip(
            faces["frame_index"].to_pylist(), faces["face_index"].to_pylist(), erase, strict=True
        )
        if e
    }
    keys = zip(clusters["frame_index"].to_pylist(), clusters["face_index"].to_pylist(), strict=True)
    return clusters.filter(pa.array([k not in gone for k in keys]))


def _hide_in_kept_frames(
    outputs: ObjectStore, kept: list[dict], boxes_by_frame: dict[int, np.ndarray]
) -> int:
    """Pixelate the erased faces in the stills (and face crops) of the people who stay."""
    hidden = 0
    for row in kept:
        boxes = boxes_by_frame.get(int(row["frame_index"]))
        if boxes is None or not len(boxes):
            continue
        frame = _image(outputs, row["s3_key"])
        if frame is None:
            continue
        frame = hide_faces(frame, boxes)
        bbox = np.array([row["x1"], row["y1"], row["x2"], row["y2"]])
        old_crop = _image(outputs, row["face_s3_key"])
        margin = crop_margin(old_crop.shape[0], bbox) if old_crop is not None else 0.5
        outputs.put_bytes(row["s3_key"], encode_jpeg(frame), JPEG)
        outputs.put_bytes(row["face_s3_key"], encode_jpeg(crop_face(frame, bbox, margin)), JPEG)
        hidden += 1
    return hidden


def _hide_in_representative_frames(
    outputs: ObjectStore, folder: str, boxes_by_frame: dict[int, np.ndarray]
) -> int:
    """Pixelate the erased faces in the representative frames (``frame_<nn>.jpg``) and in
    their staged copies, from which a re-run of ``selected_frames`` would publish them."""
    staged = read_staged(outputs, folder)
    if staged is None or not staged.num_rows:
        return 0
    frames = frames_from_table(staged)  # in time order: frame_00, frame_01, ...
    hidden = 0
    jpegs = []
    for index, frame in enumerate(frames):
        boxes = boxes_by_frame.get(frame.frame_index)
        if boxes is None or not len(boxes):
            jpegs.append(frame.jpeg)
            continue
        image = decode_image(frame.jpeg)
        jpeg = encode_jpeg(hide_faces(image, boxes)) if image is not None else frame.jpeg
        outputs.put_bytes(representative_frame_key(folder, index), jpeg, JPEG)
        jpegs.append(jpeg)
        hidden += 1
    if hidden:
        ordered = staged.sort_by("timestamp_s")
        column = ordered.schema.get_field_index("jpeg")
        rewritten = ordered.set_column(column, "jpeg", pa.array(jpegs, pa.binary()))
        stage_representative(outputs, folder, rewritten)
    return hidden


def _rewrite_sheet_and_manifest(
    outputs: ObjectStore, folder: str, kept: list[dict], people: set[int]
) -> None:
    crops = [_image(outputs, r["face_s3_key"]) for r in kept]
    tiles = [(c, r) for c, r in zip(crops, kept, strict=True) if c is not None]
    sheet = contact_sheet(
        [c for c, _ in tiles], [sheet_label(r["person_id"], r["timestamp_s"]) for _, r in tiles]
    )
    outputs.put_bytes(folder + CONTACT_SHEET_NAME, encode_jpeg(sheet), JPEG)
    try:
        manifest = json.loads(outputs.get_bytes(folder + MANIFEST_NAME))
    except (ObjectNotFoundError, ValueError):
        return
    manifest["results"] = [r for r in manifest["results"] if r["person_id"] not in people]
    manifest["people_found"] = len(manifest["results"])
    outputs.put_bytes(
        folder + MANIFEST_NAME, json.dumps(manifest, indent=2).encode(), "application/json"
    )


def _image(outputs: ObjectStore, key: str) -> np.ndarray | None:
    try:
        return decode_image(outputs.get_bytes(key))
    except ObjectNotFoundError:
        return None
