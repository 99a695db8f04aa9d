"""Publish a video's outputs so readers never see a mixed or half-written set.

S3 has no multi-object transaction, so we build one: new files are uploaded to a staging
folder (a failed upload leaves the published set untouched); the files about to be replaced
are copied aside; then the new files are copied into place, the table is committed and the
manifest is written last (its presence means the set is complete). If anything in that last
stretch fails, the previous files are restored and files new to this run are removed, so
the earlier manifest, table and images still agree. Afterwards, files of an earlier run that
the new set no longer has (say ``person_3.jpg`` when three people are found now) are removed.
"""

from __future__ import annotations

from collections.abc import Callable

from talent_assets.infra.storage import ObjectStore

STAGING = ".staging/"


def _direct_children(store: ObjectStore, base: str) -> set[str]:
    # Only this folder's own files: another video's outputs may live in a sub-folder.
    return {info.key for info in store.list(base) if "/" not in info.key[len(base) :]}


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
    """Publish ``files`` and ``manifest`` under ``base``; ``commit`` writes the table.

    Returns what ``commit`` returned. On failure the folder is as it was before the call.
    """
    staging = f"{base}{STAGING}{staging_name}/"
    staged: dict[str, str] = {}
    backups: dict[str, str] = {}
    try:
        for key, (data, content_type) in files.items():
            staged_key = f"{staging}new/{key[len(base) :]}"
            store.put_bytes(staged_key, data, content_type)
            staged[key] = staged_key
        before = _direct_children(store, base)
        for key in [*files, manifest_key]:
            if key in before:
                backups[key] = f"{staging}old/{key[len(base) :]}"
                store.copy(key, backups[key])
        try:
            for key, staged_key in staged.items():
                store.copy(staged_key, key)
            result = commit()
            store.put_bytes(manifest_key, manifest, "application/json")
        except BaseException:
            for key, backup in backups.items():
                store.copy(backup, key)
            store.delete([k for k in [*files, manifest_key] if k not in before])
            raise
    finally:
        store.delete([*staged.values(), *backups.values()])
    # Outputs of an earlier run that this one did not write again (e.g. a person fewer).
    # ``before`` is the folder as it was: since then only keys in ``keep`` were written.
    keep = set(files) | {manifest_key}
    store.delete(sorted(before - keep))
    return result
