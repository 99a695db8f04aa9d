"""``talent_registry``: every video's people matched to talents that persist across videos.

Not partitioned: it depends on ``selected_frames`` across all video partitions and is
recomputed as a whole (``infra/registry.update_registry``, under the registry's lease). It
runs after each successful video: in the stack a run status sensor requests it
(``defs/sensors.py``), the CLI and API run it right after their runs (``apps/runner``).
"""

import numpy as np
from dagster import (
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from talent_assets.core.images import contact_sheet, decode_image
from talent_assets.core.objects import ObjectNotFoundError
from talent_assets.core.talent_matching import match_threshold
from talent_assets.defs.assets.people_metadata import preview_markdown
from talent_assets.defs.assets.selected_frames import selected_frames
from talent_assets.defs.resources import FaceDetector, TalentStorage
from talent_assets.infra.registry import RegistryState, update_registry
from talent_assets.infra.storage import ObjectStore

#: One registry update at a time in Dagster (the stack's instance limits every pool to 1).
REGISTRY_POOL = "talent_registry"
GALLERY_LIMIT = 48


@asset(
    deps=[selected_frames],
    group_name="talent",
    kinds={"parquet", "s3"},
    pool=REGISTRY_POOL,
    description=(
        "Talents across videos: each video's people matched by their exemplar faces to "
        "persistent talent ids (T + 6 characters), named by enrolment or by hand. Writes the "
        "talents and talent_appearances tables, appends to talent_events, and puts "
        "talent_id / talent_name into the manifests."
    ),
)
def talent_registry(
    context: AssetExecutionContext, storage: TalentStorage, detector: FaceDetector
) -> MaterializeResult:
    """Recompute the registry from the tables and publish it."""
    threshold = match_threshold(detector.model_pack)
    state = update_registry(storage.tables(), storage.output_store(), threshold)
    for event in state.events:
        context.log.info(f"{event['event']}: {event['other_talent_id']} -> {event['talent_id']}")
    return MaterializeResult(metadata=registry_metadata(state, storage.output_store(), threshold))


def registry_metadata(state: RegistryState, outputs: ObjectStore, threshold: float) -> dict:
    """Counts, timings, the automatic merges and splits, and a gallery of the talents."""
    talents = state.talents.to_pylist()
    named = sum(1 for t in talents if t["name"])
    return {
        "talents": len(talents),
        "named_talents": named,
        "people": state.appearances.num_rows,
        "videos": state.videos,
        "merges": sum(1 for e in state.events if e["event"] == "merge"),
        "splits": sum(1 for e in state.events if e["event"] == "split"),
        "manifests_updated": state.manifests_updated,
        "match_threshold": threshold,
        "read_s": round(state.read_s, 3),
        "match_s": round(state.match_s, 3),
        "write_s": round(state.write_s, 3),
        "gallery": MetadataValue.md(preview_markdown(talent_gallery(talents, outputs), 720)),
    }


def talent_gallery(talents: list[dict], outputs: ObjectStore) -> np.ndarray:
    """The talents' best face crops side by side, named (or their ids) underneath."""
    ranked = sorted(talents, key=lambda t: (-t["screen_time_s"], t["talent_id"]))
    crops, labels = [], []
    for talent in ranked[:GALLERY_LIMIT]:
        crop = _face(outputs, talent["best_face_key"])
        if crop is None:
            continue  # enrolled from photos only, or its crop is gone
        crops.append(crop)
        labels.append(f"{talent['name'] or talent['talent_id']}  ({len(talent['videos'])})")
    return contact_sheet(crops, labels)


def _face(outputs: ObjectStore, key: str | None) -> np.ndarray | None:
    if not key:
        return None
    try:
        return decode_image(outputs.get_bytes(key))
    except ObjectNotFoundError:
        return None
