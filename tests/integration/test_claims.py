"""README claims about paths the other end-to-end tests do not take, each in real runs.

- the local process pool inside a Dagster run (``TALENT_WORKERS``, ``TALENT_CHUNK_S``);
- "Changing a clustering or selection parameter ... re-materialises only the downstream
  assets: detection is never repeated to re-cluster";
- credentials are "never logged": not in any run's events, metadata or the instance's files;
- ``talent process VIDEO.mp4`` without ``--out`` "uploads to the bucket's videos/, then runs";
- ``GET /videos/{video_id}`` answers for runs the API did not start (``talent process`` and
  the sensor record theirs on the same instance).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from dagster import DagsterEventType, DagsterInstance
from dagster._serdes import serialize_value

from modal_gpu.video import probe_video
from talent_assets.apps.api import create_app
from talent_assets.core.video_id import video_id_for
from talent_assets.infra.detection import DetectorConfig, VideoSource, detect_faces, plan_detection
from talent_assets.infra.settings import Settings
from tests.integration.test_api import serve
from tests.support.pipeline import (
    TABLES,
    assert_same_face_rows,
    latest_metadata,
    manifest_of,
    materializations,
    output_keys,
    run_downstream,
    run_key,
    store_for,
    upload,
    warehouse,
    warehouse_keys,
)

ASSETS = ("raw_video", "face_detections", "identity_clusters", "selected_frames")


# --- the local process pool in a Dagster run -----------------------------------------------------


@pytest.mark.slow
def test_process_pool_in_a_dagster_run_gives_the_rows_of_one_chunk(
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    three_person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, _ = three_person
    monkeypatch.setenv("TALENT_WORKERS", "2")
    monkeypatch.setenv("TALENT_CHUNK_S", "2")  # grows to one 5-s static block: 2 chunks
    settings = Settings.from_env()
    key = "videos/claims/pool.mp4"
    upload(settings, path, key)
    video_id, outcome = run_key(settings, dagster_instance, key)
    assert outcome.success, outcome.message

    meta = latest_metadata(dagster_instance, "face_detections", video_id)
    assert meta["detector"] == "local"
    assert meta["chunks"] == 2
    assert meta["worker_processes"] == 2  # the chunks ran in two pool processes
    table = warehouse(settings).read("face_detections", video_id)
    assert table is not None and table.num_rows > 0

    one_chunk = DetectorConfig(kind="local", model_pack="bundled", sample_fps=2.0, workers=1)
    duration = probe_video(path).duration_s
    assert len(plan_detection(one_chunk, duration)) == 1
    source = VideoSource(settings.bucket, key, duration, local_path=lambda: path)
    want, stats = detect_faces(one_chunk, video_id, source)
    assert meta["frames_analyzed"] == stats.frames_analyzed == 16
    assert_same_face_rows(table, want)
    assert manifest_of(settings, key)["people_found"] == 3

    # README: "per-stage timings" in the metadata of every stage.
    stages = {
        "raw_video": ("download_s", "probe_s"),
        "face_detections": ("decode_s", "inference_s", "detect_wall_s"),
        "identity_clusters": (),
        "selected_frames": ("decode_s", "publish_s", "pipeline_wall_s"),
    }
    walls = {}
    for asset, timings in stages.items():
        stage = latest_metadata(dagster_instance, asset, video_id)
        for name in (*timings, "wall_s"):
            assert isinstance(stage[name], float) and stage[name] >= 0, (asset, name, stage)
        walls[asset] = stage["wall_s"]
    assert meta["inference_s"] > 0 and meta["detect_wall_s"] <= meta["wall_s"]
    selected = latest_metadata(dagster_instance, "selected_frames", video_id)
    # The pipeline's wall time adds the upstream stages to selection (before publishing).
    upstream = walls["raw_video"] + walls["face_detections"] + walls["identity_clusters"]
    assert upstream <= selected["pipeline_wall_s"] <= upstream + walls["selected_frames"] + 0.01


# --- re-clustering does not repeat detection -----------------------------------------------------


@pytest.mark.slow
def test_new_clustering_config_rematerialises_only_downstream_assets(
    talent_env: Settings, dagster_instance: DagsterInstance, three_person
) -> None:
    path, _ = three_person
    key = "videos/claims/recluster.mp4"
    upload(talent_env, path, key)
    video_id, first = run_key(talent_env, dagster_instance, key)
    assert first.success, first.message
    store = store_for(talent_env)
    detections_key = f"warehouse/face_detections/video_id={video_id}/part-0.parquet"
    detections_before = store.head(detections_key)
    detections_bytes = store.get_bytes(detections_key)
    people_before = latest_metadata(dagster_instance, "identity_clusters", video_id)["people"]
    assert people_before == 3

    # A near-zero distance threshold: no two tracks are one person any more.
    result = run_downstream(
        talent_env,
        dagster_instance,
        video_id,
        run_config={
            "ops": {
                "identity_clusters": {"config": {"threshold": 0.01}},
                "selected_frames": {"config": {"centrality_weight": 0.0}},
            }
        },
    )
    assert result.success

    # Only the two downstream assets ran, and they used the new configuration.
    ran = {
        e.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }
    assert ran == {"identity_clusters", "selected_frames"}
    counts = {name: len(materializations(dagster_instance, name, video_id)) for name in ASSETS}
    assert counts == {
        "raw_video": 1,
        "face_detections": 1,
        "identity_clusters": 2,
        "selected_frames": 2,
    }
    clusters = latest_metadata(dagster_instance, "identity_clusters", video_id)
    assert clusters["threshold"] == 0.01
    assert clusters["people"] != people_before
    manifest = manifest_of(talent_env, key)
    assert manifest["people_found"] == clusters["people"]
    assert manifest["metrics"]["faces_detected"] == clusters["faces"]

    # The detections table is the very object the first run wrote.
    after = store.head(detections_key)
    assert (after.etag, after.last_modified) == (
        detections_before.etag,
        detections_before.last_modified,
    )
    assert store.get_bytes(detections_key) == detections_bytes


# --- credentials are never logged ----------------------------------------------------------------


@pytest.mark.slow
def test_credentials_appear_in_no_event_metadata_or_instance_file(
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    three_person,
    bad_inputs: dict[str, Path],
    s3_server,
) -> None:
    path, _ = three_person
    good, bad = "videos/claims/creds.mp4", "videos/claims/creds-bad.mp4"
    upload(talent_env, path, good)
    upload(talent_env, bad_inputs["text"], bad)
    good_id, ok = run_key(talent_env, dagster_instance, good)
    assert ok.success, ok.message
    bad_id, failed = run_key(talent_env, dagster_instance, bad)
    assert not failed.success

    secret, access_key = os.environ["AWS_SECRET_ACCESS_KEY"], os.environ["AWS_ACCESS_KEY_ID"]
    assert (access_key, secret) == (s3_server.access_key, s3_server.secret_key)  # in use

    runs = dagster_instance.get_runs()
    videos = {r.run_id for r in runs if r.job_name == "process_video"}
    assert videos == {ok.run_id, failed.run_id}
    # The registry update after the good video is scanned too.
    assert [r.job_name for r in runs if r.run_id not in videos] == ["update_talent_registry"]
    texts: dict[str, str] = {}
    for run in runs:
        texts[f"run {run.run_id}"] = serialize_value(run)  # config, tags
        for n, entry in enumerate(dagster_instance.all_logs(run.run_id)):
            texts[f"run {run.run_id} event {n} {entry.dagster_event_type}"] = serialize_value(entry)
    for video_id in (good_id, bad_id):
        for asset in ASSETS:
            for n, record in enumerate(materializations(dagster_instance, asset, video_id)):
                metadata = record.asset_materialization.metadata
                texts[f"{asset} metadata {n}"] = serialize_value(metadata)
    assert len(texts) > 50
    # Nor in any file the instance keeps (its databases, logs and compute logs).
    root = Path(dagster_instance.root_directory)
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    texts.update({str(p): p.read_bytes().decode("latin-1") for p in files})

    assert not [where for where, text in texts.items() if secret in text]
    # Not even the access key id, which a presigned link would carry (X-Amz-Credential=KEY/...):
    # metadata names frames by their S3 location, never by a presigned link.
    access_key_at = [where for where, text in texts.items() if access_key in text]
    assert not access_key_at, f"AWS_ACCESS_KEY_ID appears in {access_key_at[:5]}"


def test_code_location_shows_credential_names_never_values(talent_env: Settings, s3_server) -> None:
    """What the UI reads of the code location (its repository snapshot: resources and their
    configured values) names the credential variables and holds neither value."""
    from dagster._core.remote_representation.external_data import RepositorySnap

    from talent_assets.definitions import build_definitions

    defs = build_definitions(talent_env)
    text = serialize_value(RepositorySnap.from_def(defs.get_repository_def()))
    assert s3_server.secret_key not in text
    assert s3_server.access_key not in text
    assert "AWS_ACCESS_KEY_ID" in text and "AWS_SECRET_ACCESS_KEY" in text  # EnvVar names


# --- talent process FILE, without --out ----------------------------------------------------------


@pytest.mark.slow
def test_cli_process_file_without_out_uploads_then_processes(
    talent_env: Settings, three_person, tmp_path: Path
) -> None:
    path, _ = three_person
    video = tmp_path / "cli-upload-claim.mp4"
    video.write_bytes(path.read_bytes())
    key = f"{talent_env.video_prefix}{video.name}"
    assert list(store_for(talent_env).list(key)) == []

    proc = subprocess.run(
        [sys.executable, "-m", "talent_assets.apps.cli", "process", str(video), "--json"],
        cwd=tmp_path,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr

    # Uploaded to the bucket's video prefix, byte for byte, under the file's name.
    store = store_for(talent_env)
    assert store.get_bytes(key) == video.read_bytes()
    # Then processed like any video of the bucket: outputs and tables in the bucket.
    manifest = json.loads(proc.stdout)
    assert manifest == manifest_of(talent_env, key)
    video_id = video_id_for(talent_env.bucket, key, talent_env.video_prefix)
    assert manifest["video_id"] == video_id
    assert manifest["source"] == {"bucket": talent_env.bucket, "key": key}
    assert manifest["people_found"] == 3
    base = "processed/cli-upload-claim/"
    assert base + "manifest.json" in output_keys(talent_env, key)
    for result in manifest["results"]:
        assert result["s3_key"].startswith(base) and "path" not in result
    assert warehouse_keys(talent_env, video_id) == sorted(
        f"warehouse/{table}/video_id={video_id}/part-0.parquet" for table in TABLES
    )
    assert not (tmp_path / "processed").exists() and not (tmp_path / "warehouse").exists()


# --- GET /videos/{id} for runs the API did not start ---------------------------------------------


@pytest.mark.slow
def test_api_reports_runs_it_did_not_start(
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    no_face_clip: Path,
    bad_inputs: dict[str, Path],
) -> None:
    good, bad = "videos/claims/elsewhere.mp4", "videos/claims/elsewhere-bad.mp4"
    upload(talent_env, no_face_clip, good)
    upload(talent_env, bad_inputs["empty"], bad)
    good_id, ok = run_key(talent_env, dagster_instance, good)
    assert ok.success, ok.message
    bad_id, failed = run_key(talent_env, dagster_instance, bad)
    assert not failed.success

    with (
        serve(create_app(talent_env, dagster_instance)) as url,
        httpx.Client(base_url=url, timeout=60) as http,
    ):
        response = http.get(f"/videos/{good_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body == {
            "video_id": good_id,
            "status": "success",
            "run_id": ok.run_id,
            "key": good,
            "manifest": manifest_of(talent_env, good),
            "error": None,
        }
        assert body["manifest"]["video_id"] == good_id

        response = http.get(f"/videos/{bad_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["status"], body["run_id"], body["key"]) == ("failure", failed.run_id, bad)
        assert body["error"] == failed.message and "empty file" in body["error"]
        assert body["manifest"] is None
