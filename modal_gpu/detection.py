"""Faces of one video (or one time range of it) as a ``face_detections`` Arrow table."""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa

from modal_gpu.chunks import STATIC_BLOCK_S
from modal_gpu.face_engine import DetectedFace, FaceEngine
from modal_gpu.representative import Candidate, RepresentativePicker, merge_candidates
from modal_gpu.schema import EMBEDDING_DIM, FACE_DETECTIONS_SCHEMA
from modal_gpu.static_frames import StaticFrameFilter, thumbnail
from modal_gpu.video import SampledFrame, iter_sampled_frames

T = TypeVar("T")

# Frames per engine call: enough to batch recognition well, small enough to keep memory flat.
BATCH_FRAMES = 8


@dataclass
class DetectionStats:
    """Counts and per-stage seconds of one detection pass.

    ``frames_analyzed`` counts every sampled frame; ``frames_reused`` how many of them were
    near-identical to an analysed frame of a static shot and took its faces.
    ``representative``: the best frame of each representative-frame window the pass saw
    (``modal_gpu.representative``), JPEG-encoded.
    """

    frames_analyzed: int = 0
    frames_reused: int = 0
    faces_detected: int = 0
    decode_s: float = 0.0
    inference_s: float = 0.0
    wall_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    representative: list[Candidate] = field(default_factory=list)

    def merge(self, other: DetectionStats) -> DetectionStats:
        """Totals of two passes (wall time: the longer one, as chunks run side by side)."""
        return DetectionStats(
            frames_analyzed=self.frames_analyzed + other.frames_analyzed,
            frames_reused=self.frames_reused + other.frames_reused,
            faces_detected=self.faces_detected + other.faces_detected,
            decode_s=self.decode_s + other.decode_s,
            inference_s=self.inference_s + other.inference_s,
            wall_s=max(self.wall_s, other.wall_s),
            extra={**self.extra, **other.extra},
            representative=merge_candidates(self.representative, other.representative),
        )


_DONE = object()


