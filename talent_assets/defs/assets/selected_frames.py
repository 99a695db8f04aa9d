"""``selected_frames``: the talent frame of each person, face crops, contact sheet, manifest."""

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Backoff,
    Config,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from modal_gpu.video import VideoError, read_frames
from talent_assets.core.checks import check_person_ids_contiguous
from talent_assets.core.clustering import FaceArrays
from talent_assets.core.manifest import MANIFEST_NAME, build_manifest, output_folder
from talent_assets.core.representative_frames import (
    RepresentativeFrame,
    RepresentativeOutputs,
    frames_from_table,
    representative_outputs,
    staged_run_id,
)
from talent_assets.core.selection import PersonSelection, SelectionParams, select_best_frames
from talent_assets.core.tables import SELECTED_FRAMES_SCHEMA
from talent_assets.core.talent_frames import (
    OutputLinks,
    TalentFrames,
    build_talent_frames,
    cluster_rows_for_faces,
)
from talent_assets.defs.assets.face_detections import REPRESENTATIVE_RUN_KEY, face_table_of
from talent_assets.defs.assets.identity_clusters import identity_clusters
from talent_assets.defs.assets.people_metadata import (
    people_metadata,
    representative_metadata,
    timeline_png,
)
from talent_assets.defs.assets.raw_video import recorded_video
from talent_assets.defs.assets.upstream import upstream_metadata
from talent_assets.defs.failures import input_failure
from talent_assets.defs.partitions import videos_partitions
from talent_assets.defs.resources import FaceDetector, TalentStorage
from talent_assets.infra.publish import publish_outputs
from talent_assets.infra.representative_staging import read_staged

OUT_OF_DATE = "identity_clusters is out of date with face_detections; re-materialise it"
STAGED_OUT_OF_DATE = (
    "the staged representative frames are not those of the latest face_detections; "
    "re-materialise face_detections"
)


class FrameSelectionConfig(Config):
    """Selection knobs. Changing them re-runs this asset only."""

    centrality_weight: float = SelectionParams.centrality_weight
    face_margin: float = 0.5


@dataclass(frozen=True)
class ClusteredFaces:
    """This partition's faces with their people, as the upstream assets left them."""

    video: dict[str, Any]
    faces_table: pa.Table
    faces: FaceArrays
    person_ids: np.ndarray
    identifiable: np.ndarray | None  # None for tables written before the column existed
    sample_fps: float
    detections_meta: dict[str, Any]


@asset(
    partitions_def=videos_partitions,
    deps=[identity_clusters],
    group_name="talent",
    kinds={"s3", "parquet"},
    retry_policy=RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL),
    check_specs=[
        AssetCheckSpec(
            "person_ids_contiguous",
            asset="selected_frames",
            description="Person ids are exactly 0..n-1, in order of first appearance.",
        )
    ],
    description=(
        "The best frame of each person (a high-quality face close to the person's centre), "
        "uploaded as the full frame and a face crop, with a contact sheet, the representative "
        "frames (`frame_<nn>.jpg`) and manifest.json under `processed/<video>/`. Writes the "
        "`selected_frames` table."
    ),
)
def selected_frames(
    context: AssetExecutionContext,
    config: FrameSelectionConfig,
    storage: TalentStorage,
    detector: FaceDetector,
) -> MaterializeResult:
    started = time.perf_counter()
    inputs = load_clustered_faces(context, storage, detector)
    params = SelectionParams(
        centrality_weight=config.centrality_weight, sample_fps=inputs.sample_fps
    )
    chosen = select_best_frames(inputs.faces, inputs.person_ids, params, inputs.identifiable)
    decode_started = time.perf_counter()
    frames = decode_chosen_frames(storage, inputs.video, inputs.faces, chosen)
    decode_s = time.perf_counter() - decode_started

    out = storage.output_store()
    folder = output_folder(storage.output_prefix, inputs.video["key"], storage.video_prefix)
    links = OutputLinks(out.url, out.location if out.bucket == "local" else None)
    talent = build_talent_frames(
        video_id=context.partition_key,
        folder=folder,
        chosen=chosen,
        faces=inputs.faces,
        frames=frames,
        links=links,
        face_margin=config.face_margin,
    )
    staged = load_representative(context, storage, inputs)
    representative = representative_outputs(folder, staged, links)
    pipeline_wall_s = upstream_wall_s(context, inputs) + (time.perf_counter() - started)
    publish_started = time.perf_counter()
    table_location = publish_talent_frames(
        context, storage, inputs, talent, representative, folder, pipeline_wall_s
    )
    publish_s = time.perf_counter() - publish_started
    storage.video_cache().evict(storage.input_store(), inputs.video["key"], inputs.video["etag"])

    ids_ok, ids_msg = check_person_ids_contiguous([s.person_id for s in chosen])
    timeline = timeline_png(
        inputs.faces, inputs.person_ids, chosen, float(inputs.video["duration_s"]),
        inputs.sample_fps,
    )  # fmt: skip
    return MaterializeResult(
        metadata={
            **people_metadata(talent.results, talent.sheet, timeline, out.location),
            **representative_metadata(representative.entries, representative.strip),
            "manifest": MetadataValue.path(out.location(folder + MANIFEST_NAME)),
            "contact_sheet_location": MetadataValue.path(out.location(talent.sheet_key)),
            "outputs": MetadataValue.path(out.location(folder)),
            "table": MetadataValue.path(table_location),
            "decode_s": round(decode_s, 3),
            "publish_s": round(publish_s, 3),
            "wall_s": round(time.perf_counter() - started, 3),
            "pipeline_wall_s": round(pipeline_wall_s, 3),
        },
        check_results=[
            AssetCheckResult(check_name="person_ids_contiguous", passed=ids_ok, description=ids_msg)
        ],
    )


