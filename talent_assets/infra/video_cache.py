"""Local copies of source videos, shared by the assets of one partition.

Three assets need the video file; downloading it once per content version (the ETag) and
reusing it saves two full downloads per run. Files are written atomically so processes of a
multi-process executor can share the cache, and removed once ``selected_frames`` is done.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath

from talent_assets.infra.storage import ObjectStore


def cache_dir() -> Path:
    """``$TALENT_CACHE_DIR`` or a folder in the system temp dir."""
    root = os.environ.get("TALENT_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), "talent-video-cache"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_video_path(store: ObjectStore, key: str, etag: str) -> Path:
    """The cache file for one version of one object (named by a hash, never by the key)."""
    digest = hashlib.sha256(f"{store.location(key)}\n{etag}".encode()).hexdigest()[:32]
    suffix = PurePosixPath(key).suffix.lower()[:8]
    return cache_dir() / f"{digest}{suffix}"


def fetch_video(store: ObjectStore, key: str, etag: str) -> Path:
    """Download ``key`` unless this version is already cached; returns the local path."""
    path = cached_video_path(store, key, etag)
    if path.is_file():
        return path
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-", suffix=path.suffix)
    os.close(fd)
    try:
        store.download(key, Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def evict_video(store: ObjectStore, key: str, etag: str) -> None:
    """Delete the cached copy, if any."""
    cached_video_path(store, key, etag).unlink(missing_ok=True)