def _prefetch(frames: Iterator[T], depth: int, stats: DetectionStats) -> Iterator[T]:
    """Decode in a background thread so decoding overlaps inference.

    Both FFmpeg and onnxruntime release the GIL, so a thread is enough to keep both busy.
    Exceptions in the decoder are re-raised in the consumer.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            started = time.perf_counter()
            for frame in frames:
                stats.decode_s += time.perf_counter() - started
                while not stop.is_set():
                    try:
                        buffer.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
                started = time.perf_counter()
            stats.decode_s += time.perf_counter() - started
            buffer.put(_DONE)
        except BaseException as err:  # handed to the consumer, which re-raises it
            buffer.put(err)

    worker = threading.Thread(target=produce, name="video-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def faces_to_table(faces: list[DetectedFace], video_id: str, model_pack: str) -> pa.Table:
    """Build the ``face_detections`` table from engine output."""
    n = len(faces)
    if n == 0:
        return FACE_DETECTIONS_SCHEMA.empty_table()
    boxes = np.stack([f.bbox for f in faces]).astype(np.float32)
    landmarks = np.stack([f.landmarks.reshape(10) for f in faces]).astype(np.float32)
    embeddings = np.stack([f.embedding for f in faces]).astype(np.float32)
    columns = {
        "video_id": pa.array([video_id] * n, pa.string()),
        "frame_index": pa.array([f.frame_index for f in faces], pa.int64()),
        "face_index": pa.array([f.face_index for f in faces], pa.int32()),
        "timestamp_s": pa.array([f.timestamp_s for f in faces], pa.float64()),
        "x1": pa.array(boxes[:, 0]),
        "y1": pa.array(boxes[:, 1]),
        "x2": pa.array(boxes[:, 2]),
        "y2": pa.array(boxes[:, 3]),
        "det_score": pa.array([f.det_score for f in faces], pa.float32()),
        "landmarks": pa.FixedSizeListArray.from_arrays(pa.array(landmarks.reshape(-1)), 10),
        "embedding": pa.FixedSizeListArray.from_arrays(
            pa.array(embeddings.reshape(-1)), EMBEDDING_DIM
        ),
        "embedding_norm": pa.array([f.embedding_norm for f in faces], pa.float32()),
        "sharpness": pa.array([f.sharpness for f in faces], pa.float32()),
        "brightness": pa.array([f.brightness for f in faces], pa.float32()),
        "yaw": pa.array([f.yaw for f in faces], pa.float32()),
        "pitch": pa.array([f.pitch for f in faces], pa.float32()),
        "roll": pa.array([f.roll for f in faces], pa.float32()),
        "face_quality": pa.array([f.face_quality for f in faces], pa.float32()),
        "model_pack": pa.array([model_pack] * n, pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=FACE_DETECTIONS_SCHEMA)


def detect_video_faces(
    path: Path,
    *,
    video_id: str,
    engine: FaceEngine,
    sample_fps: float,
    start_s: float = 0.0,
    end_s: float | None = None,
    static_block_s: float = STATIC_BLOCK_S,
    representative_frames: int = 0,
    duration_s: float = 0.0,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[pa.Table, DetectionStats]:
    """Sample ``path`` in [start_s, end_s) and return every gated face as table rows.

    A sampled frame that shows the same picture as the last analysed frame of its block
    (``modal_gpu.static_frames``) gets copies of that frame's faces instead of a second
    analysis; ``static_block_s=0`` analyses every frame.

    ``representative_frames`` > 0 (with the whole video's ``duration_s``): the same decode
    also scores every sampled frame for the representative-frame windows that overlap this
    range and keeps the best of each (``stats.representative``). ``on_progress(n)`` is called
    after each of the n sampled frames, in this thread.
    """
    stats = DetectionStats()
    wall = time.perf_counter()
    static = StaticFrameFilter(sample_fps, static_block_s)
    picker = RepresentativePicker(representative_frames, duration_s)
    sampled = iter_sampled_frames(
        path, sample_fps, start_s=start_s, end_s=end_s, keep_source=picker.enabled
    )
    frames = _prefetch(_scored_frames(sampled, static, picker), 2 * BATCH_FRAMES, stats)
    faces = _analyse(frames, engine, static, stats, on_progress)
    table = faces_to_table(faces, video_id, engine.pack)
    stats.faces_detected = table.num_rows
    stats.representative = picker.finish()
    stats.wall_s = time.perf_counter() - wall
    return table, stats


def _analyse(
    frames: Iterator[tuple[SampledFrame, np.ndarray | None]],
    engine: FaceEngine,
    static: StaticFrameFilter,
    stats: DetectionStats,
    on_progress: Callable[[int], None] | None,
) -> list[DetectedFace]:
    """The faces of ``frames``: analysed in batches, or copied in static shots."""
    faces: list[DetectedFace] = []
    # (frame_index, timestamp_s, frame_index of its reference): not the frame, whose pixels
    # are no longer needed.
    copies: list[tuple[int, float, int]] = []
    batch: list[SampledFrame] = []

    def run_batch() -> None:
        started = time.perf_counter()
        faces.extend(engine.analyse(batch))
        stats.inference_s += time.perf_counter() - started
        batch.clear()

    for frame, small in frames:
        stats.frames_analyzed += 1
        reference = static.reference_for(frame, small)
        if reference is not None:
            copies.append((frame.frame_index, frame.timestamp_s, reference))
        else:
            batch.append(frame)
        if len(batch) >= BATCH_FRAMES:
            run_batch()
        if on_progress is not None:
            on_progress(stats.frames_analyzed)
    if batch:
        run_batch()
    if copies:
        stats.frames_reused = len(copies)
        return _with_copies(faces, copies)
    return faces


def _scored_frames(
    frames: Iterator[SampledFrame], static: StaticFrameFilter, picker: RepresentativePicker
) -> Iterator[tuple[SampledFrame, np.ndarray | None]]:
    """Each frame with its static-filter thumbnail, made in the decode thread (beside
    inference); the same thumbnail scores the frame for its representative window. The
    decoded picture is dropped here, so only the picker holds any (one per open window)."""
    for frame in frames:
        small = static.thumbnail_for(frame)
        if picker.enabled:
            if small is None:  # reuse off: the thumbnail is made for scoring only
                small = thumbnail(frame.image)
            picker.offer(frame, small)
            frame = dataclasses.replace(frame, source=None)
        yield frame, small


def _with_copies(
    faces: list[DetectedFace], copies: list[tuple[int, float, int]]
) -> list[DetectedFace]:
    """``faces`` plus, for each copied frame, its reference's faces at the frame's time."""
    by_frame: dict[int, list[DetectedFace]] = {}
    for face in faces:
        by_frame.setdefault(face.frame_index, []).append(face)
    copied = [
        dataclasses.replace(face, frame_index=frame_index, timestamp_s=timestamp_s)
        for frame_index, timestamp_s, reference in copies
        for face in by_frame.get(reference, ())
    ]
    return sorted(faces + copied, key=lambda f: (f.timestamp_s, f.face_index))
