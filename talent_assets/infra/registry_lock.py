"""One writer at a time for the talent registry, across processes and machines.

The registry is read, recomputed and written back as a whole, so two writers at once would
lose one's update. A lease object next to the tables serialises them, taken with S3
conditional writes (``If-None-Match: *`` to create, ``If-Match`` to take over an expired
lease), which AWS S3 and SeaweedFS honour; a local warehouse uses a file lock for the same
compare-and-swap. Dagster adds its own guard where it runs the registry (a concurrency pool
of one), but the CLI and the API run it in-process, so the lease is what every writer shares.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from talent_assets.core.objects import ObjectChangedError, ObjectNotFoundError
from talent_assets.infra.storage import ObjectStore

#: A lease older than this is presumed dead (its holder crashed) and may be taken over. A
#: registry update takes seconds; the holder renews nothing, so keep this generous.
LEASE_S = 600.0


class RegistryBusyError(TimeoutError):
    """Another writer held the registry for longer than we were willing to wait."""


@contextmanager
def registry_lease(
    store: ObjectStore,
    key: str,
    *,
    wait_s: float = 900.0,
    lease_s: float = LEASE_S,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Iterator[str]:
    """Hold the lease at ``key`` for the ``with`` block; yields the holder's id."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    etag = _acquire(store, key, holder, wait_s, lease_s, clock)
    try:
        yield holder
    finally:
        _release(store, key, etag)


def _acquire(
    store: ObjectStore,
    key: str,
    holder: str,
    wait_s: float,
    lease_s: float,
    clock: Callable[[], datetime],
) -> str:
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        body = json.dumps(
            {"holder": holder, "expires": (clock() + timedelta(seconds=lease_s)).isoformat()}
        ).encode()
        try:
            return store.put_bytes_if(
                key, body, "application/json", etag=_expired_etag(store, key, clock)
            )
        except ObjectChangedError:
            pass  # held (or just taken by someone else): wait and look again
        if time.monotonic() > deadline:
            raise RegistryBusyError(f"the talent registry stayed locked for {wait_s:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _expired_etag(store: ObjectStore, key: str, clock: Callable[[], datetime]) -> str | None:
    """None when there is no lease (create it); the lease's ETag when it has expired (take
    it over); a value that cannot match when a live lease is held (the write then fails)."""
    try:
        info = store.head(key)
        lease = json.loads(store.get_bytes(key))
    except ObjectNotFoundError:
        return None
    except ValueError:  # unreadable lease: someone is writing it; treat as held
        return "held"
    if datetime.fromisoformat(lease["expires"]) <= clock():
        return info.etag
    return "held"


def _release(store: ObjectStore, key: str, etag: str) -> None:
    try:
        if store.head(key).etag == etag:  # still ours (not taken over after expiry)
            store.delete([key])
    except ObjectNotFoundError:
        pass
