"""The talent registry as a pure function: members in, talents, appearances and events out.

:func:`build_registry` groups members (:mod:`talent_assets.core.talent_matching`), keeps
talent ids stable across updates and records what changed. Curation comes from the
append-only ``talent_events`` (:func:`curation_from_events`): names, merges by hand (which
bind their members for good) and forgotten ids (never reused).

Ids: a group keeps the id most of its members had before; when a video bridges two talents,
the older one keeps its id and the other is recorded as merged into it (actor
``registry``); when a talent's members fall into two groups, the larger part keeps the id and
the rest gets a new one (``split``). A new id is ``T`` + 6 base-32 characters of a hash of
the group's founder (its earliest member), so a rebuild from the tables alone gives the same
ids.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from talent_assets.core.talent_matching import (
    EXEMPLARS_PER_TALENT,
    Link,
    Member,
    choose_exemplars,
    group_members,
    member_links,
)

REGISTRY_ACTOR = "registry"
EVENT_KINDS = ("enrol", "name", "merge", "split", "forget")


@dataclass
class Curation:
    """What people decided, replayed from ``talent_events`` in time order."""

    names: dict[str, str | None] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # merged id -> surviving id
    forgotten: set[str] = field(default_factory=set)
    bound: list[list[tuple[str, int]]] = field(default_factory=list)  # merged by hand
    created: dict[str, datetime] = field(default_factory=dict)

    def resolve(self, talent_id: str | None) -> str | None:
        """Follow merges to the id that survives."""
        seen = set()
        while talent_id in self.aliases and talent_id not in seen:
            seen.add(talent_id)
            talent_id = self.aliases[talent_id]
        return talent_id

    def retired(self) -> set[str]:
        """Ids never to hand out again."""
        return set(self.aliases) | self.forgotten


def curation_from_events(events: Sequence[dict[str, Any]]) -> Curation:
    """Replay events (any order; sorted by time here) into a :class:`Curation`."""
    curation = Curation()
    # Same time: names before merges, so a merge carries the name given with it.
    order = {kind: i for i, kind in enumerate(EVENT_KINDS)}
    for event in sorted(
        events, key=lambda e: (e["occurred_at"], order.get(e["event"], 9), e["event_id"])
    ):
        kind, talent = event["event"], event["talent_id"]
        detail = json.loads(event.get("detail") or "{}")
        curation.created.setdefault(talent, event["occurred_at"])
        if event.get("other_talent_id"):
            curation.created.setdefault(event["other_talent_id"], event["occurred_at"])
        if kind in ("enrol", "name"):
            curation.names[talent] = event.get("name")
        elif kind == "merge":
            other = event["other_talent_id"]
            curation.aliases[other] = talent
            if other in curation.names and curation.names.get(talent) is None:
                curation.names[talent] = curation.names[other]
            if event["actor"] != REGISTRY_ACTOR:
                curation.bound.append([(v, int(p)) for v, p in detail.get("members", [])])
        elif kind == "forget":
            curation.forgotten.add(talent)
            curation.names.pop(talent, None)
    return curation


def talent_code(seed: str, taken: set[str]) -> str:
    """``T`` + 6 lowercase base-32 characters of a hash of ``seed``, avoiding ``taken``."""
    for attempt in range(1000):
        digest = hashlib.sha256(f"{seed}#{attempt}".encode()).digest()
        code = "T" + base64.b32encode(digest).decode().lower()[:6]
        if code not in taken:
            return code
    raise RuntimeError("no free talent id")  # 32**6 codes: not reachable in practice


@dataclass(frozen=True)
class Grouping:
    """Members grouped into talents: the talent id of each member, and what changed."""

    talent_ids: list[str]
    events: list[dict[str, Any]]
    links: list[Link]


def group_into_talents(
    members: Sequence[Member], curation: Curation, threshold: float, now: datetime
) -> Grouping:
    """Group members and name each group with a stable talent id (see the module doc)."""
    links = member_links(members, threshold)
    bound = _bound_links(members, curation)
    groups = group_members(members, [*bound, *links])
    ids, events = _assign_ids(members, groups, curation, now)
    talent_ids = [""] * len(members)
    for group, talent in zip(groups, ids, strict=True):
        for i in group:
            talent_ids[i] = talent
    return Grouping(talent_ids, events, links)


def _bound_links(members: Sequence[Member], curation: Curation) -> list[Link]:
    """Links (similarity 2, above any real one) that tie together what was merged by hand:
    the members named in a manual merge, and members whose old ids merged into one."""
    index = {m.key: i for i, m in enumerate(members)}
    links: list[Link] = []
    for keys in curation.bound:
        present = [index[k] for k in keys if k in index]
        links += [Link(present[0], j, 2.0) for j in present[1:]]
    by_final: dict[str, list[int]] = {}
    manual = {t for keys in curation.bound for t in _ids_of(members, index, keys, curation)}
    for i, member in enumerate(members):
        final = curation.resolve(member.talent_id)
        if final is not None and final in manual:
            by_final.setdefault(final, []).append(i)
    for present in by_final.values():
        links += [Link(present[0], j, 2.0) for j in present[1:]]
    return links


def _ids_of(
    members: Sequence[Member], index: dict[tuple[str, int], int], keys: list, curation: Curation
) -> set[str]:
    found = {curation.resolve(members[index[k]].talent_id) for k in keys if k in index}
    return {t for t in found if t is not None}


def _assign_ids(
    members: Sequence[Member], groups: list[list[int]], curation: Curation, now: datetime
) -> tuple[list[str], list[dict[str, Any]]]:
    """Give each group an id: the oldest previous id most of it held, else a new one."""
    previous = [Counter(_previous_ids(members, g, curation)) for g in groups]
    # A group holding an enrolment claims that enrolment's id before anything else (its
    # photos are filed under it); then the oldest id, the most members, the first member.
    pinned = [
        {curation.resolve(members[i].talent_id) for i in g if members[i].enrolled} for g in groups
    ]
    claims = sorted(
        (
            (t not in pinned[gi], curation.created.get(t, now), -n, members[g[0]].key, gi, t)
            for gi, (g, counts) in enumerate(zip(groups, previous, strict=True))
            for t, n in counts.items()
        ),
        key=lambda c: (c[0], c[1], c[2], c[3], c[5]),
    )
    ids: list[str | None] = [None] * len(groups)
    owner: dict[str, int] = {}
    for *_, gi, talent in claims:
        if ids[gi] is None and talent not in owner:
            ids[gi], owner[talent] = talent, gi
    taken = set(owner) | curation.retired() | set(curation.created)
    events: list[dict[str, Any]] = []
    for gi, group in enumerate(groups):
        if ids[gi] is None:
            founder = min((members[i] for i in group), key=lambda m: (m.seen_at, m.key))
            ids[gi] = talent_code(f"{founder.video_id}/{founder.person_id}", taken)
            taken.add(ids[gi])
        events += _change_events(ids[gi], previous[gi], owner, now)
    return [str(t) for t in ids], events


def _previous_ids(members: Sequence[Member], group: list[int], curation: Curation) -> list[str]:
    found = (curation.resolve(members[i].talent_id) for i in group)
    return [t for t in found if t is not None and t not in curation.forgotten]


def _change_events(
    talent: str | None, previous: Counter, owner: dict[str, int], now: datetime
) -> list[dict[str, Any]]:
    """A bridged talent merges into ``talent``; a talent kept by another group split."""
    events = []
    for old in sorted(previous):
        if old == talent:
            continue
        kind = "merge" if old not in owner else "split"
        events.append(
            registry_event(kind, str(talent), now, other_talent_id=old, actor=REGISTRY_ACTOR)
        )
    return events


def registry_event(
    kind: str,
    talent_id: str,
    at: datetime,
    *,
    actor: str,
    other_talent_id: str | None = None,
    name: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``talent_events`` row. Never carries biometric data: ids, names, member keys."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown talent event {kind!r}")
    seed = f"{kind}/{talent_id}/{other_talent_id}/{at.isoformat()}/{name}"
    return {
        "event_id": hashlib.sha256(seed.encode()).hexdigest()[:16],
        "occurred_at": at,
        "actor": actor,
        "event": kind,
        "talent_id": talent_id,
        "other_talent_id": other_talent_id,
        "name": name,
        "detail": json.dumps(detail or {}, sort_keys=True),
    }


def talent_exemplars(members: Sequence[Member], group: Sequence[int]) -> np.ndarray:
    """Up to :data:`EXEMPLARS_PER_TALENT` diverse exemplars of a talent (photos first)."""
    ordered = sorted(group, key=lambda i: (not members[i].enrolled, members[i].key))
    stacked = np.concatenate([members[i].exemplars for i in ordered])
    # Each member's own best exemplar comes first in its list: rank those (and photos)
    # highest so that every appearance can contribute before any second look.
    rank = np.concatenate(
        [
            -np.arange(len(members[i].exemplars), dtype=np.float64) + members[i].enrolled
            for i in ordered
        ]
    )
    return choose_exemplars(stacked, rank, EXEMPLARS_PER_TALENT)
