"""What the UI shows for a ``selected_frames`` materialisation: people, previews, timeline."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from talent_assets.core.clustering import FaceArrays
from talent_assets.core.images import encode_jpeg
from talent_assets.core.plots import appearance_timeline_png
from talent_assets.core.selection import PersonSelection

PEOPLE_TABLE_SCHEMA = TableSchema(
    columns=[
        TableColumn("person", "int"),
        TableColumn("first_seen_s", "float"),
        TableColumn("last_seen_s", "float"),
        TableColumn("screen_time_s", "float"),
        TableColumn("score", "float"),
        TableColumn("frame", "string"),
    ]
)


def people_metadata(
    results: list[dict[str, Any]],
    sheet: np.ndarray,
    timeline_png: bytes,
    location: Callable[[str], str],
) -> dict[str, Any]:
    """The people as markdown and as a table, the contact sheet preview and the timeline.

    Frames are named by ``location`` (``s3://bucket/key`` or a local path), never by their
    presigned link: a SigV4 link carries the access key id, which must not reach metadata.
    """
    return {
        "people_found": len(results),
        "people": MetadataValue.md(people_markdown(results, location) if results else "no people"),
        # The markdown above opens in a dialog once it is long; a table renders inline.
        "people_table": MetadataValue.table(
            records=[
                TableRecord(
                    {
                        "person": r["person_id"],
                        "first_seen_s": r["first_seen"],
                        "last_seen_s": r["last_seen"],
                        "screen_time_s": r["screen_time"],
                        "score": r["score"],
                        "frame": r["s3_key"],
                    }
                )
                for r in results
            ],
            schema=PEOPLE_TABLE_SCHEMA,
        ),
        "contact_sheet": MetadataValue.md(preview_markdown(sheet)),
        "timeline": MetadataValue.md(
            f"![timeline](data:image/png;base64,{base64.b64encode(timeline_png).decode('ascii')})"
        ),
    }


def people_markdown(results: list[dict[str, Any]], location: Callable[[str], str]) -> str:
    """A markdown table of the people with each frame's location."""
    lines = [
        "| person | first seen (s) | last seen (s) | screen time (s) | score | frame |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        link = location(r["s3_key"])
        lines.append(
            f"| {r['person_id']} | {r['first_seen']:.1f} | {r['last_seen']:.1f} | "
            f"{r['screen_time']:.1f} | {r['score']:.1f} | [{r['s3_key']}]({link}) |"
        )
    return "\n".join(lines)


def preview_markdown(sheet: np.ndarray, width: int = 480, alt: str = "contact sheet") -> str:
    """The contact sheet (or another picture), scaled down, as an inline markdown image
    (Dagster shows it)."""
    scale = min(1.0, width / sheet.shape[1])
    small = cv2.resize(sheet, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    data = base64.b64encode(encode_jpeg(small, quality=80)).decode("ascii")
    return f"![{alt}](data:image/jpeg;base64,{data})"


def representative_metadata(entries: list[dict[str, Any]], strip: np.ndarray | None) -> dict:
    """The representative frames' strip (a preview, like the contact sheet's) and times."""
    if strip is None:
        return {"representative_frames": MetadataValue.md("no representative frames")}
    times = ", ".join(f"{e['timestamp']:.1f}" for e in entries)
    return {
        "representative_frames": MetadataValue.md(
            preview_markdown(strip, width=960, alt="representative frames")
        ),
        "representative_times_s": MetadataValue.text(times),
    }


def timeline_png(
    faces: FaceArrays,
    person_ids: np.ndarray,
    chosen: list[PersonSelection],
    duration_s: float,
    sample_fps: float,
) -> bytes:
    """Each person's appearances over the video, the selected frame starred."""
    return appearance_timeline_png(
        {s.person_id: faces.timestamp_s[person_ids == s.person_id] for s in chosen},
        duration_s,
        {s.person_id: float(faces.timestamp_s[s.face]) for s in chosen},
        1.0 / sample_fps,
    )
