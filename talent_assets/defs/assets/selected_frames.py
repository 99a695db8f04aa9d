"""``selected_frames``: the talent frame of each person, face crops, contact sheet, manifest."""

import base64
import json
import time
from typing import Any

import cv2
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
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from modal_gpu.video import VideoError, read_frames
from talent_assets.core.checks import check_person_ids_contiguous
from talent_assets.core.clustering import FaceArrays
from talent_assets.core.images import contact_sheet, crop_face, encode_jpeg
from talent_assets.core.manifest import build_manifest
from talent_assets.core.plots import appearance_timeline_png
from talent_assets.core.selection import PersonSelection, SelectionParams, select_best_frames
from talent_assets.core.tables import SELECTED_FRAMES_SCHEMA
from talent_assets.core.video_id import output_stem
from talent_assets.defs.assets.face_detections import face_table_of
from talent_assets.defs.assets.identity_clusters import identity_clusters
from talent_assets.defs.assets.raw_video import recorded_video
from talent_assets.defs.assets.upstream import upstream_metadata
from talent_assets.defs.failures import input_failure
from talent_assets.defs.partitions import videos_partitions
from talent_assets.defs.resources import FaceDetector, TalentStorage
from talent_assets.infra.publish import publish_outputs
from talent_assets.infra.video_cache import evict_video, fetch_video

PEOPLE_TABLE_SCHEMA = TableSchema(
    columns=[
        TableColumn("person", "int"),
        TableColumn("first_seen_s", "float"),
        TableColumn("last_seen_s", "float"),
        TableColumn("screen_time_s", "float"),
        TableColumn("score", "float"),
        TableColumn("frame", "string"),
    ]
)


class FrameSelectionConfig(Config):
    """Selection knobs. Changing them re-runs this asset only."""

    centrality_weight: float = SelectionParams.centrality_weight
    face_margin: float = 0.5


def _aligned_person_ids(faces: pa.Table, clusters: pa.Table) -> np.ndarray:
    """person_id per face row of ``faces``, joined on (frame_index, face_index)."""
    if clusters.num_rows != faces.num_rows:
        raise input_failure(
            "identity_clusters is out of date with face_detections; re-materialise it",
            "out_of_date",
        )
    index = {
        (f, i): p
        for f, i, p in zip(
            clusters["frame_index"].to_pylist(),
            clusters["face_index"].to_pylist(),
            clusters["person_id"].to_pylist(),
            strict=True,
        )
    }
    keys = zip(faces["frame_index"].to_pylist(), faces["face_index"].to_pylist(), strict=True)
    try:
        return np.array([index[k] for k in keys], dtype=np.int32)
    except KeyError:
        raise input_failure(
            "identity_clusters is out of date with face_detections; re-materialise it",
            "out_of_date",
        ) from None


