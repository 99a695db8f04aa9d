"""``face_detections``: every face in the sampled frames, with embedding and quality."""

import time
from typing import Any

import numpy as np
import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Backoff,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from modal_gpu.detection import DetectionStats
from modal_gpu.representative import Candidate
from modal_gpu.video import VideoError
from talent_assets.core.checks import check_embedding_norms, check_frames_analyzed, check_schema
from talent_assets.core.manifest import output_folder
from talent_assets.core.progress import ProgressLog
from talent_assets.core.representative_frames import staged_table
from talent_assets.core.tables import TABLE_SCHEMAS
from talent_assets.defs.assets.raw_video import raw_video, recorded_video
from talent_assets.defs.failures import input_failure
from talent_assets.defs.partitions import videos_partitions
from talent_assets.defs.resources import FaceDetector, TalentStorage, VideoSource
from talent_assets.infra.representative_staging import stage_representative, unstage

# face_detections metadata: the run that staged the representative frames it chose.
REPRESENTATIVE_RUN_KEY = "representative_frames_run"


@asset(
    partitions_def=videos_partitions,
    deps=[raw_video],
    group_name="talent",
    kinds={"insightface", "modal", "parquet"},
    retry_policy=RetryPolicy(max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL),
    check_specs=[
        AssetCheckSpec(
            "schema_matches",
            asset="face_detections",
            description="The table has exactly the documented columns and types.",
        ),
        AssetCheckSpec(
            "embeddings_unit_norm",
            asset="face_detections",
            description="Every ArcFace embedding is L2-normalised (cosine = dot product).",
        ),
        AssetCheckSpec(
            "frames_analyzed",
            asset="face_detections",
            description="Detection looked at at least one sampled frame.",
        ),
    ],
    description=(
        "Sequential decode keeping TALENT_SAMPLE_FPS frames per second, SCRFD detection and "
        "ArcFace embeddings (InsightFace on onnxruntime; the CPU locally, a Modal GPU in "
        "production), plus pose, sharpness and a 0–100 quality per face; the same decode "
        "picks TALENT_REPRESENTATIVE_FRAMES evenly spaced sharp stills (staged for "
        "selected_frames). Writes the `face_detections` table."
    ),
)
def face_detections(
    context: AssetExecutionContext, storage: TalentStorage, detector: FaceDetector
) -> MaterializeResult:
    video_id = context.partition_key
    started = time.perf_counter()
    video = recorded_video(storage, video_id)
    store = storage.input_store()
    source = VideoSource(
        bucket=video["bucket"],
        key=video["key"],
        duration_s=float(video["duration_s"]),
        # Only the CPU path needs a local copy; Modal workers read S3 themselves.
        local_path=lambda: storage.video_cache().fetch(store, video["key"], video["etag"]),
        frames=int(video.get("frames") or 0),
    )
    # Progress in the run's log every few seconds, and to a front end listening in this
    # process (core.progress.listening, e.g. `talent process`).
    progress = ProgressLog(context.log.info, time.monotonic, detector.progress_interval_s)
    try:
        table, stats = detector.detect(video_id, source, progress)
    except VideoError as err:
        raise input_failure(f"{video['key']}: {err}", "invalid_video") from None
    staged = stage_representative_frames(context, storage, video, stats.representative)
    location = storage.tables().write("face_detections", video_id, table)

    schema_ok, schema_msg = check_schema(table, TABLE_SCHEMAS["face_detections"])
    norms_ok, norms_msg = check_embedding_norms(table)
    frames_ok, frames_msg = check_frames_analyzed(stats.frames_analyzed)
    wall_s = time.perf_counter() - started
    return MaterializeResult(
        metadata={
            **detection_metadata(table, stats, detector, video, wall_s),
            **staged,
            "table": MetadataValue.path(location),
        },
        check_results=[
            AssetCheckResult(check_name="schema_matches", passed=schema_ok, description=schema_msg),
            AssetCheckResult(
                check_name="embeddings_unit_norm", passed=norms_ok, description=norms_msg
            ),
            AssetCheckResult(
                check_name="frames_analyzed",
                passed=frames_ok,
                description=frames_msg,
                severity=AssetCheckSeverity.ERROR,
            ),
        ],
    )


def detection_metadata(
    table: pa.Table, stats: DetectionStats, detector: FaceDetector, video: dict, wall_s: float
) -> dict[str, Any]:
    """Counts, settings and per-stage timings of one detection."""
    quality = table["face_quality"].to_numpy() if table.num_rows else np.zeros(0)
    return {
        "faces": table.num_rows,
        "frames_analyzed": stats.frames_analyzed,
        "frames_reused": stats.frames_reused,
        "frames_with_faces": len(set(table["frame_index"].to_pylist())),
        "sample_fps": detector.sample_fps,
        "model_pack": detector.model_pack,
        "detector": detector.kind,
        "mean_face_quality": round(float(quality.mean()), 2) if len(quality) else 0.0,
        **{k: v for k, v in stats.extra.items()},
        "decode_s": round(stats.decode_s, 3),
        "inference_s": round(stats.inference_s, 3),
        "detect_wall_s": round(stats.wall_s, 3),
        "wall_s": round(wall_s, 3),
        "realtime_factor": round(video["duration_s"] / wall_s, 2) if wall_s else 0.0,
    }


def stage_representative_frames(
    context: AssetExecutionContext,
    storage: TalentStorage,
    video: dict[str, Any],
    candidates: list[Candidate],
) -> dict[str, Any]:
    """Stage the frames chosen during detection for ``selected_frames`` (replacing any
    earlier ones; none staged when there are none), and say so in the metadata: how many,
    and the run that staged them."""
    out = storage.output_store()
    folder = output_folder(storage.output_prefix, video["key"], storage.video_prefix)
    if candidates:
        stage_representative(out, folder, staged_table(candidates, context.run.run_id))
    else:
        unstage(out, folder)
    return {
        "representative_frames": len(candidates),
        REPRESENTATIVE_RUN_KEY: context.run.run_id,
    }


def face_table_of(storage: TalentStorage, video_id: str) -> pa.Table:
    """The partition's ``face_detections`` rows; fails clearly if never materialised."""
    table = storage.tables().read("face_detections", video_id)
    if table is None:
        raise input_failure(
            f"face_detections has not been materialised for {video_id}", "out_of_date"
        )
    return table
