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
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

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


def _detect_chunk(
    path: str,
    video_id: str,
    pack: str,
    sample_fps: float,
    chunk: Chunk,
    threads: int,
    static_block_s: float,
) -> tuple[pa.Table, DetectionStats]:
    started = time.time()
    table, stats = detect_video_faces(
        Path(path),
        video_id=video_id,
        engine=cached_engine(pack, threads),
        sample_fps=sample_fps,
        start_s=chunk.start_s,
        end_s=chunk.end_s,
        static_block_s=static_block_s,
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


def _detect_in_pools(
    args: tuple[str, str, str, float], chunks: list[Chunk], workers: int, static_block_s: float
) -> list[tuple[pa.Table, DetectionStats]]:
    """Run ``chunks`` in a process pool; chunks whose attempt failed (an error, or a worker
    that died and broke the pool) run again in a fresh pool, at most CHUNK_ATTEMPTS times."""
    # spawn, not fork: the parent may hold onnxruntime and decoder threads.
    context = multiprocessing.get_context("spawn")
    results: dict[int, tuple[pa.Table, DetectionStats]] = {}
    attempts = dict.fromkeys((c.index for c in chunks), 0)
    pending = list(chunks)
    while pending:
        failed = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {c.index: pool.submit(_detect_chunk, *args, c, 1, static_block_s)
                       for c in pending}  # fmt: skip
            for chunk in pending:
                attempts[chunk.index] += 1
                try:
                    results[chunk.index] = futures[chunk.index].result()
                except VideoError:
                    raise
                except Exception:  # BrokenProcessPool included: the next pool is fresh
                    if attempts[chunk.index] >= CHUNK_ATTEMPTS:
                        raise
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
) -> tuple[pa.Table, DetectionStats]:
    """Analyse ``chunks`` of ``path`` with up to ``workers`` processes; rows in time order.

    ``chunks`` should be planned with ``align_slots=static_block_slots(sample_fps,
    static_block_s)`` so that the rows do not depend on how the video was split.

    A chunk that fails for a reason other than bad input is retried once, in a fresh pool if
    its worker died (a killed worker breaks the whole pool); bad input (:class:`VideoError`)
    fails at once, as retrying cannot fix it.
    """
    started = time.perf_counter()
    args = (str(path), video_id, pack, sample_fps)
    if len(chunks) <= 1 or workers <= 1:
        results = [_detect_chunk(*args, c, 1, static_block_s) for c in chunks]
    else:
        results = _detect_in_pools(args, chunks, workers, static_block_s)
    table, stats = join_chunks(results)
    stats.wall_s = time.perf_counter() - started
    stats.extra = {
        "chunks": len(chunks),
        "worker_processes": len({s.extra["pid"] for _, s in results}),
        "parallel_s": round(_overlap_s([s.extra["span"] for _, s in results]), 3),
    }
    return table, stats
