"""One writer at a time for the talent registry, across processes and machines.

The registry is read, recomputed and written back as a whole, so two writers at once would
lose one's update. A lease object next to the tables serialises them, taken with S3
conditional writes (``If-None-Match: *`` to create, ``If-Match`` to take over an expired
lease), which AWS S3 and SeaweedFS honour; a local warehouse uses a file lock for the same
compare-and-swap. The holder renews its lease (``If-Match`` on its own ETag) every third of
the lease time, and checks that it still holds it before each write: a holder that stalled
past its lease and was taken over stops instead of overwriting the new holder's work.
Dagster adds its own guard where it runs the registry (the queue's limit), but the CLI and
the API run it in-process, so the lease is what every writer shares.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from talent_assets.core.objects import ObjectChangedError, ObjectNotFoundError
from talent_assets.infra.storage import ObjectStore

#: A lease not renewed for this long is presumed dead (its holder crashed) and may be taken
#: over. Holders renew every third of it.
LEASE_S = 600.0
Clock = Callable[[], datetime]


class RegistryBusyError(TimeoutError):
    """Another writer held the registry for longer than we were willing to wait."""


class RegistryLeaseLostError(RuntimeError):
    """This writer's lease expired and was taken over: it must not write any more."""


class RegistryLease:
    """A held lease: renewed in the background; :meth:`check` before every write."""

    def __init__(self, store: ObjectStore, key: str, lease_s: float, clock: Clock):
        self.store, self.key, self.lease_s, self.clock = store, key, lease_s, clock
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.etag: str | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_until_stopped, daemon=True)

    def body(self) -> bytes:
        expires = self.clock() + timedelta(seconds=self.lease_s)
        return json.dumps({"holder": self.holder, "expires": expires.isoformat()}).encode()

    def check(self) -> None:
        """Raise :class:`RegistryLeaseLostError` if the lease is no longer ours."""
        if self._lost.is_set():
            raise RegistryLeaseLostError(
                "the talent registry's lease was lost; nothing more written"
            )

    def start_renewing(self) -> None:
        self._renewer.start()

    def stop(self) -> None:
        self._stop.set()
        if self._renewer.is_alive():
            self._renewer.join()

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                self.etag = self.store.put_bytes_if(
                    self.key, self.body(), "application/json", etag=self.etag
                )
            except ObjectChangedError:
                self._lost.set()
                return
            except Exception:  # a transient store error: try again at the next interval
                continue


@contextmanager
def registry_lease(
    store: ObjectStore,
    key: str,
    *,
    wait_s: float = 900.0,
    lease_s: float = LEASE_S,
    clock: Clock = lambda: datetime.now(UTC),
) -> Iterator[RegistryLease]:
    """Hold the lease at ``key`` for the ``with`` block; yields it (``check()`` before
    writes)."""
    lease = RegistryLease(store, key, lease_s, clock)
    lease.etag = _acquire(lease, wait_s)
    lease.start_renewing()
    try:
        yield lease
    finally:
        lease.stop()
        _release(lease)


def _acquire(lease: RegistryLease, wait_s: float) -> str:
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        state, etag = _lease_state(lease.store, lease.key, lease.clock)
        if state != "held":
            try:  # create it, or take over the expired one (its ETag must still match)
                return lease.store.put_bytes_if(
                    lease.key, lease.body(), "application/json", etag=etag
                )
            except ObjectChangedError:
                pass  # someone else got there first
        if time.monotonic() > deadline:
            raise RegistryBusyError(f"the talent registry stayed locked for {wait_s:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _lease_state(store: ObjectStore, key: str, clock: Clock) -> tuple[str, str | None]:
    """("free", None), ("expired", its ETag) or ("held", its ETag)."""
    try:
        info = store.head(key)
        body = store.get_bytes(key)
    except ObjectNotFoundError:
        return "free", None
    try:
        expires = datetime.fromisoformat(json.loads(body)["expires"])
    except (ValueError, KeyError, TypeError):
        # Unreadable: written by something else. Expire it by its age.
        expires = info.last_modified + timedelta(seconds=LEASE_S)
    return ("expired" if expires <= clock() else "held"), info.etag


def _release(lease: RegistryLease) -> None:
    try:
        if lease.store.head(lease.key).etag == lease.etag:  # still ours
            lease.store.delete([lease.key])
    except ObjectNotFoundError:
        pass
