"""A video's representative frames between the assets, and what ``selected_frames`` makes of
them: files, manifest entries, the contact strip. Pure (no I/O).

``face_detections`` gets the frames from the detector (chosen and JPEG-encoded in the
detection decode, ``modal_gpu.representative``) and stages them as one small Parquet object
(:func:`staged_table`, one row per frame, the JPEG bytes included; its schema metadata names
the run that chose them). ``selected_frames`` reads it back (:func:`frames_from_table`) and
publishes ``frame_<nn>.jpg`` with the person frames, atomically.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pyarrow as pa

from modal_gpu.representative import Candidate
from talent_assets.core.images import decode_image
from talent_assets.core.manifest import representative_frame_key
from talent_assets.core.talent_frames import JPEG, OutputLinks

RUN_ID_KEY = b"talent.run_id"

STAGED_SCHEMA = pa.schema(
    [
        pa.field("window", pa.int32(), nullable=False),
        pa.field("timestamp_s", pa.float64(), nullable=False),
        pa.field("frame_index", pa.int64(), nullable=False),
        pa.field("sharpness", pa.float32(), nullable=False),
        pa.field("brightness", pa.float32(), nullable=False),
        pa.field("contrast", pa.float32(), nullable=False),
        pa.field("blank", pa.bool_(), nullable=False),
        pa.field("jpeg", pa.binary(), nullable=False),
    ]
)


@dataclass(frozen=True)
class RepresentativeFrame:
    """One chosen frame as staged: where it is in the video, how sharp, its JPEG."""

    timestamp_s: float
    frame_index: int
    sharpness: float
    blank: bool
    jpeg: bytes


def staged_table(candidates: Iterable[Candidate], run_id: str) -> pa.Table:
    """The frames to stage, in time order, stamped with the run that chose them."""
    rows = [
        {name: getattr(c, name) for name in STAGED_SCHEMA.names}
        for c in sorted(candidates, key=lambda c: c.timestamp_s)
    ]
    table = pa.Table.from_pylist(rows, schema=STAGED_SCHEMA)
    return table.replace_schema_metadata({RUN_ID_KEY: run_id.encode()})


def staged_run_id(table: pa.Table) -> str | None:
    """The run that staged ``table`` (None if it says not)."""
    value = (table.schema.metadata or {}).get(RUN_ID_KEY)
    return value.decode() if value is not None else None


def frames_from_table(table: pa.Table) -> list[RepresentativeFrame]:
    """The staged frames, in time order."""
    rows = table.select(STAGED_SCHEMA.names).cast(STAGED_SCHEMA).to_pylist()
    return [
        RepresentativeFrame(
            timestamp_s=float(r["timestamp_s"]),
            frame_index=int(r["frame_index"]),
            sharpness=float(r["sharpness"]),
            blank=bool(r["blank"]),
            jpeg=bytes(r["jpeg"]),
        )
        for r in sorted(rows, key=lambda r: r["timestamp_s"])
    ]


@dataclass(frozen=True)
class RepresentativeOutputs:
    """What ``selected_frames`` publishes for the representative frames."""

    files: dict[str, tuple[bytes, str]]  # frame_<nn>.jpg -> (JPEG, content type)
    entries: list[dict[str, Any]]  # the manifest's "representative_frames"
    strip: np.ndarray | None  # the contact strip (None without frames)


def representative_outputs(
    folder: str, frames: list[RepresentativeFrame], links: OutputLinks
) -> RepresentativeOutputs:
    """Files ``frame_00.jpg`` .. (the encoded frames as they are: no second compression),
    manifest entries named like a person's frame (``s3_key``, ``s3_url``, ``path`` with a
    local output) and the strip."""
    files: dict[str, tuple[bytes, str]] = {}
    entries: list[dict[str, Any]] = []
    for index, frame in enumerate(frames):
        key = representative_frame_key(folder, index)
        files[key] = (frame.jpeg, JPEG)
        entry: dict[str, Any] = {
            "index": index,
            "timestamp": round(frame.timestamp_s, 3),
            "s3_key": key,
            "s3_url": links.url(key),
        }
        if links.local_path is not None:
            entry["path"] = links.local_path(key)
        entry["sharpness"] = round(frame.sharpness, 2)
        entries.append(entry)
    images = [decode_image(f.jpeg) for f in frames]
    strip = (
        contact_strip([i for i in images if i is not None], [strip_label(f) for f in frames])
        if frames
        else None
    )
    return RepresentativeOutputs(files, entries, strip)


def strip_label(frame: RepresentativeFrame) -> str:
    return f"{frame.timestamp_s:.1f}s"


def contact_strip(images: list[np.ndarray], labels: list[str], height: int = 120) -> np.ndarray:
    """The frames side by side at one height (native aspect), each labelled with its time."""
    gap, label_h = 4, 22
    tiles = [
        cv2.resize(image, (max(1, round(image.shape[1] * height / image.shape[0])), height),
                   interpolation=cv2.INTER_AREA)
        for image in images
    ]  # fmt: skip
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) + 1)
    strip = np.full((height + label_h + 2 * gap, max(width, 1), 3), 24, dtype=np.uint8)
    x = gap
    for tile, label in zip(tiles, labels, strict=True):
        strip[gap : gap + height, x : x + tile.shape[1]] = tile
        cv2.putText(strip, label, (x + 4, gap + height + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (235, 235, 235), 1, cv2.LINE_AA)  # fmt: skip
        x += tile.shape[1] + gap
    return strip
