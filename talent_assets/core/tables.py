"""Arrow schemas of the warehouse tables.

The four pipeline tables hold one Parquet file per table and video
(``<table>/video_id=<id>/part-0.parquet``). The registry's tables are not per video:
``talents``, ``talent_appearances`` and ``talent_photos`` are one file each
(``<table>/part-0.parquet``), rewritten by each registry update; ``talent_events`` is
append-only, one small file per event (``<table>/<time>-<event id>.parquet``).
"""

from __future__ import annotations

import pyarrow as pa

from modal_gpu.schema import EMBEDDING_DIM, FACE_DETECTIONS_SCHEMA

EMBEDDING = pa.list_(pa.float32(), EMBEDDING_DIM)

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
        # A few diverse identifiable faces of the person: what the talent registry matches
        # across videos (null in partitions written before the registry existed).
        pa.field("exemplars", pa.list_(EMBEDDING)),
    ]
)

TALENTS_SCHEMA = pa.schema(
    [
        pa.field("talent_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("exemplars", pa.list_(EMBEDDING), nullable=False),
        pa.field("best_frame_key", pa.string()),
        pa.field("best_face_key", pa.string()),
        pa.field("videos", pa.list_(pa.string()), nullable=False),
        pa.field("people", pa.int32(), nullable=False),
        pa.field("screen_time_s", pa.float64(), nullable=False),
        pa.field("first_seen", pa.timestamp("us", tz="UTC")),
        pa.field("last_seen", pa.timestamp("us", tz="UTC")),
        pa.field("enrolled", pa.bool_(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("updated_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

TALENT_APPEARANCES_SCHEMA = pa.schema(
    [
        pa.field("talent_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("person_id", pa.int32(), nullable=False),
        # The person's strongest link to another member of the talent (null: it stands alone).
        pa.field("similarity", pa.float32()),
        pa.field("screen_time_s", pa.float64(), nullable=False),
        pa.field("timestamp_s", pa.float64(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("s3_key", pa.string(), nullable=False),
        pa.field("face_s3_key", pa.string(), nullable=False),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

TALENT_PHOTOS_SCHEMA = pa.schema(
    [
        pa.field("talent_id", pa.string(), nullable=False),
        pa.field("photo", pa.string(), nullable=False),  # the file name given at enrolment
        pa.field("embedding", EMBEDDING, nullable=False),
        pa.field("face_quality", pa.float32(), nullable=False),
        pa.field("enrolled_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

TALENT_EVENTS_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("actor", pa.string(), nullable=False),
        pa.field("event", pa.string(), nullable=False),  # enrol, name, merge, split, forget
        pa.field("talent_id", pa.string(), nullable=False),
        pa.field("other_talent_id", pa.string()),
        pa.field("name", pa.string()),
        pa.field("detail", pa.string(), nullable=False),  # JSON; never biometric data
    ]
)

TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "videos": VIDEOS_SCHEMA,
    "face_detections": FACE_DETECTIONS_SCHEMA,
    "identity_clusters": IDENTITY_CLUSTERS_SCHEMA,
    "selected_frames": SELECTED_FRAMES_SCHEMA,
}

#: The registry's tables (not partitioned by video).
REGISTRY_SCHEMAS: dict[str, pa.Schema] = {
    "talents": TALENTS_SCHEMA,
    "talent_appearances": TALENT_APPEARANCES_SCHEMA,
    "talent_photos": TALENT_PHOTOS_SCHEMA,
    "talent_events": TALENT_EVENTS_SCHEMA,
}
