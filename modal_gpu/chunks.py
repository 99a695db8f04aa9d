"""Split a video's timeline into chunks that together analyse every sampled frame once.

Sampling slot k covers [k / fps, (k + 1) / fps) and keeps the first frame in it (see
``modal_gpu.video``). Chunk bounds are whole multiples of the slot length, so every slot,
and with it every sampled frame, falls in exactly one chunk. The last chunk is open-ended so
that frames past the container's stated duration are not lost.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# Seconds of the sampling grid per static-frame reuse block (``modal_gpu.static_frames``):
# a frame is analysed afresh at least this often; 0 turns reuse off.
STATIC_BLOCK_S = 5.0


def static_block_slots(sample_fps: float, block_s: float) -> int:
    """Sampling slots per static-frame reuse block; 0 when reuse is off."""
    if block_s <= 0:
        return 0
    return max(1, round(block_s * sample_fps))


@dataclass(frozen=True)
class Chunk:
    """A time range [start_s, end_s) of a video; ``end_s`` None means to the end."""

    index: int
    start_s: float
    end_s: float | None


def plan_chunks(
    duration_s: float, sample_fps: float, chunk_s: float, align_slots: int = 1
) -> list[Chunk]:
    """Chunks of about ``chunk_s`` seconds, bounds on the sampling grid, covering all.

    ``align_slots``: every bound is also a multiple of this many slots (chunks grow to the
    next multiple), so per-block decisions such as static-frame reuse
    (``modal_gpu.static_frames``) never straddle two chunks.
    """
    if sample_fps <= 0:
        raise ValueError("sample_fps must be positive")
    align = max(1, align_slots)
    slots_total = max(1, math.ceil(duration_s * sample_fps))
    slots_per_chunk = max(1, round(chunk_s * sample_fps)) if chunk_s > 0 else slots_total
    slots_per_chunk = math.ceil(slots_per_chunk / align) * align
    chunks: list[Chunk] = []
    start_slot = 0
    while True:
        end_slot = start_slot + slots_per_chunk
        last = end_slot >= slots_total
        chunks.append(
            Chunk(
                index=len(chunks),
                start_s=start_slot / sample_fps,
                end_s=None if last else end_slot / sample_fps,
            )
        )
        if last:
            return chunks
        start_slot = end_slot


def auto_chunk_seconds(duration_s: float, workers: int, minimum_s: float = 30.0) -> float:
    """One chunk per worker, but never so short that loading a model dominates."""
    if workers <= 1:
        return 0.0  # one chunk: the whole video
    return max(minimum_s, math.ceil(duration_s / workers))


@dataclass(frozen=True)
class ChunkRequest:
    """What a worker needs to analyse one chunk of one S3 video (JSON-serialisable)."""

    bucket: str
    key: str
    video_id: str
    sample_fps: float
    start_s: float
    end_s: float | None
    model_pack: str
    static_block_s: float = STATIC_BLOCK_S
    # N representative frames of the whole video (``modal_gpu.representative``): their
    # windows depend on the video's duration, so both travel with every chunk. 0: none.
    representative_frames: int = 0
    duration_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def chunk_requests(
    chunks: list[Chunk],
    *,
    bucket: str,
    key: str,
    video_id: str,
    sample_fps: float,
    model_pack: str,
    static_block_s: float = STATIC_BLOCK_S,
    representative_frames: int = 0,
    duration_s: float = 0.0,
) -> list[dict]:
    """One JSON-ready :class:`ChunkRequest` per chunk of one S3 video, in chunk order."""
    return [
        ChunkRequest(
            bucket=bucket,
            key=key,
            video_id=video_id,
            sample_fps=sample_fps,
            start_s=c.start_s,
            end_s=c.end_s,
            model_pack=model_pack,
            static_block_s=static_block_s,
            representative_frames=representative_frames,
            duration_s=duration_s,
        ).to_dict()
        for c in chunks
    ]
