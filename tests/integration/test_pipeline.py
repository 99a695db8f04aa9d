"""End to end through real Dagster runs, a real S3 server and the real face engine."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance

from talent_assets.core.clustering import box_iou
from talent_assets.infra.settings import Settings
from tests.support import media
from tests.support.pipeline import (
    ASSET_CHECKS,
    TABLES,
    check_evaluations,
    manifest_of,
    output_keys,
    run_key,
    store_for,
    upload,
    warehouse,
    warehouse_keys,
)

pytestmark = pytest.mark.slow


def _embedding_of(engine, image: np.ndarray, bbox: list[float]) -> np.ndarray:
    """Embedding of the face in ``image`` that best overlaps ``bbox``."""
    from modal_gpu.video import SampledFrame

    faces = engine.analyse([SampledFrame(0, 0.0, image, 1.0)])
    assert faces, "no face found in the selected frame"
    boxes = np.stack([f.bbox for f in faces])
    best = int(np.argmax(box_iou(np.array([bbox]), boxes)[0]))
    return faces[best].embedding


def _reference_embeddings(engine, truth: media.VideoTruth) -> np.ndarray:
    """One embedding per person of the video, from the source photo crops."""
    from modal_gpu.video import SampledFrame

    cast = {p.name: p for p in media.default_cast(include_tom_hanks=True)}
    refs = []
    for name in truth.people:
        person = cast[name]
        faces = engine.analyse([SampledFrame(0, 0.0, np.ascontiguousarray(person.image), 1.0)])
        assert faces, f"reference face of {name} not detected"
        refs.append(max(faces, key=lambda f: f.det_score).embedding)
    return np.stack(refs)


def test_three_people_found_with_correct_frames(
    talent_env: Settings, dagster_instance: DagsterInstance, three_person, face_engine
) -> None:
    path, truth = three_person
    key = "videos/e2e/Three People.mp4"
    upload(talent_env, path, key)
    video_id, outcome = run_key(talent_env, dagster_instance, key)
    assert outcome.success, outcome.message

    manifest = manifest_of(talent_env, key)
    assert manifest is not None
    assert manifest["status"] == "success"
    assert manifest["video_id"] == video_id
    assert manifest["source"] == {"bucket": talent_env.bucket, "key": key}
    assert manifest["people_found"] == 3
    assert [r["person_id"] for r in manifest["results"]] == [0, 1, 2]
    assert manifest["video"]["width"] == 1280 and manifest["video"]["height"] == 720
    assert manifest["metrics"]["frames_analyzed"] == 16
    assert manifest["metrics"]["faces_detected"] > 0

    store = store_for(talent_env)
    refs = _reference_embeddings(face_engine, truth)
    first_seen = []
    for result in manifest["results"]:
        pid = result["person_id"]
        # Person ids follow first appearance, which is A, B, C in the script.
        assert truth.visible_at(pid, result["timestamp"]), result
        assert truth.degradation_at(pid, result["timestamp"]) is None, result
        assert 0.0 <= result["score"] <= 100.0
        frame = cv2.imdecode(
            np.frombuffer(store.get_bytes(result["s3_key"]), np.uint8), cv2.IMREAD_COLOR
        )
        assert frame.shape[:2] == (720, 1280)  # full frame, native aspect
        embedding = _embedding_of(face_engine, frame, result["bbox"])
        similarities = refs @ embedding
        assert int(np.argmax(similarities)) == pid, similarities
        face = cv2.imdecode(
            np.frombuffer(store.get_bytes(result["face_s3_key"]), np.uint8), cv2.IMREAD_COLOR
        )
        assert face is not None and face.shape[0] == face.shape[1]
        first_seen.append(result["first_seen"])
        assert result["first_seen"] <= result["timestamp"] <= result["last_seen"]
        assert result["s3_url"].startswith(talent_env.endpoint_url)
        assert "X-Amz-Signature=" in result["s3_url"]  # SigV4, not the legacy scheme
    assert first_seen == sorted(first_seen)

    base = "processed/e2e/Three_People/"
    # TALENT_REPRESENTATIVE_FRAMES (10 by default), chosen in detection and staged by it.
    assert [r["index"] for r in manifest["representative_frames"]] == list(range(10))
    assert output_keys(talent_env, key) == sorted(
        [base + "contact_sheet.jpg", base + "manifest.json"]
        + [base + f"person_{i}.jpg" for i in range(3)]
        + [base + f"person_{i}_face.jpg" for i in range(3)]
        + [base + f"frame_{i:02d}.jpg" for i in range(10)]
        + [base + ".staging/representative_frames.parquet"]
    )
    tables = warehouse(talent_env)
    assert tables.read("videos", video_id)["key"].to_pylist() == [key]
    selected = tables.read("selected_frames", video_id)
    assert sorted(selected["person_id"].to_pylist()) == [0, 1, 2]
    clusters = tables.read("identity_clusters", video_id)
    detections = tables.read("face_detections", video_id)
    assert clusters.num_rows == detections.num_rows == manifest["metrics"]["faces_detected"]

    # Asset checks ran with the materialisations and passed, each with its reason.
    evaluations = check_evaluations(dagster_instance, outcome.run_id)
    assert set(evaluations) == ASSET_CHECKS
    faces = detections.num_rows
    reasons = {
        "schema_matches": f"{detections.num_columns} columns as specified",
        "embeddings_unit_norm": f"all {faces} embeddings have unit norm (max error ",
        "frames_analyzed": "16 frames analysed",
        "every_face_assigned": f"{faces} faces assigned",
        "one_person_per_frame": "no person appears twice in one frame",
        "person_ids_contiguous": "person ids 0..2",
    }
    for (asset, name), evaluation in evaluations.items():
        assert evaluation.passed, (asset, name, evaluation.description)
        assert (evaluation.description or "").startswith(reasons[name]), evaluation
        # The instance records each check's latest execution as succeeded, for this run.
        latest = dagster_instance.get_latest_asset_check_evaluation_record(
            AssetCheckKey(AssetKey(asset), name)
        )
        assert latest is not None and latest.run_id == outcome.run_id
        assert latest.status.value == "SUCCEEDED", (asset, name, latest.status)
    record = dagster_instance.get_latest_materialization_event(AssetKey("selected_frames"))
    assert record is not None
    assert record.asset_materialization.metadata["people_found"].value == 3


def test_video_without_faces_succeeds_with_no_people(
    talent_env: Settings, dagster_instance: DagsterInstance, no_face_clip: Path
) -> None:
    key = "videos/e2e/nobody.mp4"
    upload(talent_env, no_face_clip, key)
    video_id, outcome = run_key(talent_env, dagster_instance, key)
    assert outcome.success, outcome.message
    manifest = manifest_of(talent_env, key)
    assert manifest["people_found"] == 0 and manifest["results"] == []
    assert manifest["metrics"]["frames_analyzed"] > 0
    tables = warehouse(talent_env)
    assert tables.read("face_detections", video_id).num_rows == 0
    assert tables.read("identity_clusters", video_id).num_rows == 0
    assert tables.read("selected_frames", video_id).num_rows == 0
    # 3 s at 2 samples/s: 6 samples, in 6 of the 10 windows of 0.3 s.
    assert len(manifest["representative_frames"]) == 6
    assert output_keys(talent_env, key) == sorted(
        [
            "processed/e2e/nobody/contact_sheet.jpg",
            "processed/e2e/nobody/manifest.json",
            "processed/e2e/nobody/.staging/representative_frames.parquet",
        ]
        + [f"processed/e2e/nobody/frame_{i:02d}.jpg" for i in range(6)]
    )


@pytest.mark.parametrize("name", ["empty", "text", "truncated", "truncated_faststart"])
def test_bad_input_fails_clearly_and_writes_nothing(
    name: str,
    bad_inputs: dict[str, Path],
    talent_env: Settings,
    dagster_instance: DagsterInstance,
) -> None:
    key = f"videos/bad/{name}.mp4"
    upload(talent_env, bad_inputs[name], key)
    video_id, outcome = run_key(talent_env, dagster_instance, key)
    assert not outcome.success
    assert "\n" not in outcome.message
    assert key in outcome.message
    expected = {
        "empty": "empty file",
        "text": "not a video",
        "truncated": "not a video",
        "truncated_faststart": "truncated",
    }[name]
    assert expected in outcome.message, outcome.message
    assert outcome.error_kind == "invalid_video"
    assert output_keys(talent_env, key) == []
    assert warehouse_keys(talent_env, video_id) == []
    run = dagster_instance.get_run_by_id(outcome.run_id)
    assert run is not None and run.is_failure


def test_missing_object_fails_clearly(
    talent_env: Settings, dagster_instance: DagsterInstance
) -> None:
    key = "videos/bad/never-uploaded.mp4"
    video_id, outcome = run_key(talent_env, dagster_instance, key)
    assert not outcome.success
    assert outcome.message == f"missing object: s3://{talent_env.bucket}/{key}"
    assert outcome.error_kind == "missing_object"
    assert warehouse_keys(talent_env, video_id) == []


def test_rerun_replaces_rows_and_a_bad_reupload_loses_nothing(
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    bad_inputs: dict[str, Path],
) -> None:
    clip = media.pyfeat_media("single_face.mp4")
    key = "videos/e2e/rerun.mp4"
    upload(talent_env, clip, key)
    video_id, first = run_key(talent_env, dagster_instance, key)
    assert first.success, first.message
    store = store_for(talent_env)

    def snapshot() -> dict[str, int]:
        counts = {}
        for table in TABLES:
            data = store.get_bytes(f"warehouse/{table}/video_id={video_id}/part-0.parquet")
            counts[table] = pq.read_table(io.BytesIO(data)).num_rows
        return counts

    before = snapshot()
    manifest_before = manifest_of(talent_env, key)
    assert before["videos"] == 1 and before["face_detections"] > 0

    _, second = run_key(talent_env, dagster_instance, key)
    assert second.success, second.message
    assert snapshot() == before
    assert len(warehouse_keys(talent_env, video_id)) == 4
    manifest_after = manifest_of(talent_env, key)

    def stable(manifest: dict) -> list[dict]:
        # Presigned URLs carry their signing time; everything else must be identical.
        return [{k: v for k, v in r.items() if k != "s3_url"} for r in manifest["results"]]

    assert stable(manifest_after) == stable(manifest_before)
    assert manifest_after["people_found"] == manifest_before["people_found"] == 1

    # The same key now holds a corrupt file: the run fails and every earlier output stays,
    # untouched: the same objects (ETag, time, bytes) for the frames, the manifest and the
    # four tables, and nothing added (no staging left behind either).
    def objects() -> dict[str, tuple[str, object, bytes]]:
        prefixes = ("processed/e2e/rerun", *(f"warehouse/{t}/video_id={video_id}/" for t in TABLES))
        found = {}
        for prefix in prefixes:
            for info in store.list(prefix):
                found[info.key] = (info.etag, info.last_modified, store.get_bytes(info.key))
        return found

    kept = objects()
    assert "processed/e2e/rerun/manifest.json" in kept and len(kept) >= 4 + 4
    upload(talent_env, bad_inputs["text"], key)
    _, third = run_key(talent_env, dagster_instance, key)
    assert not third.success and third.error_kind == "invalid_video"
    assert objects() == kept
    assert manifest_of(talent_env, key) == manifest_after


def test_internal_failure_keeps_its_reason_after_retries(
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    no_face_clip: Path,
) -> None:
    key = "videos/e2e/misconfigured.mp4"
    upload(talent_env, no_face_clip, key)
    monkeypatch.setenv("TALENT_WAREHOUSE", "s3://some-other-bucket/warehouse")
    _, outcome = run_key(Settings.from_env(), dagster_instance, key)
    assert not outcome.success
    assert outcome.error_kind == "internal"
    assert "TALENT_WAREHOUSE must be in the configured bucket" in outcome.message
    assert output_keys(talent_env, key) == []
