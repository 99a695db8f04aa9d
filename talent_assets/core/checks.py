"""Data-quality checks behind the assets' Dagster asset checks: (passed, reason) pairs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def check_schema(table: pa.Table, expected: pa.Schema) -> tuple[bool, str]:
    """Columns and types are exactly the contract's."""
    if table.schema.remove_metadata().equals(expected.remove_metadata(), check_metadata=False):
        return True, f"{len(expected)} columns as specified"
    got = {f.name: str(f.type) for f in table.schema}
    want = {f.name: str(f.type) for f in expected}
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = sorted(n for n in set(want) & set(got) if want[n] != got[n])
    return False, f"schema differs: missing {missing}, extra {extra}, wrong type {differ}"


def check_embedding_norms(table: pa.Table, tolerance: float = 1e-3) -> tuple[bool, str]:
    """Every stored embedding is L2-normalised."""
    if table.num_rows == 0:
        return True, "no faces"
    flat = table["embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    norms = np.linalg.norm(flat.reshape(table.num_rows, -1), axis=1)
    worst = float(np.abs(norms - 1.0).max())
    if worst <= tolerance:
        return True, f"all {table.num_rows} embeddings have unit norm (max error {worst:.1e})"
    bad = int((np.abs(norms - 1.0) > tolerance).sum())
    return False, f"{bad} embeddings are not unit norm (max error {worst:.3f})"


def check_frames_analyzed(frames: int) -> tuple[bool, str]:
    """Detection looked at at least one frame."""
    if frames >= 1:
        return True, f"{frames} frames analysed"
    return False, "no frame was analysed"


def check_every_face_assigned(clusters: pa.Table, faces: pa.Table) -> tuple[bool, str]:
    """identity_clusters has exactly one row per detected face."""
    if clusters.num_rows != faces.num_rows:
        return False, f"{clusters.num_rows} cluster rows for {faces.num_rows} faces"
    return True, f"{faces.num_rows} faces assigned"


def check_one_person_per_frame(clusters: pa.Table) -> tuple[bool, str]:
    """No person appears twice in the same frame."""
    if clusters.num_rows == 0:
        return True, "no faces"
    frame = clusters["frame_index"].to_numpy()
    person = clusters["person_id"].to_numpy()
    keep = person >= 0
    pairs = np.stack([frame[keep], person[keep]], axis=1)
    duplicates = len(pairs) - len(np.unique(pairs, axis=0)) if len(pairs) else 0
    if duplicates:
        return False, f"{duplicates} faces share a frame with another face of the same person"
    return True, "no person appears twice in one frame"


def check_person_ids_contiguous(person_ids: list[int]) -> tuple[bool, str]:
    """Person ids are exactly 0..n-1."""
    ids = sorted(person_ids)
    if ids == list(range(len(ids))):
        return True, f"person ids 0..{len(ids) - 1}" if ids else "no people"
    return False, f"person ids are not 0..n-1: {ids}"
