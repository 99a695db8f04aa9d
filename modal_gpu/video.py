"""Probe, validate and decode videos with PyAV.

Decoding is sequential: we walk the stream once with FFmpeg's own threading and keep the first
frame of every sampling slot, converting only the frames we keep. Seeking per sample (what the
original endpoint did) re-decodes a GOP for each sample and is several times slower.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

# Frames are converted at most this large for analysis: SCRFD runs at 640 px anyway and ArcFace
# at 112 px, so larger frames only cost conversion time. Boxes are reported in display pixels.
DEFAULT_ANALYSIS_MAX_SIDE = 1280
# Skip decoding non-reference frames only when a sampling slot spans at least this many
# frames: B-frame runs are short, so every such slot keeps a reference frame to sample.
NONREF_MIN_SLOT_FRAMES = 6


class VideoError(ValueError):
    """The input is not a usable video. ``str(err)`` is one line, fit to show a user."""


@dataclass(frozen=True)
class VideoInfo:
    """What a probe learns about a video. Sizes are display sizes (rotation applied)."""

    duration_s: float
    fps: float
    width: int
    height: int
    codec: str
    rotation: int  # clockwise degrees needed for display: 0, 90, 180 or 270
    frames: int

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


@dataclass(frozen=True)
class SampledFrame:
    """One analysed frame: BGR pixels in display orientation, possibly downscaled."""

    frame_index: int
    timestamp_s: float
    image: np.ndarray
    scale: float  # display pixels per image pixel (>= 1.0 when downscaled)
    # The decoded picture (``av.VideoFrame``) when asked for (``keep_source``), so that a
    # frame can be converted again at full size without decoding it twice.
    source: Any = field(default=None, repr=False, compare=False)


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise VideoError(f"file not found: {path.name}")
    if path.stat().st_size == 0:
        raise VideoError("empty file (0 bytes), not a video")
    try:
        container = av.open(str(path), mode="r")
    except av.error.InvalidDataError:
        raise VideoError("not a video: the file's format is not recognised") from None
    except av.error.FFmpegError as err:
        raise VideoError(f"cannot open video: {_ffmpeg_reason(err)}") from None
    if not container.streams.video:
        container.close()
        raise VideoError("not a video: the file has no video stream")
    return container


def _ffmpeg_reason(err: av.error.FFmpegError) -> str:
    # FFmpeg messages carry the file name and errno noise; keep only the human part.
    reason = getattr(err, "strerror", None) or str(err)
    return reason.strip().rstrip(".").splitlines()[0]


def _clockwise_rotation(frame_rotation: float) -> int:
    # PyAV reports the display matrix angle counter-clockwise; players rotate by its negative.
    return int(round(-frame_rotation / 90.0)) % 4 * 90


def probe_video(path: Path) -> VideoInfo:
    """Read a video's properties and prove it is readable end to end.

    Demuxes every packet (cheap: no decoding) so that truncated files are caught here, not
    halfway through detection, and decodes the first frame to learn the display rotation.
    Raises :class:`VideoError` with a one-line reason for anything unusable.
    """
    container = _open(path)
    try:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        time_base = float(stream.time_base) if stream.time_base else 0.0
        start_pts = stream.start_time or 0
        # MP4/MOV load their whole sample index at open; other containers report none.
        indexed = len(stream.index_entries or ())
        scan = _demux_all(container, stream)
    finally:
        container.close()
    if scan.frames == 0:
        raise VideoError("not a video: the video stream has no frames")
    if scan.first is None:
        raise VideoError("corrupt video: no frame could be decoded")
    # A file cut short after a front-loaded index (``faststart``) demuxes without error: FFmpeg
    # just stops at end of file. The index still lists the frames that are missing.
    if indexed and scan.frames < indexed:
        raise VideoError(
            f"truncated video: only {scan.frames} of the {indexed} frames it lists are in the file"
        )

    width, height = scan.first.width, scan.first.height
    rotation = _clockwise_rotation(scan.first.rotation)
    if rotation in (90, 270):
        width, height = height, width
    duration_s = 0.0
    if scan.last_end_pts is not None and time_base:
        duration_s = max(0.0, (scan.last_end_pts - start_pts) * time_base)
    if duration_s <= 0.0 and fps:
        duration_s = scan.frames / fps
    if not fps and duration_s:
        fps = scan.frames / duration_s
    return VideoInfo(
        duration_s=round(duration_s, 6),
        fps=round(fps, 6),
        width=width,
        height=height,
        codec=codec,
        rotation=rotation,
        frames=scan.frames,
    )


@dataclass
class _DemuxScan:
    """What one pass over every packet of the video stream found."""

    frames: int = 0
    last_end_pts: int | None = None
    first: av.VideoFrame | None = None


def _demux_all(container: av.container.InputContainer, stream: Any) -> _DemuxScan:
    """Count the packets, find the stream's end and decode the first frame; corrupt data
    raises :class:`VideoError`."""
    scan = _DemuxScan()
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                if scan.first is None:
                    scan.first = next(iter(packet.decode()), None)  # flush the decoder
                continue
            scan.frames += 1
            if packet.pts is not None:
                end = packet.pts + (packet.duration or 0)
                last = scan.last_end_pts
                scan.last_end_pts = end if last is None else max(last, end)
            if scan.first is None:
                scan.first = next(iter(packet.decode()), None)
    except av.error.FFmpegError as err:
        raise VideoError(f"corrupt or truncated video: {_ffmpeg_reason(err)}") from None
    return scan


def _timeline(stream: av.video.stream.VideoStream) -> tuple[float, float, int]:
    """(nominal fps, seconds per pts tick, pts of the first frame) of a video stream."""
    fps = float(stream.average_rate or stream.guessed_rate or 0.0) or 25.0
    return fps, float(stream.time_base), stream.start_time or 0


def sample_slot(timestamp_s: float, sample_fps: float) -> int:
    """The sampling slot of a timestamp: slot k covers [k / fps, (k + 1) / fps)."""
    return math.floor(timestamp_s * sample_fps + 1e-6)


class SampleGate:
    """Decides, frame by frame in presentation order, which frames a chunk keeps.

    Keeps the first frame of each slot within [start_s, end_s) and says when to stop. The
    same gate drives decoding and the chunk-coverage property tests, so they cannot drift.
    """

    KEEP, SKIP, STOP = "keep", "skip", "stop"

    def __init__(self, sample_fps: float, start_s: float = 0.0, end_s: float | None = None):
        if sample_fps <= 0:
            raise ValueError("sample_fps must be positive")
        self.sample_fps = sample_fps
        self.start_s = start_s
        self.end_s = end_s
        self._first_slot = sample_slot(start_s, sample_fps)
        self._end_slot = None if end_s is None else sample_slot(end_s, sample_fps)
        self._last_slot = self._first_slot - 1

    def decide(self, t: float) -> str:
        # Bounds are compared as slots, with the same rounding as the slot of each frame:
        # comparing times with a tolerance could drop a frame a hair before a boundary from
        # both chunks.
        slot = sample_slot(t, self.sample_fps)
        if slot < self._first_slot:
            return self.SKIP
        if self._end_slot is not None and slot >= self._end_slot:
            return self.STOP
        if slot <= self._last_slot:
            return self.SKIP
        self._last_slot = slot
        return self.KEEP


def sampled_positions(
    timestamps: Iterable[float], sample_fps: float, start_s: float = 0.0,
    end_s: float | None = None,
) -> list[int]:  # fmt: skip
    """Positions in ``timestamps`` (presentation order) that a chunk would analyse."""
    gate = SampleGate(sample_fps, start_s, end_s)
    kept = []
    for position, t in enumerate(timestamps):
        decision = gate.decide(t)
        if decision == SampleGate.STOP:
            break
        if decision == SampleGate.KEEP:
            kept.append(position)
    return kept


def iter_sampled_frames(
    path: Path,
    sample_fps: float,
    *,
    start_s: float = 0.0,
    end_s: float | None = None,
    max_side: int = DEFAULT_ANALYSIS_MAX_SIDE,
    keep_source: bool = False,
) -> Iterator[SampledFrame]:
    """Decode sequentially and yield the first frame of each sampling slot in [start_s, end_s).

    Slots are fixed on the video's own timeline (slot k starts at k / sample_fps), so splitting
    a video into chunks whose bounds are multiples of 1 / sample_fps analyses every sampled
    frame exactly once. ``frame_index`` is derived from the timestamp and the nominal frame
    rate so that it is the same whichever chunk a frame is decoded in. ``keep_source``: each
    frame also carries its decoded picture (``SampledFrame.source``).
    """
    gate = SampleGate(sample_fps, start_s, end_s)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps, time_base, origin = _timeline(stream)
        if fps / sample_fps >= NONREF_MIN_SLOT_FRAMES:
            # Frames nothing else refers to (B-frames) need not be decoded at all: each slot
            # still holds reference frames to sample. Seeking to a frame (read_frames) does
            # decode everything, so any frame can still be shown.
            stream.codec_context.skip_frame = "NONREF"
        if start_s > 0:
            # Land on the keyframe at or before start_s; frames before it are skipped below.
            container.seek(origin + int(start_s / time_base), stream=stream, backward=True)
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = (frame.pts - origin) * time_base
                decision = gate.decide(t)
                if decision == SampleGate.STOP:
                    break
                if decision == SampleGate.SKIP:
                    continue
                image, scale = frame_to_bgr(frame, max_side)
                yield SampledFrame(
                    frame_index=int(round(t * fps)),
                    timestamp_s=round(t, 6),
                    image=image,
                    scale=scale,
                    source=frame if keep_source else None,
                )
        except av.error.FFmpegError as err:
            raise VideoError(f"corrupt video: {_ffmpeg_reason(err)}") from None
    finally:
        container.close()


def frame_to_bgr(frame: av.VideoFrame, max_side: int | None = None) -> tuple[np.ndarray, float]:
    """Convert a decoded frame to display-oriented BGR, scaled so its longer side <= max_side.

    Scaling happens inside swscale during the colour conversion, which is far cheaper than
    converting at full size and resizing afterwards. Returns the image and the scale factor
    (display pixels per image pixel).
    """
    scale = 1.0
    width, height = frame.width, frame.height
    if max_side and max(width, height) > max_side:
        scale = max(width, height) / max_side
        width = max(2, int(round(width / scale)))
        height = max(2, int(round(height / scale)))
        image = frame.to_ndarray(width=width, height=height, format="bgr24")
    else:
        image = frame.to_ndarray(format="bgr24")
    quarter_turns = _clockwise_rotation(frame.rotation) // 90
    if quarter_turns:
        # np.rot90 turns counter-clockwise for positive k; we need clockwise turns.
        image = np.ascontiguousarray(np.rot90(image, k=-quarter_turns))
    return image, scale


def read_frames(path: Path, frame_indices: Iterable[int]) -> dict[int, np.ndarray]:
    """Decode just the given frames (by the index of :func:`iter_sampled_frames`) at full size.

    Seeks to the keyframe before each wanted frame and decodes forward to it, so only a GOP or
    so per selected frame is decoded rather than the whole video.
    """
    wanted = sorted(set(int(i) for i in frame_indices))
    found: dict[int, np.ndarray] = {}
    if not wanted:
        return found
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps, time_base, origin = _timeline(stream)
        for index in wanted:
            if index in found:
                continue
            target_t = index / fps
            container.seek(
                origin + max(0, int((target_t - 0.5 / fps) / time_base)),
                stream=stream,
                backward=True,
            )
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                current = int(round((frame.pts - origin) * time_base * fps))
                if current in wanted and current not in found:
                    found[current] = frame_to_bgr(frame, None)[0]
                if current >= index:
                    break
    except av.error.FFmpegError as err:
        raise VideoError(f"corrupt video: {_ffmpeg_reason(err)}") from None
    finally:
        container.close()
    missing = [i for i in wanted if i not in found]
    if missing:
        raise VideoError(f"could not decode frame(s) {missing[:5]} of the video")
    return found
