"""Run the chunks of one local video in parallel worker processes and join them in order.

Each worker process loads the face engine once with a single onnxruntime thread, so N
workers use N cores without oversubscription, and decoding runs in parallel too (one
decoder per chunk), which a single multi-threaded process cannot do as well.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from modal_gpu.chunks import STATIC_BLOCK_S, Chunk
from modal_gpu.detection import DetectionStats, detect_video_faces
from modal_gpu.face_engine import FaceEngine
from modal_gpu.schema import FACE_DETECTIONS_SCHEMA
from modal_gpu.video import VideoError

CHUNK_ATTEMPTS = 2


@functools.lru_cache(maxsize=2)
def cached_engine(pack: str, threads: int = 1) -> FaceEngine:
    """One engine per process, pack and thread count: loading ONNX sessions takes seconds."""
    return FaceEngine(pack, intra_op_threads=threads)


@dataclass(frozen=True)
class VideoJob:
    """What every chunk of one video is analysed with (picklable, sent to the workers)."""

    path: str
    video_id: str
    pack: str
    sample_fps: float
    static_block_s: float = STATIC_BLOCK_S
    representative_frames: int = 0
    duration_s: float = 0.0
    threads: int = 1


# Frames done per chunk, shared with the pool's workers (set by ``_share_progress``): each
# worker writes only its own chunk's slot, so a worker that dies holds no lock anyone waits on.
_PROGRESS_SLOTS: Any = None


def _share_progress(slots: Any) -> None:
    """Pool initializer: keep the shared per-chunk frame counts."""
    global _PROGRESS_SLOTS
    _PROGRESS_SLOTS = slots


def _detect_chunk(
    job: VideoJob, chunk: Chunk, slot: int = -1, on_progress: Callable[[int], None] | None = None
) -> tuple[pa.Table, DetectionStats]:
    started = time.time()
    if on_progress is None and slot >= 0 and _PROGRESS_SLOTS is not None:
        on_progress = functools.partial(_PROGRESS_SLOTS.__setitem__, slot)
    table, stats = detect_video_faces(
        Path(job.path),
        video_id=job.video_id,
        engine=cached_engine(job.pack, job.threads),
        sample_fps=job.sample_fps,
        start_s=chunk.start_s,
        end_s=chunk.end_s,
        static_block_s=job.static_block_s,
        representative_frames=job.representative_frames,
        duration_s=job.duration_s,
        on_progress=on_progress,
    )
    # Who ran it and when, so the join can report how much really ran side by side.
    stats.extra = {"pid": os.getpid(), "span": (started, time.time())}
    return table, stats


def _overlap_s(spans: list[tuple[float, float]]) -> float:
    """Seconds during which at least two chunks were running at once."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    running, last, overlap = 0, 0.0, 0.0
    for t, step in events:
        if running >= 2:
            overlap += t - last
        running += step
        last = t
    return overlap


def join_chunks(results: list[tuple[pa.Table, DetectionStats]]) -> tuple[pa.Table, DetectionStats]:
    """Concatenate per-chunk rows in chunk order and add up their statistics."""
    tables = [table for table, _ in results if table.num_rows]
    table = pa.concat_tables(tables) if tables else FACE_DETECTIONS_SCHEMA.empty_table()
    stats = DetectionStats()
    for _, chunk_stats in results:
        stats = stats.merge(chunk_stats)
    stats.faces_detected = table.num_rows
    return table, stats


class _PoolProgress:
    """Frames done over all chunks, read from the shared slots while the pools run."""

    POLL_S = 0.25

    def __init__(self, context: Any, chunks: list[Chunk], report: Callable[[int], None] | None):
        self.slots = context.RawArray("q", len(chunks))
        self.position = {c.index: i for i, c in enumerate(chunks)}
        self.report = report
        self._last = -1

    def wait(self, futures: list[Future]) -> None:
        """Until every future is done, report the frames done every POLL_S seconds."""
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=self.POLL_S)
            self.poll()

    def poll(self) -> None:
        done = sum(self.slots)
        if self.report is not None and done != self._last:
            self._last = done
            self.report(done)


def _detect_in_pools(
    job: VideoJob,
    chunks: list[Chunk],
    workers: int,
    on_progress: Callable[[int], None] | None = None,
) -> list[tuple[pa.Table, DetectionStats]]:
    """Run ``chunks`` in a process pool; chunks whose attempt failed (an error, or a worker
    that died and broke the pool) run again in a fresh pool, at most CHUNK_ATTEMPTS times."""
    # spawn, not fork: the parent may hold onnxruntime and decoder threads.
    context = multiprocessing.get_context("spawn")
    progress = _PoolProgress(context, chunks, on_progress)
    results: dict[int, tuple[pa.Table, DetectionStats]] = {}
    attempts = dict.fromkeys((c.index for c in chunks), 0)
    pending = list(chunks)
    while pending:
        failed = []
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=context,
            initializer=_share_progress, initargs=(progress.slots,),
        ) as pool:  # fmt: skip
            futures = {c.index: pool.submit(_detect_chunk, job, c, progress.position[c.index])
                       for c in pending}  # fmt: skip
            progress.wait(list(futures.values()))
            for chunk in pending:
                attempts[chunk.index] += 1
                try:
                    results[chunk.index] = futures[chunk.index].result()
                except VideoError:
                    raise
                except Exception:  # BrokenProcessPool included: the next pool is fresh
                    if attempts[chunk.index] >= CHUNK_ATTEMPTS:
                        raise
                    progress.slots[progress.position[chunk.index]] = 0  # counted again
                    failed.append(chunk)
        pending = failed
    return [results[c.index] for c in chunks]


def detect_in_chunks(
    path: Path,
    *,
    video_id: str,
    pack: str,
    sample_fps: float,
    chunks: list[Chunk],
    workers: int,
    static_block_s: float = STATIC_BLOCK_S,
    representative_frames: int = 0,
    duration_s: float = 0.0,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[pa.Table, DetectionStats]:
    """Analyse ``chunks`` of ``path`` with up to ``workers`` processes; rows in time order.

    ``chunks`` should be planned with ``align_slots=static_block_slots(sample_fps,
    static_block_s)`` so that the rows do not depend on how the video was split.

    A chunk that fails for a reason other than bad input is retried once, in a fresh pool if
    its worker died (a killed worker breaks the whole pool); bad input (:class:`VideoError`)
    fails at once, as retrying cannot fix it.

    ``representative_frames``/``duration_s``: see ``detect_video_faces``; the chunks' best
    frames per window are merged. ``on_progress(n)``: n sampled frames done over all chunks,
    called in this thread (every frame in-process, every 0.25 s or so from a pool).
    """
    started = time.perf_counter()
    job = VideoJob(
        str(path), video_id, pack, sample_fps, static_block_s, representative_frames, duration_s
    )
    if len(chunks) <= 1 or workers <= 1:
        results = []
        for chunk in chunks:
            offset = sum(s.frames_analyzed for _, s in results)
            report = None if on_progress is None else _offset(on_progress, offset)
            results.append(_detect_chunk(job, chunk, on_progress=report))
    else:
        results = _detect_in_pools(job, chunks, workers, on_progress)
    table, stats = join_chunks(results)
    stats.wall_s = time.perf_counter() - started
    stats.extra = {
        "chunks": len(chunks),
        "worker_processes": len({s.extra["pid"] for _, s in results}),
        "parallel_s": round(_overlap_s([s.extra["span"] for _, s in results]), 3),
    }
    return table, stats


def _offset(report: Callable[[int], None], offset: int) -> Callable[[int], None]:
    return lambda done: report(offset + done)
