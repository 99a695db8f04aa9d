"""The ``face_detections`` row contract shared by the CPU detector and the Modal worker."""

from __future__ import annotations

import pyarrow as pa

EMBEDDING_DIM = 512

FACE_DETECTIONS_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("frame_index", pa.int64(), nullable=False),
        # Position of the face within its frame (by detection score): the join key, with
        # video_id and frame_index, to identity_clusters.
        pa.field("face_index", pa.int32(), nullable=False),
        pa.field("timestamp_s", pa.float64(), nullable=False),
        pa.field("x1", pa.float32(), nullable=False),
        pa.field("y1", pa.float32(), nullable=False),
        pa.field("x2", pa.float32(), nullable=False),
        pa.field("y2", pa.float32(), nullable=False),
        pa.field("det_score", pa.float32(), nullable=False),
        pa.field("landmarks", pa.list_(pa.float32(), 10), nullable=False),
        pa.field("embedding", pa.list_(pa.float32(), EMBEDDING_DIM), nullable=False),
        pa.field("embedding_norm", pa.float32(), nullable=False),
        pa.field("sharpness", pa.float32(), nullable=False),
        pa.field("brightness", pa.float32(), nullable=False),
        pa.field("yaw", pa.float32()),
        pa.field("pitch", pa.float32()),
        pa.field("roll", pa.float32()),
        pa.field("face_quality", pa.float32(), nullable=False),
        pa.field("model_pack", pa.string(), nullable=False),
    ]
)


def table_to_ipc(table: pa.Table) -> bytes:
    """Serialise a table as Arrow IPC stream bytes (what the Modal worker returns)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def table_from_ipc(data: bytes) -> pa.Table:
    """Inverse of :func:`table_to_ipc`."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()
