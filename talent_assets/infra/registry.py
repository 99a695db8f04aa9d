"""Reading and writing the talent registry: members from the tables in, talents out.

:func:`update_registry` is the registry's one writer path (the ``talent_registry`` asset, the
CLI and the API all call it): under the lease of :mod:`talent_assets.infra.registry_lock` it
reads every video's people (``selected_frames`` exemplars, ``videos`` times), the enrolled
photos and the curation events, groups them (:mod:`talent_assets.core.talent_registry`),
rewrites ``talents`` and ``talent_appearances``, appends what changed to ``talent_events``
and puts ``talent_id`` / ``talent_name`` into each affected manifest.

Cost: one read of each video's ``selected_frames`` and ``videos`` partitions per update
(parallel GETs) and a pass over all exemplars; fine for thousands of videos, see
docs/design.md ("Talent registry") for when to change it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from talent_assets.core.manifest import MANIFEST_NAME
from talent_assets.core.objects import ObjectChangedError, ObjectNotFoundError
from talent_assets.core.tables import REGISTRY_SCHEMAS
from talent_assets.core.talent_matching import Member, best_link_similarity
from talent_assets.core.talent_registry import (
    Curation,
    Grouping,
    curation_from_events,
    group_into_talents,
    talent_exemplars,
)
from talent_assets.infra.registry_lock import registry_lease
from talent_assets.infra.storage import ObjectStore
from talent_assets.infra.warehouse import Warehouse

READ_THREADS = 8


@dataclass(frozen=True)
class PersonRow:
    """One person of one video as the registry sees it (from ``selected_frames``)."""

    member: Member
    screen_time_s: float
    timestamp_s: float
    score: float
    s3_key: str
    face_s3_key: str


@dataclass(frozen=True)
class RegistryState:
    """What an update wrote: the two tables, the new events, manifests touched."""

    talents: pa.Table
    appearances: pa.Table
    events: list[dict[str, Any]]
    manifests_updated: int
    videos: int
    read_s: float
    match_s: float
    write_s: float


def load_people(warehouse: Warehouse, previous: dict[tuple[str, int], str]) -> list[PersonRow]:
    """Every person with exemplars in every video, in (video, person) order."""
    video_ids = warehouse.video_ids("selected_frames")
    with ThreadPoolExecutor(READ_THREADS) as pool:
        tables = list(pool.map(lambda v: _video_people(warehouse, v, previous), video_ids))
    return [row for rows in tables for row in rows]


def _video_people(
    warehouse: Warehouse, video_id: str, previous: dict[tuple[str, int], str]
) -> list[PersonRow]:
    frames = warehouse.read("selected_frames", video_id)
    video = warehouse.read("videos", video_id)
    if frames is None or video is None or video.num_rows == 0:
        return []
    seen_at = video["ingested_at"][0].as_py()
    rows = []
    for r in frames.to_pylist():
        if not r["exemplars"]:
            continue  # written before the registry existed: matched after a re-run
        member = Member(
            video_id=video_id,
            person_id=int(r["person_id"]),
            exemplars=np.asarray(r["exemplars"], np.float32),
            seen_at=seen_at,
            talent_id=previous.get((video_id, int(r["person_id"]))),
        )
        rows.append(
            PersonRow(
                member,
                r["screen_time_s"],
                r["timestamp_s"],
                r["score"],
                r["s3_key"],
                r["face_s3_key"],
            )
        )
    return rows


def load_enrolments(warehouse: Warehouse) -> list[Member]:
    """One member per enrolled talent: its photos' embeddings."""
    photos = warehouse.read_whole("talent_photos").to_pylist()
    by_talent: dict[str, list[dict[str, Any]]] = {}
    for photo in photos:
        by_talent.setdefault(photo["talent_id"], []).append(photo)
    return [
        Member(
            video_id=f"enrol:{talent}",
            person_id=-1,
            exemplars=np.asarray([p["embedding"] for p in rows], np.float32),
            seen_at=min(p["enrolled_at"] for p in rows),
            talent_id=talent,
        )
        for talent, rows in sorted(by_talent.items())
    ]


def update_registry(
    warehouse: Warehouse, outputs: ObjectStore, threshold: float, now: datetime | None = None
) -> RegistryState:
    """Recompute the registry from the tables and publish it (see the module doc)."""
    with registry_lease(warehouse.store, warehouse.lease_key()) as lease:
        return recompute_registry(
            warehouse, outputs, threshold, now or datetime.now(UTC), check=lease.check
        )


def recompute_registry(
    warehouse: Warehouse,
    outputs: ObjectStore,
    threshold: float,
    now: datetime,
    *,
    check: Callable[[], None] = lambda: None,
) -> RegistryState:
    """:func:`update_registry` without taking the lease, for callers that hold it (``check``
    raises if they no longer do; it runs before each write)."""
    started = time.perf_counter()
    old_talents = warehouse.read_whole("talents").to_pylist()
    old_appearances = warehouse.read_whole("talent_appearances").to_pylist()
    previous = {(a["video_id"], a["person_id"]): a["talent_id"] for a in old_appearances}
    curation = curation_from_events(warehouse.read_events())
    for talent in old_talents:
        # The table knows when a talent was made; its first event (a naming, say) may be
        # much later and must not make it look younger when two talents merge.
        curation.created[talent["talent_id"]] = talent["created_at"]
    people = load_people(warehouse, previous)
    enrolments = load_enrolments(warehouse)
    read_s = time.perf_counter() - started
    members = [p.member for p in people] + enrolments
    grouping = group_into_talents(members, curation, threshold, now)
    talents, appearances = registry_tables(people, enrolments, grouping, curation, old_talents, now)
    match_s = time.perf_counter() - started - read_s
    check()
    warehouse.write_whole("talent_appearances", appearances)
    warehouse.write_whole("talents", talents)
    warehouse.append_events(grouping.events)
    updated = publish_talents_to_manifests(outputs, appearances, talents, check)
    return RegistryState(
        talents,
        appearances,
        grouping.events,
        updated,
        len({p.member.video_id for p in people}),
        read_s,
        match_s,
        time.perf_counter() - started - read_s - match_s,
    )


