"""Video ids (the Dagster partition key) and output folder names derived from S3 keys, and
the key under which a video fetched from a URL is kept."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
_SLUG_MAX = 60


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _relative_parts(key: str, video_prefix: str) -> list[str]:
    """Path segments of ``key`` below the video prefix, extension dropped, no empty/dot parts."""
    rel = key[len(video_prefix) :] if video_prefix and key.startswith(video_prefix) else key
    path = PurePosixPath(rel)
    parts = [p for p in path.parent.parts if p not in ("", ".", "..", "/")]
    stem = path.stem if path.suffix.lower() in VIDEO_EXTENSIONS else path.name
    if stem not in ("", ".", ".."):
        parts.append(stem)
    return parts


def video_id_for(bucket: str, key: str, video_prefix: str = "videos/") -> str:
    """Readable, stable, unique id for ``s3://bucket/key``, valid as a Dagster partition key.

    ``videos/2026/Interview One.mp4`` becomes ``2026__interview-one-<8 hex>``: a slug of the
    key below the prefix, then a hash of the full ``bucket/key`` so that keys which slug alike
    stay distinct. Only ``[a-z0-9_-]`` is used, so it never contains ``/``, ``|`` or ``...``.
    """
    slugs = []
    for part in _relative_parts(key, video_prefix):
        slug = re.sub(r"[^a-z0-9]+", "-", _ascii(part).lower()).strip("-")
        if slug:
            slugs.append(slug)
    readable = "__".join(slugs)[:_SLUG_MAX].strip("-_") or "video"
    digest = hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def output_stem(key: str, video_prefix: str = "videos/") -> str:
    """Folder (relative to the output prefix) for a video's frames and manifest.

    The original endpoint used the file's stem (``videos/test.mp4`` → ``test``); we keep that
    and keep sub-folders below the video prefix too, so ``a/x.mp4`` and ``b/x.mp4`` do not
    overwrite each other. Each segment is reduced to safe characters and ``.``/``..`` are
    dropped, so a hostile key can never address anything outside the output prefix.
    """
    safe = []
    for part in _relative_parts(key, video_prefix):
        cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", _ascii(part)).strip("._") or "_"
        safe.append(cleaned[:100])
    return "/".join(safe) or "video"


def is_video_key(key: str) -> bool:
    """True for keys with a video file extension (case-insensitive)."""
    return key.lower().endswith(VIDEO_EXTENSIONS) and not key.endswith("/")


#: Videos fetched from a URL are kept under the video prefix in this folder.
URL_FOLDER = "url"


def url_video_key(url: str, video_prefix: str = "videos/") -> str:
    """Where a video fetched from ``url`` is kept: ``<prefix>url/<slug>-<hash>.<ext>``.

    The same URL always gives the same key (so the same partition, ``processed/url/<id>/``),
    a different one never does: the hash covers the whole URL. The query string is hashed
    but never shown (signed URLs carry credentials there). Known from the URL alone, so an
    API call can name the partition before anything is fetched: a ``.m3u8`` playlist
    becomes ``.mkv`` (HLS is remuxed into Matroska), a file keeps its video extension, and
    anything else gets ``.mp4`` (videos are probed by content, not by name).
    """
    path = PurePosixPath(unquote(urlsplit(url).path))
    suffix = path.suffix.lower()
    ext = ".mkv" if suffix == ".m3u8" else (suffix if suffix in VIDEO_EXTENSIONS else ".mp4")
    stem = path.stem if path.name else "video"
    slug = re.sub(r"[^a-z0-9]+", "-", _ascii(stem).lower()).strip("-")[:40] or "video"
    digest = hashlib.sha256(url.strip().encode()).hexdigest()[:10]
    return f"{video_prefix}{URL_FOLDER}/{slug}-{digest}{ext}"