def load_clustered_faces(
    context: AssetExecutionContext, storage: TalentStorage, detector: FaceDetector
) -> ClusteredFaces:
    """The partition's video row, faces and person per face; fails clearly if out of date."""
    video_id = context.partition_key
    video = recorded_video(storage, video_id)
    faces_table = face_table_of(storage, video_id)
    clusters = storage.tables().read("identity_clusters", video_id)
    if clusters is None:
        raise input_failure(
            f"identity_clusters has not been materialised for {video_id}", "out_of_date"
        )
    rows = cluster_rows_for_faces(
        faces_table["frame_index"].to_pylist(),
        faces_table["face_index"].to_pylist(),
        clusters["frame_index"].to_pylist(),
        clusters["face_index"].to_pylist(),
    )
    if rows is None:
        raise input_failure(OUT_OF_DATE, "out_of_date")
    flags = clusters["identifiable"]
    detections_meta = upstream_metadata(context, "face_detections")
    return ClusteredFaces(
        video=video,
        faces_table=faces_table,
        faces=FaceArrays.from_table(faces_table),
        person_ids=clusters["person_id"].to_numpy().astype(np.int32)[rows],
        # Partitions written before the column existed read as nulls: no flags then.
        identifiable=None if flags.null_count else flags.to_numpy(zero_copy_only=False)[rows],
        sample_fps=float(detections_meta.get("sample_fps", detector.sample_fps)),
        detections_meta=detections_meta,
    )


def decode_chosen_frames(
    storage: TalentStorage, video: dict[str, Any], faces: FaceArrays, chosen: list[PersonSelection]
) -> dict[int, np.ndarray]:
    """The full frames of the chosen faces, decoded from the (cached) source video."""
    if not chosen:
        return {}
    path = storage.video_cache().fetch(storage.input_store(), video["key"], video["etag"])
    try:
        return read_frames(path, [int(faces.frame_index[s.face]) for s in chosen])
    except VideoError as err:
        raise input_failure(f"{video['key']}: {err}", "invalid_video") from None


def load_representative(
    context: AssetExecutionContext, storage: TalentStorage, inputs: ClusteredFaces
) -> list[RepresentativeFrame]:
    """The representative frames ``face_detections`` chose and staged (none when it chose
    none, or ran before it chose any); fails as out of date when the staged frames are not
    those of the ``face_detections`` materialisation these faces come from (a later run of
    it staged frames and then failed)."""
    run_id = inputs.detections_meta.get(REPRESENTATIVE_RUN_KEY)
    if run_id is None:
        context.log.info("face_detections chose no representative frames (an older run)")
        return []
    if not inputs.detections_meta.get("representative_frames"):
        return []
    folder = output_folder(storage.output_prefix, inputs.video["key"], storage.video_prefix)
    table = read_staged(storage.output_store(), folder)
    if table is None or staged_run_id(table) != run_id:
        raise input_failure(STAGED_OUT_OF_DATE, "out_of_date")
    return frames_from_table(table)


def upstream_wall_s(context: AssetExecutionContext, inputs: ClusteredFaces) -> float:
    """Wall time the three upstream assets spent on this partition (their metadata)."""
    return float(inputs.detections_meta.get("wall_s", 0.0)) + sum(
        float(upstream_metadata(context, name).get("wall_s", 0.0))
        for name in ("raw_video", "identity_clusters")
    )


def publish_talent_frames(
    context: AssetExecutionContext,
    storage: TalentStorage,
    inputs: ClusteredFaces,
    talent: TalentFrames,
    representative: RepresentativeOutputs,
    folder: str,
    pipeline_wall_s: float,
) -> str:
    """Upload images (person and representative frames), table and manifest atomically
    (``infra.publish``); the table location."""
    video_id = context.partition_key
    video = inputs.video
    manifest = build_manifest(
        video_id=video_id,
        bucket=video["bucket"],
        key=video["key"],
        people=talent.results,
        video=video,
        metrics={
            "wall_s": round(pipeline_wall_s, 3),
            "frames_decoded": int(video["frames"]),
            "frames_analyzed": int(inputs.detections_meta.get("frames_analyzed", 0)),
            "faces_detected": inputs.faces_table.num_rows,
        },
        representative_frames=representative.entries,
    )
    table = pa.Table.from_pylist(talent.rows, schema=SELECTED_FRAMES_SCHEMA)
    return publish_outputs(
        storage.output_store(),
        base=folder,
        files={**talent.files, **representative.files},
        commit=lambda: storage.tables().write("selected_frames", video_id, table),
        manifest_key=folder + MANIFEST_NAME,
        manifest=json.dumps(manifest, indent=2).encode(),
        staging_name=context.run.run_id,
    )
