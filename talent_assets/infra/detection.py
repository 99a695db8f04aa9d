"""Detector dispatch: how a video's chunks are analysed, in local processes or on Modal.

The Dagster resource ``FaceDetector`` (``defs/resources.py``) is configuration only; this
module does the work, so it is the same whether a run, a benchmark or a test calls it.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pyarrow as pa

from modal_gpu.chunks import (
    Chunk,
    auto_chunk_seconds,
    chunk_requests,
    plan_chunks,
    static_block_slots,
)
from modal_gpu.detection import DetectionStats
from modal_gpu.fanout import detect_in_chunks
from modal_gpu.worker import join_replies
from talent_assets.core.progress import ProgressCallback, expected_frames

# Chunk length on Modal: short enough that a 90-minute video fans out over ~45 GPUs and
# finishes in about a minute, long enough that each container's model load is amortised.
MODAL_CHUNK_S = 120.0
MODAL_APP_NAME = "video-talent-extractor"

DetectorKind = Literal["local", "modal"]


@dataclass(frozen=True)
class VideoSource:
    """Where the detector finds a video: the object, and a local copy for the CPU path."""

    bucket: str
    key: str
    duration_s: float
    local_path: Callable[[], Path]
    frames: int = 0  # frames in the video, when known (bounds the sampled frames expected)


@dataclass(frozen=True)
class DetectorConfig:
    """What a detector run needs to know (the ``FaceDetector`` resource's fields)."""

    kind: DetectorKind = "local"
    model_pack: str = "bundled"
    sample_fps: float = 2.0
    workers: int = 0  # local processes; 0 = one per core
    chunk_s: float = 0.0  # 0 = local: one chunk per worker; Modal: MODAL_CHUNK_S
    static_block_s: float = 5.0
    representative_frames: int = 0  # N evenly spaced stills chosen during detection; 0: none
    modal_app: str = MODAL_APP_NAME
    modal_gpu: str = "T4"
    gpu_prices: Mapping[str, float] | None = None

    def local_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


class ChunkMapper(Protocol):
    """What ``.map`` over the deployed Modal method offers (a stand-in can offer the same)."""

    def map(self, requests: Iterable[dict]) -> Iterable[dict]: ...


def plan_detection(config: DetectorConfig, duration_s: float) -> list[Chunk]:
    """The chunks a detector with ``config`` analyses for a video of ``duration_s`` seconds."""
    if config.kind == "modal":
        chunk_s = config.chunk_s or MODAL_CHUNK_S
    else:
        chunk_s = config.chunk_s or auto_chunk_seconds(duration_s, config.local_workers())
    align = static_block_slots(config.sample_fps, config.static_block_s)
    return plan_chunks(duration_s, config.sample_fps, chunk_s, align_slots=align)


def detect_faces(
    config: DetectorConfig,
    video_id: str,
    source: VideoSource,
    progress: ProgressCallback | None = None,
) -> tuple[pa.Table, DetectionStats]:
    """All gated faces of the video as ``face_detections`` rows, plus statistics; with
    ``config.representative_frames``, also the video's representative frames
    (``stats.representative``), chosen in the same decode.

    ``progress(done_frames, total_frames)`` is called in this thread as sampled frames are
    analysed (locally: every frame, or every 0.25 s from a process pool; on Modal: as each
    chunk finishes), and once more at the end with done == total.
    """
    chunks = plan_detection(config, source.duration_s)
    total = expected_frames(source.duration_s, config.sample_fps, source.frames)
    report = None if progress is None else _bounded(progress, total)
    if config.kind == "modal":
        mapper = deployed_detect_chunk(config.modal_app, config.model_pack)
        table, stats = detect_on_modal(config, video_id, source, chunks, mapper, report)
    else:
        table, stats = detect_in_chunks(
            source.local_path(),
            video_id=video_id,
            pack=config.model_pack,
            sample_fps=config.sample_fps,
            chunks=chunks,
            workers=config.local_workers(),
            static_block_s=config.static_block_s,
            representative_frames=config.representative_frames,
            duration_s=source.duration_s,
            on_progress=report,
        )
    if progress is not None and stats.frames_analyzed:
        progress(stats.frames_analyzed, stats.frames_analyzed)
    return table, stats


def _bounded(progress: ProgressCallback, total: int) -> Callable[[int], None]:
    """``progress`` as a ``done``-only callback; a video that gives more sampled frames than
    expected (frames past its stated duration) never reports more than 99 %."""
    return lambda done: progress(min(done, total - 1) if done >= total else done, total)


def deployed_detect_chunk(app_name: str, model_pack: str) -> ChunkMapper:
    """``FaceDetector(model_pack=...).detect_chunk`` of the deployed Modal app."""
    return _deployed_detector_cls(app_name)(model_pack=model_pack).detect_chunk


@functools.lru_cache(maxsize=4)
def _deployed_detector_cls(app_name: str) -> Any:  # modal.Cls, looked up once per process
    import modal

    return modal.Cls.from_name(app_name, "FaceDetector")


def detect_on_modal(
    config: DetectorConfig,
    video_id: str,
    source: VideoSource,
    chunks: list[Chunk],
    mapper: ChunkMapper,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[pa.Table, DetectionStats]:
    """Fan ``chunks`` out with ``mapper.map``, join the replies, add GPU time and cost;
    ``on_progress(frames done)`` as each chunk's reply arrives."""
    started = time.perf_counter()
    requests = chunk_requests(
        chunks,
        bucket=source.bucket,
        key=source.key,
        video_id=video_id,
        sample_fps=config.sample_fps,
        model_pack=config.model_pack,
        static_block_s=config.static_block_s,
        representative_frames=config.representative_frames,
        duration_s=source.duration_s,
    )
    # .map keeps input order, so rows come back in time order; Modal retries chunks.
    replies: list[dict] = []
    for reply in mapper.map(requests):
        replies.append(reply)
        if on_progress is not None:
            on_progress(sum(int(r.get("frames_analyzed", 0)) for r in replies))
    table, stats = join_replies(replies)
    gpu_seconds = sum(float(r["wall_s"]) for r in replies)
    stats.wall_s = time.perf_counter() - started
    stats.extra.update(chunks=len(chunks), gpu=config.modal_gpu, gpu_seconds=round(gpu_seconds, 2))
    price = (config.gpu_prices or {}).get(config.modal_gpu)
    if price is not None:
        stats.extra["estimated_cost_usd"] = round(gpu_seconds / 3600 * price, 5)
    return table, stats
