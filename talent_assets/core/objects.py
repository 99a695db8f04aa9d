"""Object keys and what a store says about an object: pure, shared by every layer.

A key that would escape its store or prefix (``..``, absolute paths, NULs) is refused here,
before any I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class ObjectNotFoundError(FileNotFoundError):
    """The requested object does not exist."""


class ObjectChangedError(Exception):
    """A conditional write lost: the object changed (or appeared) since it was read."""


class UnsafeKeyError(ValueError):
    """A key that would address something outside its store or prefix."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or head request tells about an object."""

    key: str
    size: int
    etag: str
    last_modified: datetime


def check_key(key: str) -> str:
    """Refuse keys that are empty, absolute, or contain ``.``/``..`` segments or NULs."""
    if not key or key.startswith("/") or "\x00" in key or "\\" in key:
        raise UnsafeKeyError(f"unsafe object key: {key!r}")
    # Split by hand: PurePosixPath silently drops "." segments.
    if any(part in ("", ".", "..") for part in key.rstrip("/").split("/")):
        raise UnsafeKeyError(f"unsafe object key: {key!r}")
    return key