def registry_tables(
    people: Sequence[PersonRow],
    enrolments: Sequence[Member],
    grouping: Grouping,
    curation: Curation,
    old_talents: list[dict[str, Any]],
    now: datetime,
) -> tuple[pa.Table, pa.Table]:
    """The ``talents`` and ``talent_appearances`` tables of a grouping."""
    members = [p.member for p in people] + list(enrolments)
    groups: dict[str, list[int]] = {}
    for i, talent in enumerate(grouping.talent_ids):
        groups.setdefault(talent, []).append(i)
    appearances = []
    talents = []
    old = {t["talent_id"]: t for t in old_talents}
    for talent, group in sorted(groups.items()):
        similarity = best_link_similarity(group, grouping.links)
        rows = [people[i] for i in group if i < len(people)]
        appearances += [
            _appearance(talent, people[i], similarity.get(i)) for i in group if i < len(people)
        ]
        talents.append(_talent_row(talent, members, group, rows, curation, old.get(talent), now))
    return (
        pa.Table.from_pylist(talents, schema=REGISTRY_SCHEMAS["talents"]),
        pa.Table.from_pylist(appearances, schema=REGISTRY_SCHEMAS["talent_appearances"]),
    )


def _appearance(talent: str, person: PersonRow, similarity: float | None) -> dict[str, Any]:
    return {
        "talent_id": talent,
        "video_id": person.member.video_id,
        "person_id": person.member.person_id,
        "similarity": None if similarity is None else round(similarity, 4),
        "screen_time_s": person.screen_time_s,
        "timestamp_s": person.timestamp_s,
        "score": person.score,
        "s3_key": person.s3_key,
        "face_s3_key": person.face_s3_key,
        "ingested_at": person.member.seen_at,
    }


def _talent_row(
    talent: str,
    members: Sequence[Member],
    group: list[int],
    rows: list[PersonRow],
    curation: Curation,
    old: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    best = max(rows, key=lambda r: (r.score, r.member.key), default=None)
    seen = [r.member.seen_at for r in rows]
    row = {
        "talent_id": talent,
        "name": curation.names.get(talent),
        "exemplars": talent_exemplars(members, group).tolist(),
        "best_frame_key": best.s3_key if best else None,
        "best_face_key": best.face_s3_key if best else None,
        "videos": sorted({r.member.video_id for r in rows}),
        "people": len(rows),
        "screen_time_s": round(sum(r.screen_time_s for r in rows), 3),
        "first_seen": min(seen, default=None),
        "last_seen": max(seen, default=None),
        "enrolled": any(members[i].enrolled for i in group),
        "created_at": curation.created.get(talent) or min(seen, default=now),
        "updated_at": now,
    }
    if old is not None and all(old[k] == row[k] for k in row if k not in ("updated_at",)):
        row["updated_at"] = old["updated_at"]  # nothing changed: keep its time
    return row


def publish_talents_to_manifests(
    outputs: ObjectStore,
    appearances: pa.Table,
    talents: pa.Table,
    check: Callable[[], None] = lambda: None,
) -> int:
    """Put ``talent_id`` and ``talent_name`` into each manifest whose people have them.

    A manifest is rewritten only when a value differs, with a conditional write: if the video
    republished meanwhile, its own next registry update fills the new manifest instead.
    """
    names = dict(zip(talents["talent_id"].to_pylist(), talents["name"].to_pylist(), strict=True))
    by_folder: dict[str, dict[int, str]] = {}
    for a in appearances.to_pylist():
        folder = a["s3_key"].rsplit("/", 1)[0] + "/"
        by_folder.setdefault(folder, {})[a["person_id"]] = a["talent_id"]
    updated = 0
    for folder, talent_of in sorted(by_folder.items()):
        check()
        updated += _update_manifest(outputs, folder + MANIFEST_NAME, talent_of, names)
    return updated


def _update_manifest(
    outputs: ObjectStore, key: str, talent_of: dict[int, str], names: dict[str, str | None]
) -> int:
    try:
        etag = outputs.head(key).etag
        manifest = json.loads(outputs.get_bytes(key))
    except (ObjectNotFoundError, ValueError):
        return 0
    changed = False
    for result in manifest.get("results", []):
        talent = talent_of.get(result["person_id"])
        want = {"talent_id": talent, "talent_name": names.get(talent) if talent else None}
        if any(result.get(k, "missing") != v for k, v in want.items()):
            result.update(want)
            changed = True
    if not changed:
        return 0
    data = json.dumps(manifest, indent=2).encode()
    try:
        outputs.put_bytes_if(key, data, "application/json", etag=etag)
    except ObjectChangedError:
        return 0
    return 1
