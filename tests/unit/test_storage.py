"""Unit tests for the local object store, key checks, the Parquet warehouse and publishing."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modal_gpu.schema import EMBEDDING_DIM
from talent_assets.core.objects import ObjectNotFoundError, UnsafeKeyError, check_key
from talent_assets.core.tables import (
    IDENTITY_CLUSTERS_SCHEMA,
    SELECTED_FRAMES_SCHEMA,
    TABLE_SCHEMAS,
    VIDEOS_SCHEMA,
)
from talent_assets.infra.publish import STAGING, publish_outputs
from talent_assets.infra.storage import LocalObjectStore
from talent_assets.infra.warehouse import Warehouse

UNSAFE_KEYS = [
    "",
    "../escape.txt",
    "a/../../escape.txt",
    "a/../b.txt",
    "..",
    "a/..",
    "/etc/passwd",
    "/abs/key.txt",
    "a\\..\\..\\escape.txt",
    "a\\b.txt",
    "a\x00b.txt",
    "a/b\x00/../../c",
]


def all_files(path: Path) -> set[str]:
    """Every file below ``path`` (relative, POSIX)."""
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A folder whose ``root`` sub-folder is the store; anything else written is a leak."""
    (tmp_path / "root").mkdir()
    return tmp_path


@pytest.fixture
def store(sandbox: Path) -> LocalObjectStore:
    return LocalObjectStore(sandbox / "root", bucket="local-test")


# --- check_key ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_check_key_refuses(key: str) -> None:
    with pytest.raises(UnsafeKeyError):
        check_key(key)


@pytest.mark.parametrize(
    "key", ["a.txt", "processed/test/person_0.jpg", "a..b/c...d.txt", ".staging/x", "a b/ü.jpg"]
)
def test_check_key_accepts(key: str) -> None:
    assert check_key(key) == key


def test_unsafe_key_error_is_a_value_error() -> None:
    assert issubclass(UnsafeKeyError, ValueError)


@pytest.mark.parametrize("key", [".", "./a.txt", "a/./b.txt"])
def test_check_key_refuses_dot_segments(key: str) -> None:
    with pytest.raises(UnsafeKeyError):
        check_key(key)


def test_local_store_refuses_dot_key(store: LocalObjectStore) -> None:
    with pytest.raises(UnsafeKeyError):
        store.put_bytes(".", b"x", "text/plain")


# --- LocalObjectStore: refusals happen before any I/O --------------------------------------


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_local_store_refuses_unsafe_keys_without_io(
    store: LocalObjectStore, sandbox: Path, key: str
) -> None:
    store.put_bytes("keep/me.txt", b"keep", "text/plain")
    (sandbox / "outside.txt").write_bytes(b"untouched")
    before = all_files(sandbox)

    with pytest.raises(UnsafeKeyError):
        store.put_bytes(key, b"evil", "text/plain")
    with pytest.raises(UnsafeKeyError):
        store.get_bytes(key)
    with pytest.raises(UnsafeKeyError):
        store.head(key)
    with pytest.raises(UnsafeKeyError):
        store.download(key, sandbox / "downloaded.bin")
    with pytest.raises(UnsafeKeyError):
        store.copy("keep/me.txt", key)
    with pytest.raises(UnsafeKeyError):
        store.copy(key, "keep/copy.txt")
    with pytest.raises(UnsafeKeyError):
        store.delete([key])
    with pytest.raises(UnsafeKeyError):
        store.url(key)

    assert all_files(sandbox) == before
    assert (sandbox / "outside.txt").read_bytes() == b"untouched"
    assert not (sandbox / "escape.txt").exists()
    assert not (sandbox.parent / "escape.txt").exists()


def test_local_store_refuses_symlink_escape(store: LocalObjectStore, sandbox: Path) -> None:
    outside = sandbox / "outside"
    outside.mkdir()
    (store.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeKeyError):
        store.put_bytes("link/evil.txt", b"evil", "text/plain")
    assert list(outside.iterdir()) == []


def test_delete_refused_key_in_batch_deletes_nothing_after_it(store: LocalObjectStore) -> None:
    store.put_bytes("a.txt", b"a", "text/plain")
    with pytest.raises(UnsafeKeyError):
        store.delete(["../x", "a.txt"])
    assert store.get_bytes("a.txt") == b"a"


