"""The predicates behind the assets' Dagster asset checks: each passes and fails, with its reason.

README: "asset checks (schema, unit-norm embeddings, frames analysed, every face assigned, one
person per frame, contiguous person ids)" and "asset checks show pass/fail with their reasons".
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from modal_gpu.schema import EMBEDDING_DIM, FACE_DETECTIONS_SCHEMA
from talent_assets.core.checks import (
    check_embedding_norms,
    check_every_face_assigned,
    check_frames_analyzed,
    check_one_person_per_frame,
    check_person_ids_contiguous,
    check_schema,
)
from talent_assets.core.tables import IDENTITY_CLUSTERS_SCHEMA, TABLE_SCHEMAS


def face_rows(embeddings: np.ndarray) -> pa.Table:
    """``face_detections`` rows, one face per frame, with the given embeddings."""
    n = len(embeddings)
    constant = {"x1": 10.0, "y1": 10.0, "x2": 60.0, "y2": 70.0, "det_score": 0.9}
    constant |= {"sharpness": 100.0, "brightness": 120.0, "yaw": 0.0, "pitch": 0.0, "roll": 0.0}
    constant |= {"face_quality": 80.0, "embedding_norm": 1.0, "landmarks": [20.0] * 10}
    rows = [
        {
            **constant,
            "video_id": "vid",
            "frame_index": i,
            "face_index": 0,
            "timestamp_s": i / 2.0,
            "embedding": embeddings[i].astype(np.float32).tolist(),
            "model_pack": "bundled",
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=FACE_DETECTIONS_SCHEMA)


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, EMBEDDING_DIM))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def cluster_rows(frames: list[int], persons: list[int]) -> pa.Table:
    """``identity_clusters`` rows; columns the checks do not read are left null."""
    n = len(frames)
    columns = {
        "video_id": ["vid"] * n,
        "frame_index": frames,
        "face_index": list(range(n)),
        "timestamp_s": [f / 2.0 for f in frames],
        "track_id": list(range(n)),
        "person_id": persons,
    }
    schema = IDENTITY_CLUSTERS_SCHEMA
    arrays = [
        pa.array(columns[f.name], f.type) if f.name in columns else pa.nulls(n, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


# --- schema_matches ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TABLE_SCHEMAS))
def test_schema_passes_for_every_table_contract(name: str) -> None:
    schema = TABLE_SCHEMAS[name]
    ok, reason = check_schema(schema.empty_table(), schema)
    assert ok, reason
    assert reason == f"{len(schema)} columns as specified"


def test_schema_ignores_schema_metadata() -> None:
    table = face_rows(unit_vectors(2)).replace_schema_metadata({"written_by": "worker"})
    expected = f"{len(FACE_DETECTIONS_SCHEMA)} columns as specified"
    assert check_schema(table, FACE_DETECTIONS_SCHEMA) == (True, expected)


def test_schema_fails_naming_missing_extra_and_mistyped_columns() -> None:
    table = face_rows(unit_vectors(2))
    table = table.drop_columns(["brightness"]).append_column("colour", pa.array(["red", "blue"]))
    position = table.schema.get_field_index("face_quality")
    table = table.set_column(
        position, pa.field("face_quality", pa.float64()), table["face_quality"].cast(pa.float64())
    )
    ok, reason = check_schema(table, FACE_DETECTIONS_SCHEMA)
    assert not ok
    assert reason == (
        "schema differs: missing ['brightness'], extra ['colour'], wrong type ['face_quality']"
    )


def test_schema_fails_on_a_wrong_embedding_width() -> None:
    fields = [
        pa.field("embedding", pa.list_(pa.float32(), 128), nullable=False)
        if f.name == "embedding"
        else f
        for f in FACE_DETECTIONS_SCHEMA
    ]
    ok, reason = check_schema(pa.schema(fields).empty_table(), FACE_DETECTIONS_SCHEMA)
    assert not ok
    assert reason == "schema differs: missing [], extra [], wrong type ['embedding']"


# --- embeddings_unit_norm ------------------------------------------------------------------------


def test_unit_norm_passes_on_normalised_embeddings() -> None:
    ok, reason = check_embedding_norms(face_rows(unit_vectors(5)))
    assert ok, reason
    assert reason.startswith("all 5 embeddings have unit norm (max error ")


def test_unit_norm_passes_with_no_faces() -> None:
    assert check_embedding_norms(FACE_DETECTIONS_SCHEMA.empty_table()) == (True, "no faces")


def test_unit_norm_fails_counting_the_bad_embeddings_and_the_worst_error() -> None:
    vectors = unit_vectors(6)
    vectors[1] *= 1.25  # norm 1.25
    vectors[4] *= 0.99  # norm 0.99
    ok, reason = check_embedding_norms(face_rows(vectors))
    assert not ok
    assert reason == "2 embeddings are not unit norm (max error 0.250)"


def test_unit_norm_fails_on_a_raw_unnormalised_embedding() -> None:
    # What a detector that forgot to L2-normalise ArcFace's output would store.
    raw = np.random.default_rng(1).normal(size=(3, EMBEDDING_DIM)) * 20
    ok, reason = check_embedding_norms(face_rows(raw))
    assert not ok
    assert reason.startswith("3 embeddings are not unit norm")


def test_unit_norm_tolerance_is_a_thousandth() -> None:
    vectors = unit_vectors(2)
    vectors[0] *= 1.0005
    assert check_embedding_norms(face_rows(vectors))[0]
    vectors[0] *= 1.002 / 1.0005
    ok, reason = check_embedding_norms(face_rows(vectors))
    assert not ok and reason.startswith("1 embeddings are not unit norm")


# --- frames_analyzed -----------------------------------------------------------------------------


def test_frames_analyzed_passes_from_one_frame() -> None:
    assert check_frames_analyzed(1) == (True, "1 frames analysed")
    assert check_frames_analyzed(16) == (True, "16 frames analysed")


def test_frames_analyzed_fails_when_nothing_was_analysed() -> None:
    assert check_frames_analyzed(0) == (False, "no frame was analysed")


# --- every_face_assigned -------------------------------------------------------------------------


def test_every_face_assigned_passes_with_one_row_per_face() -> None:
    faces = face_rows(unit_vectors(3))
    clusters = cluster_rows([0, 1, 2], [0, 0, -1])
    assert check_every_face_assigned(clusters, faces) == (True, "3 faces assigned")


def test_every_face_assigned_passes_with_no_faces() -> None:
    faces = FACE_DETECTIONS_SCHEMA.empty_table()
    assert check_every_face_assigned(cluster_rows([], []), faces) == (True, "0 faces assigned")


@pytest.mark.parametrize(
    ("rows", "reason"), [(2, "2 cluster rows for 3 faces"), (4, "4 cluster rows for 3 faces")]
)
def test_every_face_assigned_fails_when_rows_are_missing_or_extra(rows: int, reason: str) -> None:
    faces = face_rows(unit_vectors(3))
    clusters = cluster_rows(list(range(rows)), [0] * rows)
    assert check_every_face_assigned(clusters, faces) == (False, reason)


# --- one_person_per_frame ------------------------------------------------------------------------


def test_one_person_per_frame_passes_for_different_people_in_a_frame() -> None:
    clusters = cluster_rows([0, 0, 1, 1], [0, 1, 0, 1])
    assert check_one_person_per_frame(clusters) == (True, "no person appears twice in one frame")


def test_one_person_per_frame_ignores_noise_faces() -> None:
    # person_id -1 marks noise; several noise faces in one frame are not one person.
    clusters = cluster_rows([3, 3, 3], [-1, -1, 0])
    assert check_one_person_per_frame(clusters)[0]


def test_one_person_per_frame_passes_with_no_faces() -> None:
    assert check_one_person_per_frame(cluster_rows([], [])) == (True, "no faces")


def test_one_person_per_frame_fails_counting_the_duplicates() -> None:
    clusters = cluster_rows([0, 0, 0, 5, 5, 6], [2, 2, 2, 1, 1, 1])
    ok, reason = check_one_person_per_frame(clusters)
    assert not ok
    # Frame 0 holds person 2 three times (2 extra), frame 5 person 1 twice (1 extra).
    assert reason == "3 faces share a frame with another face of the same person"


# --- person_ids_contiguous -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "reason"),
    [([], "no people"), ([0], "person ids 0..0"), ([2, 0, 1], "person ids 0..2")],
)
def test_person_ids_contiguous_passes(ids: list[int], reason: str) -> None:
    assert check_person_ids_contiguous(ids) == (True, reason)


@pytest.mark.parametrize(
    ("ids", "shown"),
    [([1], "[1]"), ([0, 2], "[0, 2]"), ([0, 0, 1], "[0, 0, 1]"), ([-1, 0], "[-1, 0]")],
)
def test_person_ids_contiguous_fails_showing_the_ids(ids: list[int], shown: str) -> None:
    assert check_person_ids_contiguous(ids) == (False, f"person ids are not 0..n-1: {shown}")
