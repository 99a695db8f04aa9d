"""The body of a detection worker: one chunk of one S3 video in, Arrow IPC rows out.

Shared by the Modal GPU class (``modal_gpu.app``) and tests (which run it on the CPU against
the local S3 server), so both run exactly the same code.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from modal_gpu.chunks import ChunkRequest
from modal_gpu.detection import DetectionStats, detect_video_faces
from modal_gpu.face_engine import FaceEngine
from modal_gpu.fanout import join_chunks
from modal_gpu.representative import Candidate
from modal_gpu.schema import table_from_ipc, table_to_ipc
from modal_gpu.video import VideoError


def detect_chunk_from_s3(engine: FaceEngine, s3_client: Any, request: ChunkRequest) -> dict:
    """Download the video, analyse [start_s, end_s), delete the download, return the rows.

    Returns ``{"ipc": bytes, "frames_analyzed", "frames_reused", "faces", "download_s",
    "decode_s", "inference_s", "wall_s", "representative"}`` (``representative``: the best
    frame of each representative-frame window this chunk saw, as dicts of
    :class:`~modal_gpu.representative.Candidate` with the JPEG bytes), or
    ``{"video_error": "<one line>"}`` when the file is not a usable video: returned, not
    raised, because the platform would retry an exception and no retry can fix bad input.
    The temporary file is removed even when detection fails.
    """
    started = time.perf_counter()
    suffix = PurePosixPath(request.key).suffix[:8]
    fd, name = tempfile.mkstemp(prefix="talent-chunk-", suffix=suffix)
    os.close(fd)
    path = Path(name)
    try:
        s3_client.download_file(request.bucket, request.key, str(path))
        download_s = time.perf_counter() - started
        try:
            table, stats = detect_video_faces(
                path,
                video_id=request.video_id,
                engine=engine,
                sample_fps=request.sample_fps,
                start_s=request.start_s,
                end_s=request.end_s,
                static_block_s=request.static_block_s,
                representative_frames=request.representative_frames,
                duration_s=request.duration_s,
            )
        except VideoError as err:
            return {"video_error": str(err)}
    finally:
        path.unlink(missing_ok=True)
    return {
        "ipc": table_to_ipc(table),
        "frames_analyzed": stats.frames_analyzed,
        "frames_reused": stats.frames_reused,
        "faces": table.num_rows,
        "download_s": round(download_s, 3),
        "decode_s": round(stats.decode_s, 3),
        "inference_s": round(stats.inference_s, 3),
        "wall_s": round(time.perf_counter() - started, 3),
        "representative": [c.to_dict() for c in stats.representative],
    }


def join_replies(replies: list[dict]) -> tuple[pa.Table, DetectionStats]:
    """A video's rows and statistics from its chunks' replies (in chunk order).

    Raises :class:`VideoError` with the worker's one-line reason if any chunk found the file
    unusable.
    """
    for reply in replies:
        if "video_error" in reply:
            raise VideoError(reply["video_error"])
    return join_chunks(
        [
            (
                table_from_ipc(reply["ipc"]),
                DetectionStats(
                    frames_analyzed=int(reply["frames_analyzed"]),
                    frames_reused=int(reply.get("frames_reused", 0)),
                    decode_s=float(reply["decode_s"]),
                    inference_s=float(reply["inference_s"]),
                    wall_s=float(reply["wall_s"]),
                    representative=[
                        Candidate.from_dict(c) for c in reply.get("representative", ())
                    ],
                ),
            )
            for reply in replies
        ]
    )
