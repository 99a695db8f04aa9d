"""Publish a video's outputs so readers never see a half-written set.

Files are uploaded to a staging folder first, so a failed upload leaves the previous outputs
untouched; then copied into place, then the table is committed, then the manifest is
written last (its presence means the set is complete), then files of an earlier run that the
new set no longer has (say ``person_3.jpg`` when three people are found now) are removed.
"""

from __future__ import annotations

from collections.abc import Callable

from talent_assets.storage import ObjectStore

STAGING = ".staging/"


def publish_outputs(
    store: ObjectStore,
    *,
    base: str,
    files: dict[str, tuple[bytes, str]],
    commit: Callable[[], str],
    manifest_key: str,
    manifest: bytes,
    staging_name: str,
) -> str:
    """Stage, then publish ``files`` under ``base``; ``commit`` writes the table. Returns
    what ``commit`` returned."""
    staging = f"{base}{STAGING}{staging_name}/"
    staged: dict[str, str] = {}
    try:
        for key, (data, content_type) in files.items():
            staged_key = staging + key[len(base) :]
            store.put_bytes(staged_key, data, content_type)
            staged[key] = staged_key
        for key, staged_key in staged.items():
            store.copy(staged_key, key)
        result = commit()
        store.put_bytes(manifest_key, manifest, "application/json")
    finally:
        store.delete(list(staged.values()))
    keep = set(files) | {manifest_key}
    # Only this folder's own files: another video's outputs may live in a sub-folder.
    stale = [
        info.key
        for info in store.list(base)
        if info.key not in keep and "/" not in info.key[len(base) :]
    ]
    store.delete(stale)
    return result
