"""The manifest: the original endpoint's JSON response, extended (see DESIGN.md)."""

from __future__ import annotations

from typing import Any


def build_manifest(
    *,
    video_id: str,
    bucket: str,
    key: str,
    people: list[dict[str, Any]],
    video: dict[str, Any],
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """Assemble the manifest; ``people`` are result entries already ordered by person id."""
    return {
        "status": "success",
        "video_id": video_id,
        "source": {"bucket": bucket, "key": key},
        "people_found": len(people),
        "results": people,
        "video": {
            "duration_s": video["duration_s"],
            "fps": video["fps"],
            "width": video["width"],
            "height": video["height"],
        },
        "metrics": metrics,
    }
