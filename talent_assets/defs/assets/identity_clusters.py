"""``identity_clusters``: which person each detected face belongs to."""

import time

import numpy as np
import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from talent_assets.core.checks import check_every_face_assigned, check_one_person_per_frame
from talent_assets.core.clustering import (
    ClusteringParams,
    FaceArrays,
    cluster_identities,
    identifiable_norm_for_pack,
    threshold_for_pack,
)
from talent_assets.core.tables import IDENTITY_CLUSTERS_SCHEMA
from talent_assets.defs.assets.face_detections import face_detections, face_table_of
from talent_assets.defs.assets.upstream import upstream_metadata
from talent_assets.defs.partitions import videos_partitions
from talent_assets.defs.resources import TalentStorage


class IdentityClusteringConfig(Config):
    """Clustering knobs. Changing them re-runs this asset and ``selected_frames`` only."""

    threshold: float | None = None  # None: the threshold calibrated for the model pack
    min_faces: int = ClusteringParams.min_faces
    min_best_quality: float = ClusteringParams.min_best_quality
    # A person needs identifiable faces in this many sampled frames, wherever they are.
    min_identifiable_frames: int = ClusteringParams.min_identifiable_frames
    min_embedding_norm: float | None = None  # None: the floor calibrated for the model pack
    min_identifiable_quality: float = ClusteringParams.min_identifiable_quality
    min_sharpness_per_px: float = ClusteringParams.min_sharpness_per_px
    join_similarity: float = ClusteringParams.join_similarity
    # Optional filter on total screen time (s); 0 keeps everyone with enough evidence.
    min_screen_time_s: float = ClusteringParams.min_screen_time_s
    track_iou: float = ClusteringParams.track_iou
    track_similarity: float = ClusteringParams.track_similarity
    track_identifiable_similarity: float = ClusteringParams.track_identifiable_similarity


@asset(
    partitions_def=videos_partitions,
    deps=[face_detections],
    group_name="talent",
    kinds={"parquet"},
    check_specs=[
        AssetCheckSpec(
            "every_face_assigned",
            asset="identity_clusters",
            description="One cluster row per detected face (a person or -1, unassigned).",
        ),
        AssetCheckSpec(
            "one_person_per_frame",
            asset="identity_clusters",
            description="No person appears twice in the same frame.",
        ),
    ],
    description=(
        "Faces linked into tracks (box overlap + embedding), tracks clustered into people by "
        "average-linkage cosine distance; faces on screen together are never merged. Only "
        "identifiable faces found people (a person needs them in 2 sampled frames); blurred "
        "or occluded faces join through their track or a clear similarity. person_id -1 "
        "marks noise. Writes the `identity_clusters` table."
    ),
)
def identity_clusters(
    context: AssetExecutionContext, config: IdentityClusteringConfig, storage: TalentStorage
) -> MaterializeResult:
    video_id = context.partition_key
    started = time.perf_counter()
    faces_table = face_table_of(storage, video_id)
    packs = set(faces_table["model_pack"].to_pylist())
    sample_fps = float(upstream_metadata(context, "face_detections").get("sample_fps", 2.0))
    params = clustering_params(config, next(iter(packs)) if len(packs) == 1 else "", sample_fps)
    faces = FaceArrays.from_table(faces_table)
    result = cluster_identities(faces, params)
    table = pa.Table.from_pydict(
        {
            "video_id": [video_id] * len(faces),
            "frame_index": faces.frame_index,
            "face_index": faces.face_index.astype(np.int32),
            "timestamp_s": faces.timestamp_s,
            "track_id": result.track_id,
            "person_id": result.person_id,
            "similarity_to_person": result.similarity,
            "identifiable": result.identifiable,
        },
        schema=IDENTITY_CLUSTERS_SCHEMA,
    )
    location = storage.tables().write("identity_clusters", video_id, table)
    assigned_ok, assigned_msg = check_every_face_assigned(table, faces_table)
    frame_ok, frame_msg = check_one_person_per_frame(table)
    return MaterializeResult(
        metadata={
            "people": result.people,
            "faces": len(faces),
            "tracks": len(np.unique(result.track_id)),
            "noise_faces": int((result.person_id < 0).sum()),
            "identifiable_faces": int(result.identifiable.sum()),
            "threshold": params.threshold,
            "table": MetadataValue.path(location),
            "wall_s": round(time.perf_counter() - started, 3),
        },
        check_results=[
            AssetCheckResult(
                check_name="every_face_assigned", passed=assigned_ok, description=assigned_msg
            ),
            AssetCheckResult(
                check_name="one_person_per_frame", passed=frame_ok, description=frame_msg
            ),
        ],
    )


def clustering_params(
    config: IdentityClusteringConfig, pack: str, sample_fps: float
) -> ClusteringParams:
    """The run config, with the threshold and norm floor calibrated for ``pack`` by default."""
    threshold = config.threshold if config.threshold is not None else threshold_for_pack(pack)
    min_norm = config.min_embedding_norm
    return ClusteringParams(
        threshold=threshold,
        min_identifiable_frames=config.min_identifiable_frames,
        min_embedding_norm=min_norm if min_norm is not None else identifiable_norm_for_pack(pack),
        min_identifiable_quality=config.min_identifiable_quality,
        min_sharpness_per_px=config.min_sharpness_per_px,
        join_similarity=config.join_similarity,
        track_iou=config.track_iou,
        track_similarity=config.track_similarity,
        track_identifiable_similarity=config.track_identifiable_similarity,
        min_faces=config.min_faces,
        min_best_quality=config.min_best_quality,
        min_screen_time_s=config.min_screen_time_s,
        sample_fps=sample_fps,
    )
