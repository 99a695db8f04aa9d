"""Arrow schemas of the four warehouse tables (one Parquet file per table and video)."""

from __future__ import annotations

import pyarrow as pa

from modal_gpu.schema import EMBEDDING_DIM, FACE_DETECTIONS_SCHEMA

VIDEOS_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("bucket", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("etag", pa.string()),
        pa.field("size_bytes", pa.int64(), nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("fps", pa.float64(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("codec", pa.string(), nullable=False),
        pa.field("rotation", pa.int32(), nullable=False),
        pa.field("frames", pa.int64(), nullable=False),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

IDENTITY_CLUSTERS_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("frame_index", pa.int64(), nullable=False),
        pa.field("face_index", pa.int32(), nullable=False),
        pa.field("timestamp_s", pa.float64(), nullable=False),
        pa.field("track_id", pa.int32(), nullable=False),
        pa.field("person_id", pa.int32(), nullable=False),  # -1 = unassigned noise
        pa.field("similarity_to_person", pa.float32()),
        # Whether the face could found a person on its own (clear, with a strong embedding);
        # others join a person only through their track or a clear similarity.
        pa.field("identifiable", pa.bool_()),
    ]
)

SELECTED_FRAMES_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("person_id", pa.int32(), nullable=False),
        pa.field("frame_index", pa.int64(), nullable=False),
        pa.field("timestamp_s", pa.float64(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("face_quality", pa.float32(), nullable=False),
        pa.field("centrality", pa.float32(), nullable=False),
        # 0 = the face is as clear as the person's strongest, 1 = heavily occluded/blurred.
        pa.field("occlusion", pa.float32(), nullable=False),
        pa.field("x1", pa.float32(), nullable=False),
        pa.field("y1", pa.float32(), nullable=False),
        pa.field("x2", pa.float32(), nullable=False),
        pa.field("y2", pa.float32(), nullable=False),
        pa.field("s3_key", pa.string(), nullable=False),
        pa.field("face_s3_key", pa.string(), nullable=False),
        pa.field("faces", pa.int32(), nullable=False),
        pa.field("first_seen_s", pa.float64(), nullable=False),
        pa.field("last_seen_s", pa.float64(), nullable=False),
        pa.field("screen_time_s", pa.float64(), nullable=False),
        pa.field("centroid", pa.list_(pa.float32(), EMBEDDING_DIM), nullable=False),
    ]
)

TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "videos": VIDEOS_SCHEMA,
    "face_detections": FACE_DETECTIONS_SCHEMA,
    "identity_clusters": IDENTITY_CLUSTERS_SCHEMA,
    "selected_frames": SELECTED_FRAMES_SCHEMA,
}