def _preview_markdown(sheet: np.ndarray, width: int = 480) -> str:
    scale = min(1.0, width / sheet.shape[1])
    small = cv2.resize(sheet, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    data = base64.b64encode(encode_jpeg(small, quality=80)).decode("ascii")
    return f"![contact sheet](data:image/jpeg;base64,{data})"


def _timeline_markdown(
    faces: FaceArrays, person_ids: np.ndarray, chosen: list[PersonSelection], video: dict,
    sample_fps: float,
) -> str:  # fmt: skip
    png = appearance_timeline_png(
        {s.person_id: faces.timestamp_s[person_ids == s.person_id] for s in chosen},
        float(video["duration_s"]),
        {s.person_id: float(faces.timestamp_s[s.face]) for s in chosen},
        1.0 / sample_fps,
    )
    return f"![timeline](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def _people_markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| person | first seen (s) | last seen (s) | screen time (s) | score | frame |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        link = r.get("s3_url") or r.get("path", "")
        lines.append(
            f"| {r['person_id']} | {r['first_seen']:.1f} | {r['last_seen']:.1f} | "
            f"{r['screen_time']:.1f} | {r['score']:.1f} | [{r['s3_key']}]({link}) |"
        )
    return "\n".join(lines)


@asset(
    partitions_def=videos_partitions,
    deps=[identity_clusters],
    group_name="talent",
    kinds={"s3", "parquet"},
    retry_policy=RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL),
    check_specs=[AssetCheckSpec("person_ids_contiguous", asset="selected_frames")],
    description=(
        "The best frame of each person (a high-quality face close to the person's centre), "
        "uploaded as the full frame and a face crop, with a contact sheet and manifest.json "
        "under `processed/<video>/`. Writes the `selected_frames` table."
    ),
)
def selected_frames(
    context: AssetExecutionContext,
    config: FrameSelectionConfig,
    storage: TalentStorage,
    detector: FaceDetector,
) -> MaterializeResult:
    video_id = context.partition_key
    started = time.perf_counter()
    video = recorded_video(storage, video_id)
    faces_table = face_table_of(storage, video_id)
    clusters = storage.tables().read("identity_clusters", video_id)
    if clusters is None:
        raise input_failure(
            f"identity_clusters has not been materialised for {video_id}", "out_of_date"
        )
    detections_meta = upstream_metadata(context, "face_detections")
    sample_fps = float(detections_meta.get("sample_fps", detector.sample_fps))
    faces = FaceArrays.from_table(faces_table)
    person_ids = _aligned_person_ids(faces_table, clusters)
    params = SelectionParams(centrality_weight=config.centrality_weight, sample_fps=sample_fps)
    chosen: list[PersonSelection] = select_best_frames(faces, person_ids, params)

    input_store = storage.input_store()
    decode_started = time.perf_counter()
    frames: dict[int, np.ndarray] = {}
    if chosen:
        path = fetch_video(input_store, video["key"], video["etag"])
        try:
            frames = read_frames(path, [int(faces.frame_index[s.face]) for s in chosen])
        except VideoError as err:
            raise input_failure(f"{video['key']}: {err}", "invalid_video") from None
    decode_s = time.perf_counter() - decode_started

    out = storage.output_store()
    base = f"{storage.output_prefix}{output_stem(video['key'], storage.video_prefix)}/"
    files: dict[str, tuple[bytes, str]] = {}
    results: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    crops: list[np.ndarray] = []
    for s in chosen:
        frame = frames[int(faces.frame_index[s.face])]
        bbox = faces.boxes[s.face]
        crop = crop_face(frame, bbox, margin=config.face_margin)
        crops.append(crop)
        frame_key = f"{base}person_{s.person_id}.jpg"
        face_key = f"{base}person_{s.person_id}_face.jpg"
        files[frame_key] = (encode_jpeg(frame), "image/jpeg")
        files[face_key] = (encode_jpeg(crop), "image/jpeg")
        timestamp = float(faces.timestamp_s[s.face])
        result: dict[str, Any] = {
            "person_id": s.person_id,
            "s3_key": frame_key,
            "s3_url": out.url(frame_key),
            "face_s3_key": face_key,
            "timestamp": round(timestamp, 3),
            "score": s.score,
            "bbox": [round(float(v), 1) for v in bbox],
            "first_seen": round(s.first_seen_s, 3),
            "last_seen": round(s.last_seen_s, 3),
            "screen_time": s.screen_time_s,
        }
        if out.bucket == "local":
            result["path"] = out.location(frame_key)
            result["face_path"] = out.location(face_key)
        results.append(result)
        rows.append(
            {
                "video_id": video_id,
                "person_id": s.person_id,
                "frame_index": int(faces.frame_index[s.face]),
                "timestamp_s": timestamp,
                "score": s.score,
                "face_quality": s.face_quality,
                "centrality": s.centrality,
                "x1": float(bbox[0]),
                "y1": float(bbox[1]),
                "x2": float(bbox[2]),
                "y2": float(bbox[3]),
                "s3_key": frame_key,
                "face_s3_key": face_key,
                "faces": s.faces,
                "first_seen_s": s.first_seen_s,
                "last_seen_s": s.last_seen_s,
                "screen_time_s": s.screen_time_s,
                "centroid": s.centroid.tolist(),
            }
        )
    sheet = contact_sheet(
        crops, [f"#{s.person_id}  {faces.timestamp_s[s.face]:.1f}s" for s in chosen]
    )
    sheet_key = f"{base}contact_sheet.jpg"
    files[sheet_key] = (encode_jpeg(sheet), "image/jpeg")

    upstream_wall = float(detections_meta.get("wall_s", 0.0)) + sum(
        float(upstream_metadata(context, name).get("wall_s", 0.0))
        for name in ("raw_video", "identity_clusters")
    )
    wall_s = upstream_wall + (time.perf_counter() - started)
    manifest = build_manifest(
        video_id=video_id,
        bucket=video["bucket"],
        key=video["key"],
        people=results,
        video=video,
        metrics={
            "wall_s": round(wall_s, 3),
            "frames_decoded": int(video["frames"]),
            "frames_analyzed": int(detections_meta.get("frames_analyzed", 0)),
            "faces_detected": faces_table.num_rows,
        },
    )
    manifest_key = f"{base}manifest.json"
    table = pa.Table.from_pylist(rows, schema=SELECTED_FRAMES_SCHEMA)
    publish_started = time.perf_counter()
    table_location = publish_outputs(
        out,
        base=base,
        files=files,
        commit=lambda: storage.tables().write("selected_frames", video_id, table),
        manifest_key=manifest_key,
        manifest=json.dumps(manifest, indent=2).encode(),
        staging_name=context.run.run_id,
    )
    publish_s = time.perf_counter() - publish_started
    evict_video(input_store, video["key"], video["etag"])

    ids_ok, ids_msg = check_person_ids_contiguous([s.person_id for s in chosen])
    return MaterializeResult(
        metadata={
            "people_found": len(chosen),
            "people": MetadataValue.md(_people_markdown(results) if results else "no people"),
            # The markdown above opens in a dialog once it is long; a table renders inline.
            "people_table": MetadataValue.table(
                records=[
                    TableRecord(
                        {
                            "person": r["person_id"],
                            "first_seen_s": r["first_seen"],
                            "last_seen_s": r["last_seen"],
                            "screen_time_s": r["screen_time"],
                            "score": r["score"],
                            "frame": r["s3_key"],
                        }
                    )
                    for r in results
                ],
                schema=PEOPLE_TABLE_SCHEMA,
            ),
            "contact_sheet": MetadataValue.md(_preview_markdown(sheet)),
            "timeline": MetadataValue.md(
                _timeline_markdown(faces, person_ids, chosen, video, sample_fps)
            ),
            "manifest": MetadataValue.path(out.location(manifest_key)),
            "contact_sheet_location": MetadataValue.path(out.location(sheet_key)),
            "outputs": MetadataValue.path(out.location(base)),
            "table": MetadataValue.path(table_location),
            "decode_s": round(decode_s, 3),
            "publish_s": round(publish_s, 3),
            "wall_s": round(time.perf_counter() - started, 3),
            "pipeline_wall_s": round(wall_s, 3),
        },
        check_results=[
            AssetCheckResult(check_name="person_ids_contiguous", passed=ids_ok, description=ids_msg)
        ],
    )
