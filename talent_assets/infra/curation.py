"""What people do to the registry: enrol from photos, name, merge, forget; and read it.

Every change takes the registry's lease, appends its event to ``talent_events`` (who, when,
never biometric data) and recomputes the registry, so names and merges reach the tables and
every affected manifest at once. ``talent`` commands and the HTTP API call these.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from talent_assets.core.talent_matching import match_threshold, member_similarity
from talent_assets.core.talent_registry import (
    curation_from_events,
    registry_event,
    talent_code,
)
from talent_assets.infra.enrolment import PhotoFace, check_one_person
from talent_assets.infra.erasure import VideoErasure, erase_people
from talent_assets.infra.registry import RegistryState, recompute_registry
from talent_assets.infra.registry_lock import RegistryLease, registry_lease
from talent_assets.infra.s3 import bucket_store
from talent_assets.infra.settings import Settings
from talent_assets.infra.storage import LocalObjectStore, ObjectStore
from talent_assets.infra.warehouse import Warehouse, open_warehouse

MAX_NAME_LENGTH = 200


class CurationError(ValueError):
    """A curation request that cannot be done; ``kind`` maps to an HTTP status."""

    def __init__(self, message: str, kind: str = "bad_request"):
        super().__init__(message)
        self.kind = kind  # bad_request, not_found, conflict


@dataclass(frozen=True)
class Registry:
    """Where the registry lives and how it matches: the warehouse, the outputs, the cut."""

    warehouse: Warehouse
    outputs: ObjectStore
    threshold: float

    def recompute(self, lease: RegistryLease) -> RegistryState:
        """Recompute and publish the registry now, under ``lease`` (held by the caller)."""
        return recompute_registry(
            self.warehouse, self.outputs, self.threshold, datetime.now(UTC), check=lease.check
        )

    def lease(self) -> AbstractContextManager[RegistryLease]:
        """The registry's writer lease (see ``infra/registry_lock``)."""
        return registry_lease(self.warehouse.store, self.warehouse.lease_key())

    @classmethod
    def for_settings(cls, settings: Settings, out: Path | None = None) -> Registry:
        """The configured bucket's registry, or the one of a ``--out DIR`` folder (the layout
        ``talent process --out DIR`` writes)."""
        threshold = match_threshold(settings.model_pack)
        if out is not None:
            store = LocalObjectStore(out.resolve())
            return cls(Warehouse(store, "warehouse/"), store, threshold)
        outputs = bucket_store(settings)
        warehouse = open_warehouse(
            settings.warehouse,
            settings.bucket,
            lambda: outputs,
        )
        return cls(warehouse, outputs, threshold)


