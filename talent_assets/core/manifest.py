"""The manifest: the original endpoint's JSON response, extended (docs/design.md).

One home for its shape (:func:`person_entry`, :func:`build_manifest`), for where a video's
outputs live (:func:`output_folder`, :func:`manifest_key`, ...), and for its plain-text
rendering (:func:`format_people`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from talent_assets.core.video_id import output_stem

MANIFEST_NAME = "manifest.json"
CONTACT_SHEET_NAME = "contact_sheet.jpg"


def output_folder(output_prefix: str, key: str, video_prefix: str) -> str:
    """``<output prefix><video stem>/``: the folder of one video's frames and manifest."""
    return f"{output_prefix}{output_stem(key, video_prefix)}/"


def manifest_key(output_prefix: str, key: str, video_prefix: str) -> str:
    """Where the manifest of the video at ``key`` is published."""
    return output_folder(output_prefix, key, video_prefix) + MANIFEST_NAME


def person_frame_key(folder: str, person_id: int) -> str:
    """The full frame of one person: ``<folder>person_<n>.jpg``."""
    return f"{folder}person_{person_id}.jpg"


def person_face_key(folder: str, person_id: int) -> str:
    """The face crop of one person: ``<folder>person_<n>_face.jpg``."""
    return f"{folder}person_{person_id}_face.jpg"


def representative_frame_key(folder: str, index: int) -> str:
    """Representative frame ``index`` (0..N-1) of a video: ``<folder>frame_<nn>.jpg``."""
    return f"{folder}frame_{index:02d}.jpg"


def person_entry(
    *,
    person_id: int,
    timestamp_s: float,
    score: float,
    bbox: np.ndarray,
    first_seen_s: float,
    last_seen_s: float,
    screen_time_s: float,
    **extra: Any,
) -> dict[str, Any]:
    """One ``results`` entry, rounded as the contract shows it; ``extra`` keys (``s3_key``,
    ``s3_url``, ``face_s3_key``, ``frame_index``, ``faces``, ...) go in their given order
    after ``person_id``, before the timings."""
    return {
        "person_id": person_id,
        **extra,
        "timestamp": round(float(timestamp_s), 3),
        "score": score,
        "bbox": [round(float(v), 1) for v in bbox],
        "first_seen": round(first_seen_s, 3),
        "last_seen": round(last_seen_s, 3),
        "screen_time": screen_time_s,
    }


def build_manifest(
    *,
    video_id: str,
    bucket: str,
    key: str,
    people: list[dict[str, Any]],
    video: dict[str, Any],
    metrics: dict[str, Any],
    representative_frames: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Assemble the manifest; ``people`` are result entries already ordered by person id.
    ``representative_frames`` (entries in time order), when given, follow ``results``."""
    extra: dict[str, Any] = {}
    if representative_frames is not None:
        extra["representative_frames"] = representative_frames
    return {
        "status": "success",
        "video_id": video_id,
        "source": {"bucket": bucket, "key": key},
        "people_found": len(people),
        "results": people,
        **extra,
        "video": {
            "duration_s": video["duration_s"],
            "fps": video["fps"],
            "width": video["width"],
            "height": video["height"],
        },
        "metrics": metrics,
    }


def format_people(manifest: dict[str, Any]) -> str:
    """A plain-text table of the people in a manifest (what ``talent process`` prints)."""
    source = manifest["source"]
    lines = [
        f"{source['key']}: {manifest['people_found']} "
        f"{'person' if manifest['people_found'] == 1 else 'people'} "
        f"({manifest['video']['duration_s']:.1f} s video, "
        f"{manifest['metrics']['wall_s']:.1f} s to process)"
    ]
    if manifest["results"]:
        lines.append(f"  {'person':>6}  {'time (s)':>8}  {'score':>5}  {'screen (s)':>10}  frame")
    for r in manifest["results"]:
        where = r.get("path") or f"s3://{source['bucket']}/{r['s3_key']}"
        lines.append(
            f"  {r['person_id']:>6}  {r['timestamp']:>8.1f}  {r['score']:>5.1f}  "
            f"{r['screen_time']:>10.1f}  {where}"
        )
    return "\n".join(lines)
