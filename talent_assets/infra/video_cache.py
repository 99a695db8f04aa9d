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


def default_cache_dir() -> Path:
    """A folder in the system temp dir (``TALENT_CACHE_DIR`` unset)."""
    return Path(tempfile.gettempdir()) / "talent-video-cache"


class VideoCache:
    """Cached downloads under ``root`` (``TALENT_CACHE_DIR``), one file per object version."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else default_cache_dir()

    def path(self, store: ObjectStore, key: str, etag: str) -> Path:
        """The cache file for one version of one object (named by a hash, never by the key)."""
        digest = hashlib.sha256(f"{store.location(key)}\n{etag}".encode()).hexdigest()[:32]
        suffix = PurePosixPath(key).suffix.lower()[:8]
        return self.root / f"{digest}{suffix}"

    def fetch(self, store: ObjectStore, key: str, etag: str) -> Path:
        """Download ``key`` unless this version is already cached; returns the local path."""
        path = self.path(store, key, etag)
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-", suffix=path.suffix)
        os.close(fd)
        try:
            store.download(key, Path(tmp))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def evict(self, store: ObjectStore, key: str, etag: str) -> None:
        """Delete the cached copy, if any."""
        self.path(store, key, etag).unlink(missing_ok=True)