# --- LocalObjectStore: round trips ---------------------------------------------------------


def test_put_get_head_list_delete_round_trip(store: LocalObjectStore, sandbox: Path) -> None:
    store.put_bytes("processed/vid/person_0.jpg", b"\xff\xd8jpeg", "image/jpeg")
    store.put_bytes("processed/vid/manifest.json", b"{}", "application/json")
    store.put_bytes("processed/other/manifest.json", b"[]", "application/json")

    assert store.get_bytes("processed/vid/person_0.jpg") == b"\xff\xd8jpeg"
    assert (store.root / "processed/vid/person_0.jpg").read_bytes() == b"\xff\xd8jpeg"

    info = store.head("processed/vid/person_0.jpg")
    assert info.key == "processed/vid/person_0.jpg"
    assert info.size == 6
    assert info.etag
    assert info.last_modified.tzinfo is not None
    assert abs((datetime.now(UTC) - info.last_modified).total_seconds()) < 60

    assert [i.key for i in store.list("processed/vid/")] == [
        "processed/vid/manifest.json",
        "processed/vid/person_0.jpg",
    ]
    assert len(list(store.list(""))) == 3
    assert list(store.list("nothing/")) == []

    # Overwrite replaces.
    store.put_bytes("processed/vid/manifest.json", b'{"v": 2}', "application/json")
    assert store.get_bytes("processed/vid/manifest.json") == b'{"v": 2}'

    store.delete(["processed/vid/person_0.jpg", "processed/vid/manifest.json", "missing.txt"])
    assert [i.key for i in store.list("")] == ["processed/other/manifest.json"]
    # Emptied folders go too (S3 has none to leave behind); the root stays.
    assert not (store.root / "processed/vid").exists()
    assert store.root.is_dir()
    assert all_files(sandbox) == {"root/processed/other/manifest.json"}


def test_missing_objects(store: LocalObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFoundError):
        store.get_bytes("nope.txt")
    with pytest.raises(ObjectNotFoundError):
        store.head("nope.txt")
    with pytest.raises(ObjectNotFoundError):
        store.download("nope.txt", tmp_path / "x")
    with pytest.raises(ObjectNotFoundError):
        store.copy("nope.txt", "dst.txt")
    assert issubclass(ObjectNotFoundError, FileNotFoundError)
    assert not (store.root / "dst.txt").exists()


def test_copy_and_download(store: LocalObjectStore, tmp_path: Path) -> None:
    store.put_bytes("src/a.bin", bytes(range(256)), "application/octet-stream")
    store.copy("src/a.bin", "dst/deep/b.bin")
    assert store.get_bytes("dst/deep/b.bin") == bytes(range(256))
    assert store.get_bytes("src/a.bin") == bytes(range(256))
    dest = tmp_path / "downloaded.bin"
    store.download("dst/deep/b.bin", dest)
    assert dest.read_bytes() == bytes(range(256))


def test_writes_leave_no_temp_files(store: LocalObjectStore) -> None:
    for i in range(5):
        store.put_bytes(f"x/file_{i}.txt", str(i).encode() * 1000, "text/plain")
        store.put_bytes("x/same.txt", str(i).encode(), "text/plain")
    names = [p.name for p in store.root.rglob("*")]
    assert not [n for n in names if n.startswith(".tmp-")]
    assert store.get_bytes("x/same.txt") == b"4"


def test_failed_write_leaves_old_content_and_no_temp(store: LocalObjectStore) -> None:
    store.put_bytes("x/data.txt", b"old", "text/plain")

    # A non-bytes payload makes the write fail midway (after the temp file was created).
    with pytest.raises(TypeError):
        store.put_bytes("x/data.txt", object(), "text/plain")  # type: ignore[arg-type]
    assert store.get_bytes("x/data.txt") == b"old"
    assert [p.name for p in (store.root / "x").iterdir()] == ["data.txt"]


def test_list_skips_temp_files(store: LocalObjectStore) -> None:
    store.put_bytes("x/a.txt", b"a", "text/plain")
    (store.root / "x" / ".tmp-abandoned.txt").write_bytes(b"partial")
    assert [i.key for i in store.list("x/")] == ["x/a.txt"]


