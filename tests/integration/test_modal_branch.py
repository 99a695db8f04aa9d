"""``face_detections`` on Modal (``TALENT_DETECTOR=modal``), end to end in real Dagster runs.

README: "With ``TALENT_DETECTOR=modal`` ... ``face_detections`` splits each video into chunks on
the sampling grid and fans them out with ``.map`` over the deployed class; it records GPU
seconds and an estimated cost (list prices per GPU type, override with
``TALENT_MODAL_GPU_PRICES`` as JSON) in the materialisation metadata", and "the worker returns
``{"video_error": ...}`` instead of raising so bad input is not retried".

Modal cannot be reached from here, so the one thing replaced is the cloud boundary: the lookup
of the deployed class, ``modal.Cls.from_name("video-talent-extractor", "FaceDetector")``. What
it returns runs the real class, ``modal_gpu.app.FaceDetector``, with Modal's ``.local()``
(``@modal.enter`` included) on this machine's CPU, reading the video from the test S3 server
as a container would. Everything else (the resource, ``infra.detection``'s dispatch and
chunk planning, joining the replies, cost, the asset, Dagster) is the production code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import modal
import pytest
from dagster import DagsterEventType, DagsterInstance

from modal_gpu.video import probe_video
from talent_assets.infra import detection
from talent_assets.infra.detection import DetectorConfig, VideoSource, detect_faces
from talent_assets.infra.settings import DEFAULT_GPU_PRICES_PER_HOUR, Settings
from tests.support.pipeline import (
    ASSET_CHECKS,
    assert_same_face_rows,
    check_evaluations,
    latest_metadata,
    manifest_of,
    output_keys,
    run_key,
    upload,
    warehouse,
    warehouse_keys,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*will not have access to the mounted Volume:UserWarning"),
]

GPU = "L4"  # not the default T4: the metadata and the price must follow TALENT_MODAL_GPU


class DeployedAppStandIn:
    """Stands in for the deployed Modal app, and nothing else.

    ``from_name(app, cls)`` replaces ``modal.Cls.from_name``; calling the result with
    ``model_pack=`` gives an object whose ``detect_chunk.map(requests)`` runs each request
    through the real ``FaceDetector.detect_chunk`` with ``.local()``, in input order (as
    Modal's ``.map`` returns them). Requests pass through JSON, as they must to reach a
    container. Records lookups, requests and replies for the assertions; ``before_map`` runs
    once before each fan-out.
    """

    def __init__(self) -> None:
        self.lookups: list[tuple[str, str]] = []
        self.model_packs: list[str] = []
        self.maps: list[list[dict]] = []
        self.replies: list[dict] = []
        self.before_map: Callable[[], None] | None = None
        self._detectors: dict[str, Any] = {}

    def from_name(self, app_name: str, name: str, **_: Any) -> Callable[..., Any]:
        self.lookups.append((app_name, name))
        return self._instance

    def _instance(self, *, model_pack: str) -> Any:
        from modal_gpu.app import FaceDetector

        self.model_packs.append(model_pack)
        if model_pack not in self._detectors:  # one warm container per model pack
            self._detectors[model_pack] = FaceDetector(model_pack=model_pack)
        stand_in = self

        class Method:
            def map(self, requests: Iterable[dict]) -> Iterator[dict]:
                return stand_in._map(model_pack, requests)

        return type("Detector", (), {"detect_chunk": Method()})()

    def _map(self, model_pack: str, requests: Iterable[dict]) -> Iterator[dict]:
        batch = [json.loads(json.dumps(r)) for r in requests]
        self.maps.append(batch)
        if self.before_map is not None:
            self.before_map()
        detector = self._detectors[model_pack]
        for request in batch:
            reply = detector.detect_chunk.local(request)
            self.replies.append(reply)
            yield reply


@pytest.fixture
def modal_cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[DeployedAppStandIn]:
    cloud = DeployedAppStandIn()
    detection._deployed_detector_cls.cache_clear()  # looked up once per process otherwise
    monkeypatch.setattr(modal.Cls, "from_name", cloud.from_name)
    yield cloud
    detection._deployed_detector_cls.cache_clear()


@pytest.fixture
def modal_env(talent_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The production detector settings, with chunks short enough for an 8-s clip."""
    for name, value in {
        "TALENT_DETECTOR": "modal",
        "TALENT_MODEL_PACK": "bundled",  # the pack the CPU here has; production: buffalo_l
        "TALENT_MODAL_GPU": GPU,
        "TALENT_CHUNK_S": "2",
        "TALENT_STATIC_BLOCK_S": "2",  # 2-s reuse blocks, so 2-s chunks stay 2 s long
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TALENT_MODAL_GPU_PRICES", raising=False)
    return Settings.from_env()


def _gpu_seconds(replies: list[dict]) -> float:
    return sum(float(r["wall_s"]) for r in replies)


def test_modal_branch_fans_out_chunks_and_matches_the_local_detector(
    modal_env: Settings,
    modal_cloud: DeployedAppStandIn,
    dagster_instance: DagsterInstance,
    three_person,
) -> None:
    path, _ = three_person
    key = "videos/modal-branch/three.mp4"
    upload(modal_env, path, key)
    video_id, outcome = run_key(modal_env, dagster_instance, key)
    assert outcome.success, outcome.message

    # The deployed class was looked up by name, with the configured pack, and fanned out once.
    assert modal_cloud.lookups == [("video-talent-extractor", "FaceDetector")]
    assert modal_cloud.model_packs == ["bundled"]
    assert len(modal_cloud.maps) == 1
    requests = modal_cloud.maps[0]
    assert [(r["start_s"], r["end_s"]) for r in requests] == [
        (0.0, 2.0),
        (2.0, 4.0),
        (4.0, 6.0),
        (6.0, None),
    ]
    for request in requests:
        assert request["bucket"] == modal_env.bucket and request["key"] == key
        assert request["video_id"] == video_id
        assert (request["sample_fps"], request["model_pack"]) == (2.0, "bundled")
        assert request["static_block_s"] == 2.0

    # The rows are the local detector's for the same video: same faces, same frames.
    table = warehouse(modal_env).read("face_detections", video_id)
    assert table is not None and table.num_rows > 0
    local = DetectorConfig(
        kind="local", model_pack="bundled", sample_fps=2.0, workers=1, static_block_s=2.0
    )
    duration = probe_video(path).duration_s
    source = VideoSource(modal_env.bucket, key, duration, local_path=lambda: path)
    assert len(detection.plan_detection(local, duration)) == 1
    want, want_stats = detect_faces(local, video_id, source)
    assert_same_face_rows(table, want)

    # GPU time and cost in the materialisation metadata.
    meta = latest_metadata(dagster_instance, "face_detections", video_id)
    replies = modal_cloud.replies
    assert len(replies) == 4
    gpu_s = _gpu_seconds(replies)
    assert gpu_s > 0
    assert meta["detector"] == "modal"
    assert meta["chunks"] == 4
    assert meta["gpu"] == GPU
    assert meta["gpu_seconds"] == round(gpu_s, 2)
    price = DEFAULT_GPU_PRICES_PER_HOUR[GPU]
    assert meta["estimated_cost_usd"] == round(gpu_s / 3600 * price, 5)
    assert meta["estimated_cost_usd"] > 0
    assert meta["frames_analyzed"] == want_stats.frames_analyzed == 16
    assert meta["faces"] == table.num_rows

    # The rest of the pipeline runs on those rows, and every asset check passed.
    manifest = manifest_of(modal_env, key)
    assert manifest is not None and manifest["people_found"] == 3
    evaluations = check_evaluations(dagster_instance, outcome.run_id)
    assert set(evaluations) == ASSET_CHECKS
    assert all(e.passed for e in evaluations.values()), evaluations


def test_gpu_price_override_changes_the_estimated_cost(
    modal_env: Settings,
    modal_cloud: DeployedAppStandIn,
    dagster_instance: DagsterInstance,
    no_face_clip: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    override = 36.0  # USD per GPU-hour: 100× the seconds
    monkeypatch.setenv("TALENT_MODAL_GPU_PRICES", json.dumps({GPU: override}))
    settings = Settings.from_env()
    key = "videos/modal-branch/priced.mp4"
    upload(settings, no_face_clip, key)
    video_id, outcome = run_key(settings, dagster_instance, key)
    assert outcome.success, outcome.message

    meta = latest_metadata(dagster_instance, "face_detections", video_id)
    gpu_s = _gpu_seconds(modal_cloud.replies)
    assert meta["chunks"] == len(modal_cloud.replies) == 2  # 3 s in 2-s chunks
    assert meta["gpu"] == GPU and meta["gpu_seconds"] == round(gpu_s, 2)
    assert meta["estimated_cost_usd"] == round(gpu_s / 3600 * override, 5)
    list_price_cost = round(gpu_s / 3600 * DEFAULT_GPU_PRICES_PER_HOUR[GPU], 5)
    assert meta["estimated_cost_usd"] > list_price_cost


def test_worker_video_error_fails_the_run_in_one_line_without_retries(
    modal_env: Settings,
    modal_cloud: DeployedAppStandIn,
    dagster_instance: DagsterInstance,
    no_face_clip: Path,
    bad_inputs: dict[str, Path],
) -> None:
    key = "videos/modal-branch/replaced.mp4"
    upload(modal_env, no_face_clip, key)
    # raw_video proves the object is a video; then, before the workers download it, it is
    # overwritten with a file that is not one (a re-upload while the run is in flight).
    modal_cloud.before_map = lambda: upload(modal_env, bad_inputs["text"], key)
    video_id, outcome = run_key(modal_env, dagster_instance, key)

    assert not outcome.success
    assert outcome.error_kind == "invalid_video"
    errors = [r["video_error"] for r in modal_cloud.replies if "video_error" in r]
    assert errors and "not a video" in errors[0]
    assert outcome.message == f"{key}: {errors[0]}"
    assert "\n" not in outcome.message

    # Not retried: one fan-out, although face_detections has a retry policy.
    assert len(modal_cloud.maps) == 1
    assert not dagster_instance.all_logs(outcome.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY)
    run = dagster_instance.get_run_by_id(outcome.run_id)
    assert run is not None and run.is_failure
    # Nothing written past raw_video's record of the (then valid) object.
    assert warehouse_keys(modal_env, video_id) == [
        f"warehouse/videos/video_id={video_id}/part-0.parquet"
    ]
    assert output_keys(modal_env, key) == []