def clean_name(name: str) -> str:
    """A talent's name: one line, trimmed, not empty, not too long."""
    name = " ".join(str(name).split())
    if not name:
        raise CurationError("a talent's name cannot be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise CurationError(f"a talent's name is at most {MAX_NAME_LENGTH} characters")
    return name


def list_talents(registry: Registry) -> list[dict[str, Any]]:
    """Every talent: id, name, videos, people, screen time, seen; most screen time first."""
    rows = registry.warehouse.read_whole("talents").drop_columns(["exemplars"]).to_pylist()
    return sorted(rows, key=lambda t: (-t["screen_time_s"], t["talent_id"]))


def talent_summary(talent: dict[str, Any]) -> dict[str, Any]:
    """A talent as JSON (``talent talents --json`` and ``GET /talents``)."""
    return {
        "talent_id": talent["talent_id"],
        "name": talent["name"],
        "videos": talent["videos"],
        "people": talent["people"],
        "screen_time_s": talent["screen_time_s"],
        "first_seen": _iso(talent["first_seen"]),
        "last_seen": _iso(talent["last_seen"]),
        "enrolled": talent["enrolled"],
        "best_frame_key": talent["best_frame_key"],
        "best_face_key": talent["best_face_key"],
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def talent_detail(registry: Registry, talent_id: str) -> dict[str, Any]:
    """One talent with its appearances (videos, frames, times); follows merged ids."""
    talent_id = _existing(registry, talent_id)
    talents = registry.warehouse.read_whole("talents").drop_columns(["exemplars"]).to_pylist()
    talent = next(t for t in talents if t["talent_id"] == talent_id)
    appearances = [
        a
        for a in registry.warehouse.read_whole("talent_appearances").to_pylist()
        if a["talent_id"] == talent_id
    ]
    return {
        **talent,
        "appearances": sorted(appearances, key=lambda a: (a["ingested_at"], a["video_id"])),
    }


def enrol_talent(registry: Registry, name: str, faces: list[PhotoFace], actor: str) -> str:
    """Enrol ``name`` from photo faces: the talent they match is named, else a new one is
    made (and later videos of that person join it). Returns the talent id."""
    name = clean_name(name)
    if not faces:
        raise CurationError("enrolment needs at least one photo")
    check_one_person(faces, registry.threshold)
    now = datetime.now(UTC)
    with registry.lease() as lease:
        talents = registry.warehouse.read_whole("talents").to_pylist()
        exemplars = np.stack([f.embedding for f in faces])
        talent_id = _matching_talent(talents, exemplars, registry.threshold)
        _refuse_renaming_by_enrolment(talents, talent_id, name)
        existing = {t["talent_id"] for t in talents}
        if talent_id is None:
            events = registry.warehouse.read_events()
            taken = set(curation_from_events(events).created) | existing
            talent_id = talent_code(f"enrol/{name}/{now.isoformat()}", taken)
        _add_photos(registry.warehouse, talent_id, faces, now)
        detail = {"photos": len(faces), "named_existing": talent_id in existing}
        event = registry_event("enrol", talent_id, now, actor=actor, name=name, detail=detail)
        registry.warehouse.append_events([event])
        registry.recompute(lease)
    return talent_id


def _refuse_renaming_by_enrolment(
    talents: list[dict[str, Any]], talent_id: str | None, name: str
) -> None:
    """Photos that match a talent named otherwise are a mistake or a rename: ask for
    ``talent name`` instead of renaming silently."""
    current = next((t["name"] for t in talents if t["talent_id"] == talent_id), None)
    if current and current != name:
        raise CurationError(
            f"the photos show {talent_id}, already named {current!r}; rename it with "
            f"`talent name {talent_id} ...`",
            "conflict",
        )


def name_talent(registry: Registry, talent_id: str, name: str, actor: str) -> str:
    """Name a talent (a merged id names the talent it merged into); returns its id."""
    name = clean_name(name)
    now = datetime.now(UTC)
    with registry.lease() as lease:
        talent_id = _existing(registry, talent_id)
        event = registry_event("name", talent_id, now, actor=actor, name=name)
        registry.warehouse.append_events([event])
        registry.recompute(lease)
    return talent_id


def merge_talents(registry: Registry, keep: str, other: str, actor: str) -> str:
    """Merge ``other`` into ``keep`` for good (its people and name go to ``keep``)."""
    now = datetime.now(UTC)
    with registry.lease() as lease:
        keep, other = _existing(registry, keep), _existing(registry, other)
        if keep == other:
            raise CurationError(f"{keep} and {other} are already one talent", "conflict")
        appearances = registry.warehouse.read_whole("talent_appearances").to_pylist()
        videos = {
            i: {a["video_id"] for a in appearances if a["talent_id"] == i} for i in (keep, other)
        }
        shared = videos[keep] & videos[other]
        if shared:
            raise CurationError(
                f"{keep} and {other} are on screen together in {sorted(shared)[0]}: two people",
                "conflict",
            )
        members = sorted(
            [a["video_id"], a["person_id"]] for a in appearances if a["talent_id"] in (keep, other)
        )
        event = registry_event(
            "merge", keep, now, actor=actor, other_talent_id=other, detail={"members": members}
        )
        # The other's enrolment photos join the kept talent (two enrolments never share one).
        _move_photos(registry.warehouse, _ids_of_talent(registry.warehouse, other), keep)
        registry.warehouse.append_events([event])
        registry.recompute(lease)
    return keep


def forget_talent(registry: Registry, talent_id: str, actor: str) -> tuple[str, list[VideoErasure]]:
    """Erase a talent everywhere (see docs/design.md, "Erasure"); returns its id and what
    went. A forget that stopped half-way may be run again with the same id."""
    now = datetime.now(UTC)
    with registry.lease() as lease:
        # Up to date first: a video whose own update is still queued is not missed.
        registry.recompute(lease)
        talent_id = _forgettable(registry, talent_id)
        talents = registry.warehouse.read_whole("talents").to_pylist()
        exemplars = np.asarray(
            next((t["exemplars"] for t in talents if t["talent_id"] == talent_id), []),
            np.float32,
        ).reshape(-1, 512)
        erased = _erase_appearances(registry, talent_id, exemplars, lease)
        ids = _ids_of_talent(registry.warehouse, talent_id)
        lease.check()
        _drop_photos(registry.warehouse, ids)
        _redact_names(registry.warehouse, ids)
        detail = {"videos": len(erased), "people": sum(e.people for e in erased)}
        event = registry_event("forget", talent_id, now, actor=actor, detail=detail)
        registry.warehouse.append_events([event])
        registry.recompute(lease)
    return talent_id, erased


def _forgettable(registry: Registry, talent_id: str) -> str:
    """A live talent, or one the events know and no forget has finished (its people may
    already be gone after a forget that stopped half-way)."""
    try:
        return _existing(registry, talent_id)
    except CurationError:
        curation = curation_from_events(registry.warehouse.read_events())
        resolved = curation.resolve(str(talent_id).strip())
        if resolved in curation.created and resolved not in curation.forgotten:
            return str(resolved)
        raise


def _erase_appearances(
    registry: Registry, talent_id: str, exemplars: np.ndarray, lease: RegistryLease
) -> list[VideoErasure]:
    appearances = registry.warehouse.read_whole("talent_appearances").to_pylist()
    people: dict[str, set[int]] = {}
    for a in appearances:
        if a["talent_id"] == talent_id:
            people.setdefault(a["video_id"], set()).add(a["person_id"])
    erased = []
    for video, ids in sorted(people.items()):
        lease.check()
        erased.append(erase_people(registry.warehouse, registry.outputs, video, ids, exemplars))
    return erased


def _existing(registry: Registry, talent_id: str) -> str:
    """The live id for ``talent_id`` (following merges); :class:`CurationError` if none."""
    curation = curation_from_events(registry.warehouse.read_events())
    resolved = curation.resolve(str(talent_id).strip())
    if resolved is None or resolved not in _talent_ids(registry):
        raise CurationError(f"no talent {talent_id}", "not_found")
    return resolved


def _talent_ids(registry: Registry) -> set[str]:
    return set(registry.warehouse.read_whole("talents")["talent_id"].to_pylist())


def _matching_talent(
    talents: list[dict[str, Any]], exemplars: np.ndarray, threshold: float
) -> str | None:
    """The existing talent the photos match best, if any reaches the threshold."""
    best, best_id = threshold, None
    for talent in talents:
        similarity = member_similarity(exemplars, np.asarray(talent["exemplars"], np.float32))
        if similarity >= best:
            best, best_id = similarity, talent["talent_id"]
    return best_id


def _add_photos(
    warehouse: Warehouse, talent_id: str, faces: list[PhotoFace], now: datetime
) -> None:
    photos = warehouse.read_whole("talent_photos")
    new = pa.Table.from_pylist(
        [
            {
                "talent_id": talent_id,
                "photo": f.photo,
                "embedding": f.embedding.tolist(),
                "face_quality": f.face_quality,
                "enrolled_at": now,
            }
            for f in faces
        ],
        schema=photos.schema,
    )
    warehouse.write_whole("talent_photos", pa.concat_tables([photos, new]))


def _move_photos(warehouse: Warehouse, ids: set[str], to: str) -> None:
    photos = warehouse.read_whole("talent_photos")
    moved = [to if t in ids else t for t in photos["talent_id"].to_pylist()]
    warehouse.write_whole("talent_photos", photos.set_column(0, "talent_id", pa.array(moved)))


def _drop_photos(warehouse: Warehouse, ids: set[str]) -> None:
    photos = warehouse.read_whole("talent_photos")
    keep = [t not in ids for t in photos["talent_id"].to_pylist()]
    warehouse.write_whole("talent_photos", photos.filter(pa.array(keep, pa.bool_())))


def _ids_of_talent(warehouse: Warehouse, talent_id: str) -> set[str]:
    """``talent_id`` and every id that was merged into it."""
    curation = curation_from_events(warehouse.read_events())
    return {t for t in curation.created if curation.resolve(t) == talent_id} | {talent_id}


def _redact_names(warehouse: Warehouse, ids: set[str]) -> None:
    """Earlier events keep their facts (who did what, when) but lose the forgotten name, also
    under the ids that were merged into this talent."""
    for event in warehouse.read_events():
        if ids & {event["talent_id"], event["other_talent_id"]} and event["name"]:
            warehouse.rewrite_event({**event, "name": None})