def test_url_and_location(store: LocalObjectStore) -> None:
    store.put_bytes("a/b.jpg", b"1", "image/jpeg")
    assert store.url("a/b.jpg") == (store.root / "a/b.jpg").as_uri()
    assert store.location("a/b.jpg") == str(store.root / "a/b.jpg")
    assert store.bucket == "local-test"


# --- Warehouse -----------------------------------------------------------------------------


def clusters_table(video_id: str, n: int, offset: int = 0) -> pa.Table:
    """identity_clusters rows with plain Python types (int64/double), to be cast on write."""
    return pa.table(
        {
            "person_id": [i % 3 - 1 for i in range(n)],  # columns out of schema order
            "video_id": [video_id] * n,
            "frame_index": list(range(offset, offset + n)),
            "face_index": [0] * n,
            "timestamp_s": [(offset + i) / 2 for i in range(n)],
            "track_id": [i // 2 for i in range(n)],
            "similarity_to_person": [0.5] * n,
            "identifiable": [i % 2 == 0 for i in range(n)],
            "extra_column": ["dropped"] * n,
        }
    )


def test_partitions_written_before_a_nullable_column_existed_read_with_nulls(
    store: LocalObjectStore,
) -> None:
    """An upgrade adds identity_clusters.identifiable: older partitions must stay readable."""
    wh = Warehouse(store, "warehouse/")
    old = clusters_table("old", 3).drop_columns(["identifiable", "extra_column"])
    key = wh.partition_key("identity_clusters", "old")
    buffer = io.BytesIO()
    pq.write_table(old, buffer)
    store.put_bytes(key, buffer.getvalue(), "application/vnd.apache.parquet")
    back = wh.read("identity_clusters", "old")
    assert back is not None and back.schema == IDENTITY_CLUSTERS_SCHEMA
    assert back["identifiable"].to_pylist() == [None, None, None]
    assert back["person_id"].to_pylist() == [-1, 0, 1]


def test_warehouse_write_read_round_trip(store: LocalObjectStore) -> None:
    wh = Warehouse(store)
    location = wh.write("identity_clusters", "vid-1", clusters_table("vid-1", 5))
    key = "warehouse/identity_clusters/video_id=vid-1/part-0.parquet"
    assert location == store.location(key)
    assert (store.root / key).is_file()

    back = wh.read("identity_clusters", "vid-1")
    assert back is not None
    assert back.schema.equals(IDENTITY_CLUSTERS_SCHEMA)
    assert back.num_rows == 5
    assert back["frame_index"].to_pylist() == [0, 1, 2, 3, 4]
    assert back["person_id"].to_pylist() == [-1, 0, 1, -1, 0]
    assert back["person_id"].type == pa.int32()
    assert "extra_column" not in back.column_names


def test_warehouse_write_twice_replaces(store: LocalObjectStore) -> None:
    wh = Warehouse(store)
    wh.write("identity_clusters", "vid-1", clusters_table("vid-1", 5))
    wh.write("identity_clusters", "vid-1", clusters_table("vid-1", 3, offset=100))
    back = wh.read("identity_clusters", "vid-1")
    assert back is not None
    assert back.num_rows == 3
    assert back["frame_index"].to_pylist() == [100, 101, 102]
    files = all_files(store.root)
    assert files == {"warehouse/identity_clusters/video_id=vid-1/part-0.parquet"}


def test_warehouse_partitions_are_independent(store: LocalObjectStore) -> None:
    wh = Warehouse(store, prefix="tables")  # trailing slash added
    wh.write("identity_clusters", "a", clusters_table("a", 2))
    wh.write("identity_clusters", "b", clusters_table("b", 4))
    assert wh.read("identity_clusters", "a").num_rows == 2  # type: ignore[union-attr]
    assert wh.read("identity_clusters", "b").num_rows == 4  # type: ignore[union-attr]
    wh.delete("identity_clusters", "a")
    assert wh.read("identity_clusters", "a") is None
    assert wh.read("identity_clusters", "b") is not None
    assert all_files(store.root) == {"tables/identity_clusters/video_id=b/part-0.parquet"}


def test_warehouse_missing_partition_is_none(store: LocalObjectStore) -> None:
    wh = Warehouse(store)
    assert wh.read("selected_frames", "never-written") is None
    assert wh.read("videos", "never-written") is None


def test_warehouse_unknown_table(store: LocalObjectStore) -> None:
    with pytest.raises(KeyError):
        Warehouse(store).write("nope", "vid", clusters_table("vid", 1))
    with pytest.raises(KeyError):
        Warehouse(store).read("nope", "vid")


def test_warehouse_videos_and_selected_frames(store: LocalObjectStore) -> None:
    wh = Warehouse(store)
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    video = {
        "video_id": "v",
        "bucket": "talent",
        "key": "videos/v.mp4",
        "etag": "abc",
        "size_bytes": 123,
        "duration_s": 4.5,
        "fps": 25.0,
        "width": 640,
        "height": 360,
        "codec": "h264",
        "rotation": 0,
        "frames": 112,
        "ingested_at": now,
    }
    wh.write("videos", "v", pa.Table.from_pylist([video], schema=VIDEOS_SCHEMA))
    back = wh.read("videos", "v")
    assert back is not None
    assert back.to_pylist() == [video]

    centroid = np.linspace(-1, 1, EMBEDDING_DIM).astype(np.float32)
    row = {
        "video_id": "v",
        "person_id": 0,
        "frame_index": 10,
        "timestamp_s": 5.0,
        "score": 80.5,
        "face_quality": 90.0,
        "centrality": 1.0,
        "occlusion": 0.0,
        "x1": 1.0,
        "y1": 2.0,
        "x2": 3.0,
        "y2": 4.0,
        "s3_key": "processed/v/person_0.jpg",
        "face_s3_key": "processed/v/person_0_face.jpg",
        "faces": 7,
        "first_seen_s": 0.5,
        "last_seen_s": 9.0,
        "screen_time_s": 3.5,
        "centroid": centroid.tolist(),
    }
    wh.write("selected_frames", "v", pa.Table.from_pylist([row], schema=SELECTED_FRAMES_SCHEMA))
    back = wh.read("selected_frames", "v")
    assert back is not None
    assert back.schema.equals(TABLE_SCHEMAS["selected_frames"])
    np.testing.assert_array_equal(np.array(back["centroid"][0].as_py(), np.float32), centroid)
    assert back["s3_key"][0].as_py() == "processed/v/person_0.jpg"


def test_warehouse_write_rejects_missing_columns(store: LocalObjectStore) -> None:
    wh = Warehouse(store)
    with pytest.raises(KeyError):
        wh.write("identity_clusters", "v", clusters_table("v", 2).drop_columns(["track_id"]))
    assert wh.read("identity_clusters", "v") is None


# --- publish_outputs -----------------------------------------------------------------------

BASE = "processed/test/"


def publish(
    store: LocalObjectStore,
    people: int,
    *,
    version: str,
    commit: Callable[[], str] | None = None,
    staging_name: str = "run-1",
) -> str:
    files: dict[str, tuple[bytes, str]] = {}
    for p in range(people):
        files[f"{BASE}person_{p}.jpg"] = (f"{version}-frame-{p}".encode(), "image/jpeg")
        files[f"{BASE}person_{p}_face.jpg"] = (f"{version}-face-{p}".encode(), "image/jpeg")
    manifest = json.dumps({"version": version, "people_found": people}).encode()
    return publish_outputs(
        store,
        base=BASE,
        files=files,
        commit=commit or (lambda: f"table-{version}"),
        manifest_key=f"{BASE}manifest.json",
        manifest=manifest,
        staging_name=staging_name,
    )


def published(store: LocalObjectStore) -> set[str]:
    return {i.key[len(BASE) :] for i in store.list(BASE)}


def test_publish_writes_files_and_manifest(store: LocalObjectStore) -> None:
    assert publish(store, 2, version="v1") == "table-v1"
    assert published(store) == {
        "person_0.jpg",
        "person_0_face.jpg",
        "person_1.jpg",
        "person_1_face.jpg",
        "manifest.json",
    }
    assert store.get_bytes(f"{BASE}person_1.jpg") == b"v1-frame-1"
    assert json.loads(store.get_bytes(f"{BASE}manifest.json")) == {
        "version": "v1",
        "people_found": 2,
    }
    assert not (store.root / BASE / STAGING).exists()


def test_publish_removes_stale_files_but_not_subfolders(store: LocalObjectStore) -> None:
    publish(store, 4, version="v1")
    # Another video's outputs live in a sub-folder of this one (videos/test/x.mp4).
    store.put_bytes(f"{BASE}x/manifest.json", b"other video", "application/json")
    store.put_bytes(f"{BASE}x/person_3.jpg", b"other video", "image/jpeg")
    # A sibling folder whose name starts like this one's.
    store.put_bytes("processed/test2/person_3.jpg", b"sibling", "image/jpeg")

    publish(store, 2, version="v2", staging_name="run-2")

    assert published(store) == {
        "person_0.jpg",
        "person_0_face.jpg",
        "person_1.jpg",
        "person_1_face.jpg",
        "manifest.json",
        "x/manifest.json",
        "x/person_3.jpg",
    }
    assert store.get_bytes(f"{BASE}person_0.jpg") == b"v2-frame-0"
    assert json.loads(store.get_bytes(f"{BASE}manifest.json"))["version"] == "v2"
    assert store.get_bytes(f"{BASE}x/person_3.jpg") == b"other video"
    assert store.get_bytes("processed/test2/person_3.jpg") == b"sibling"
    assert not (store.root / BASE / STAGING).exists()


def test_publish_with_no_people(store: LocalObjectStore) -> None:
    publish(store, 2, version="v1")
    publish(store, 0, version="v2", staging_name="run-2")
    assert published(store) == {"manifest.json"}
    assert json.loads(store.get_bytes(f"{BASE}manifest.json"))["people_found"] == 0


def test_publish_commit_failure_keeps_old_manifest(store: LocalObjectStore) -> None:
    publish(store, 3, version="v1")
    old_manifest = store.get_bytes(f"{BASE}manifest.json")

    def failing_commit() -> str:
        # By now the new files were staged: staging exists while commit runs.
        assert any(STAGING in i.key for i in store.list(BASE))
        raise RuntimeError("warehouse down")

    with pytest.raises(RuntimeError, match="warehouse down"):
        publish(store, 1, version="v2", commit=failing_commit, staging_name="run-2")

    assert store.get_bytes(f"{BASE}manifest.json") == old_manifest
    assert json.loads(old_manifest)["version"] == "v1"
    # No staging left, no temp files, and no stale-file cleanup happened on failure.
    assert not (store.root / BASE / STAGING).exists()
    assert not [p for p in store.root.rglob("*") if p.name.startswith(".tmp-")]
    assert {"person_1.jpg", "person_2.jpg"} <= published(store)
    # The images were rolled back too: the old manifest still describes what is there.
    for p in range(3):
        assert store.get_bytes(f"{BASE}person_{p}.jpg") == f"v1-frame-{p}".encode()


def test_publish_failure_removes_files_new_to_the_run(store: LocalObjectStore) -> None:
    publish(store, 1, version="v1")

    def failing_commit() -> str:
        raise RuntimeError("warehouse down")

    with pytest.raises(RuntimeError):
        publish(store, 3, version="v2", commit=failing_commit)
    assert published(store) == {"person_0.jpg", "person_0_face.jpg", "manifest.json"}
    assert store.get_bytes(f"{BASE}person_0.jpg") == b"v1-frame-0"


def test_publish_first_run_commit_failure_writes_no_manifest(store: LocalObjectStore) -> None:
    def failing_commit() -> str:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        publish(store, 2, version="v1", commit=failing_commit)
    assert "manifest.json" not in published(store)
    assert not (store.root / BASE / STAGING).exists()


def test_publish_commit_runs_before_manifest(store: LocalObjectStore) -> None:
    seen: list[bool] = []

    def commit() -> str:
        seen.append((store.root / BASE / "manifest.json").exists())
        # Files are already in place when the table is committed.
        seen.append((store.root / BASE / "person_0.jpg").exists())
        return "ok"

    assert publish(store, 1, version="v1", commit=commit) == "ok"
    assert seen == [False, True]


def test_publish_leaves_nothing_outside_root(store: LocalObjectStore, sandbox: Path) -> None:
    publish(store, 2, version="v1")
    publish(store, 1, version="v2", staging_name="run-2")
    assert {f for f in all_files(sandbox) if not f.startswith("root/")} == set()
    assert os.listdir(sandbox) == ["root"]
