"""The talent registry end to end with real parts: ``talent`` commands on ``--out`` folders
(real Dagster runs in-process, the real face engine), a real S3 server for the lease.

The cast (real faces from insightface's ``t1.jpg``): A, B, C. Videos: ``ab`` (A, then B),
``ac`` (A elsewhere in the frame and smaller, then C), ``bc`` (B and C on screen together,
then C alone). So A and C each appear in two videos, B in two, and B and C share frames.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from modal_gpu.face_engine import FaceEngine
from modal_gpu.video import SampledFrame
from talent_assets.apps import cli
from talent_assets.core.objects import ObjectChangedError, ObjectNotFoundError
from talent_assets.infra.registry_lock import RegistryBusyError, registry_lease
from talent_assets.infra.s3 import bucket_store
from talent_assets.infra.settings import Settings
from talent_assets.infra.storage import LocalObjectStore
from tests.support import media
from tests.support.media import Appearance, Segment

pytestmark = pytest.mark.slow

CAST = (2, 0, 3)  # t1_p2, t1_p0, t1_p3: A, B, C
SIZE = (640, 360)
TALENT = [sys.executable, "-m", "talent_assets.apps.cli"]


@pytest.fixture(scope="module")
def cast() -> list[media.Person]:
    people = media.t1_cast()
    return [people[i] for i in CAST]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory, cast: list[media.Person]) -> dict[str, Path]:
    """The three short videos of the module doc (640x360, 3-4 s)."""
    folder = tmp_path_factory.mktemp("registry-media")
    scripts = {
        "ab": [
            Segment(1.5, [Appearance(0, face_px=130)]),
            Segment(1.5, [Appearance(1, face_px=130)]),
        ],
        "ac": [
            Segment(1.5, [Appearance(0, pos=(0.3, 0.5), face_px=100)]),
            Segment(1.5, [Appearance(2, face_px=130)]),
        ],
        "bc": [
            Segment(
                2.0,
                [
                    Appearance(1, pos=(0.28, 0.45), face_px=120),
                    Appearance(2, pos=(0.72, 0.45), face_px=120),
                ],
            ),
            Segment(1.5, [Appearance(2, face_px=130)]),
        ],
    }
    paths = {}
    for name, segments in scripts.items():
        paths[name] = folder / f"{name}.mp4"
        media.build_video(paths[name], segments, people=cast, size=SIZE)
    return paths


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine("bundled")


def talent(*args: str) -> str:
    """Run ``talent`` in this process; its stdout. Fails the test on a non-zero exit."""
    from contextlib import redirect_stdout
    from io import StringIO

    out = StringIO()
    with redirect_stdout(out):
        code = cli.main(list(args))
    assert code == 0, (args, out.getvalue())
    return out.getvalue()


def process(video: Path, out: Path) -> dict:
    return json.loads(talent("process", str(video), "--out", str(out), "--json"))


def talents(out: Path) -> list[dict]:
    return json.loads(talent("talents", "--out", str(out), "--json"))


def manifests(out: Path) -> dict[str, dict]:
    return {
        p.parent.name: json.loads(p.read_text())
        for p in sorted((out / "processed").glob("*/manifest.json"))
    }


def groups(out: Path) -> set[frozenset[tuple[str, float]]]:
    """The registry's partition of people as (video, first-seen time) sets: comparable
    between folders whose ids differ."""
    by_talent: dict[str, set[tuple[str, float]]] = {}
    for video, manifest in manifests(out).items():
        for r in manifest["results"]:
            by_talent.setdefault(r["talent_id"], set()).add((video, r["first_seen"]))
    return {frozenset(s) for s in by_talent.values()}


def face_of(engine: FaceEngine, image: np.ndarray) -> np.ndarray:
    faces = engine.analyse([SampledFrame(0, 0.0, image, 1.0)])
    return max(faces, key=lambda f: f.bbox[2] - f.bbox[0]).embedding


def photo(person: media.Person, folder: Path, name: str) -> Path:
    """A portrait photo of ``person``, grey and rescaled: not the pixels the videos show."""
    grey = cv2.cvtColor(cv2.cvtColor(person.image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    path = folder / name
    cv2.imwrite(str(path), cv2.resize(grey, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA))
    return path


# --- matching across videos -----------------------------------------------------------------


def test_people_across_videos_become_one_talent_each_in_any_order(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    forward, backward = tmp_path / "forward", tmp_path / "backward"
    for name in ("ab", "ac", "bc"):
        process(videos[name], forward)
    for name in ("bc", "ac", "ab"):
        process(videos[name], backward)

    # A in ab and ac, B in ab and bc, C in ac and bc: three talents of two videos each.
    listed = talents(forward)
    assert sorted(len(t["videos"]) for t in listed) == [2, 2, 2], listed
    assert all(t["talent_id"][0] == "T" and len(t["talent_id"]) == 7 for t in listed)
    found = manifests(forward)
    assert sorted(len(m["results"]) for m in found.values()) == [2, 2, 2]
    assert all(r["talent_name"] is None for m in found.values() for r in m["results"])
    # The two people of one video are never one talent.
    for manifest in found.values():
        ids = [r["talent_id"] for r in manifest["results"]]
        assert len(set(ids)) == len(ids)
    # The arrival order changes nothing.
    assert groups(forward) == groups(backward)

    appearances = pq.read_table(forward / "warehouse/talent_appearances/part-0.parquet")
    assert appearances.num_rows == 6
    assert min(appearances["similarity"].to_pylist()) >= 0.55


def test_enrolled_name_reaches_videos_before_and_after_and_no_other(
    videos: dict[str, Path], cast: list[media.Person], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    process(videos["ab"], out)
    enrolled = talent(
        "enroll", "Ada Lovelace", str(photo(cast[0], tmp_path, "a.jpg")), "--out", str(out)
    )
    talent_id = enrolled.split()[0]
    # A was already a talent: the enrolment names it (no second talent for A).
    (a_before,) = [r for r in manifests(out)["ab"]["results"] if r["talent_id"] == talent_id]
    assert a_before["talent_name"] == "Ada Lovelace" and a_before["first_seen"] == 0.0
    process(videos["ac"], out)
    named = {(video, r["talent_name"]) for video, m in manifests(out).items() for r in m["results"]}
    assert named == {("ab", "Ada Lovelace"), ("ab", None), ("ac", "Ada Lovelace"), ("ac", None)}
    # Enrolling someone not seen yet makes a talent without videos; the video that shows
    # them later gets the name.
    c_id = talent(
        "enroll", "Charles Babbage", str(photo(cast[2], tmp_path, "c.jpg")), "--out", str(out)
    ).split()[0]
    assert c_id != talent_id
    (c_row,) = [t for t in talents(out) if t["talent_id"] == c_id]
    assert c_row["videos"] == [] or c_row["videos"] == [
        v for v in c_row["videos"] if v.startswith("ac")
    ]
    process(videos["bc"], out)
    names = {r["talent_name"] for r in manifests(out)["bc"]["results"]}
    assert names == {"Charles Babbage", None}


def test_a_group_photo_or_no_face_enrols_nobody(videos: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    process(videos["ab"], out)
    group = tmp_path / "group.jpg"
    group.write_bytes(cv2.imencode(".jpg", media._insightface_image("t1.jpg"))[1].tobytes())
    empty = tmp_path / "wall.jpg"
    cv2.imwrite(str(empty), np.full((300, 300, 3), 128, np.uint8))
    for bad, reason in (
        (group, "faces; enrol from a photo of one person"),
        (empty, "no face found"),
    ):
        proc = subprocess.run(
            [*TALENT, "enroll", "Nobody", str(bad), "--out", str(out)],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=120,
            check=False,
        )
        assert proc.returncode == 1 and reason in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert all(t["name"] is None for t in talents(out))


def test_name_and_merge_reach_every_manifest_and_a_merge_of_two_people_seen_together_is_refused(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    for name in ("ab", "bc"):
        process(videos[name], out)
    found = manifests(out)
    in_ab = {r["talent_id"] for r in found["ab"]["results"]}
    in_bc = {r["talent_id"] for r in found["bc"]["results"]}
    ((b_id,),) = [tuple(in_ab & in_bc)]  # B is in both videos
    ((c_id,),) = [tuple(in_bc - in_ab)]
    talent("name", b_id, "  Grace   Hopper ", "--out", str(out))
    assert {
        r["talent_name"]
        for m in manifests(out).values()
        for r in m["results"]
        if r["talent_id"] == b_id
    } == {"Grace Hopper"}
    # B and C share frames in bc: never one person.
    proc = subprocess.run(
        [*TALENT, "merge", b_id, c_id, "--out", str(out)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1 and "on screen together" in proc.stderr, proc.stderr
    # A (only in ab) merged into C by hand: one talent from then on, named after neither.
    a_id = next(r["talent_id"] for r in manifests(out)["ab"]["results"] if r["talent_id"] != b_id)
    talent("merge", c_id, a_id, "--out", str(out))
    everyone = {r["talent_id"] for m in manifests(out).values() for r in m["results"]}
    assert everyone == {b_id, c_id}
    # The merge holds on the next update (a video of nobody new recomputes the registry).
    process(videos["ab"], out)
    assert {r["talent_id"] for r in manifests(out)["ab"]["results"]} == {b_id, c_id}
    events = [e["event"] for e in pq.read_table(out / "warehouse/talent_events").to_pylist()]
    assert events.count("name") == 1 and events.count("merge") == 1


# --- erasure --------------------------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _embeddings(out: Path) -> np.ndarray:
    tables = [pq.read_table(p) for p in (out / "warehouse/face_detections").rglob("*.parquet")]
    return np.concatenate(
        [np.asarray(t["embedding"].to_pylist(), np.float32).reshape(-1, 512) for t in tables]
    )


def test_forget_erases_the_person_everywhere_and_keeps_everyone_else(
    videos: dict[str, Path], cast: list[media.Person], engine: FaceEngine, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    for name in ("ab", "ac", "bc"):
        process(videos[name], out)
    c_photo = photo(cast[2], tmp_path, "c.jpg")
    c_id = talent("enroll", "Charles Babbage", str(c_photo), "--out", str(out)).split()[0]
    reference = face_of(engine, cv2.imread(str(c_photo)))
    assert (_embeddings(out) @ reference).max() > 0.6  # C is in the tables before
    untouched = _snapshot(out / "processed/ab")  # C is not in ab
    b_before = next(r for r in manifests(out)["bc"]["results"] if r["talent_name"] is None)

    said = talent("forget", c_id, "--out", str(out))
    # B's only still in bc is the shot it shares with C: C is pixelated there, and in the
    # representative frames (frame_<nn>.jpg) of ac and bc that show C.
    assert said.startswith(f"forgot {c_id}: 2 people in 2 videos")
    hidden = re.search(r"hidden in (\d+) other frames", said)
    assert hidden and int(hidden[1]) >= 2, said

    assert c_id not in {t["talent_id"] for t in talents(out)}
    results = [r for m in manifests(out).values() for r in m["results"]]
    assert c_id not in {r["talent_id"] for r in results} and len(results) == 4
    # No table row, no photo embedding, no image under the outputs shows C any more.
    assert (_embeddings(out) @ reference).max() < 0.35
    assert pq.read_table(out / "warehouse/talent_photos/part-0.parquet").num_rows == 0
    for image_path in (out / "processed").rglob("*.jpg"):
        faces = engine.analyse([SampledFrame(0, 0.0, cv2.imread(str(image_path)), 1.0)])
        assert all(float(f.embedding @ reference) < 0.35 for f in faces), image_path
    # Nor do the staged representative frames, which a re-run of selected_frames publishes.
    staged = list((out / "processed").rglob("representative_frames.parquet"))
    assert len(staged) == 3
    for path in staged:
        for jpeg in pq.read_table(path)["jpeg"].to_pylist():
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            faces = engine.analyse([SampledFrame(0, 0.0, image, 1.0)])
            assert all(float(f.embedding @ reference) < 0.35 for f in faces), path
    events = pq.read_table(out / "warehouse/talent_events").to_pylist()
    assert "Charles Babbage" not in json.dumps(events, default=str)
    assert [e["event"] for e in events if e["talent_id"] == c_id][-1] == "forget"
    # Everyone else's outputs are unchanged: ab byte for byte, B's entry in bc as it was.
    assert _snapshot(out / "processed/ab") == untouched
    (b_after,) = manifests(out)["bc"]["results"]
    assert b_after == b_before
    assert manifests(out)["bc"]["people_found"] == 1
    # B stays recognisable in its (pixelated-where-C-was) still.
    b_still = cv2.imread(str(out / b_after["s3_key"]))
    b_photo = face_of(engine, cast[1].image)
    assert (
        max(
            float(f.embedding @ b_photo)
            for f in engine.analyse([SampledFrame(0, 0.0, b_still, 1.0)])
        )
        > 0.5
    )


# --- one writer at a time -------------------------------------------------------------------


def test_videos_finishing_at_once_lose_no_registry_update(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    """Three ``talent process`` processes on one folder at once: every person is registered
    (the registry's lease serialises the three updates; without it the last writer would
    drop the others' people)."""
    out = tmp_path / "out"
    procs = [
        subprocess.Popen(
            [*TALENT, "process", str(videos[name]), "--out", str(out), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for name in ("ab", "ac", "bc")
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        assert "talents not updated" not in stderr
    appearances = pq.read_table(out / "warehouse/talent_appearances/part-0.parquet")
    assert appearances.num_rows == 6
    assert sorted(len(t["videos"]) for t in talents(out)) == [2, 2, 2]
    assert all(r["talent_id"] for m in manifests(out).values() for r in m["results"])
    assert not (out / "warehouse/_talent_registry.lease").exists()


def test_the_lease_admits_one_writer_and_takes_over_an_expired_one(talent_env: Settings) -> None:
    store = bucket_store(talent_env)
    key = "warehouse/_lease-test.lease"
    inside: list[str] = []
    overlap = threading.Event()

    def writer(name: str) -> None:
        with registry_lease(store, key, wait_s=60):
            if inside:
                overlap.set()
            inside.append(name)
            threading.Event().wait(0.3)
            inside.remove(name)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not overlap.is_set()
    with pytest.raises(ObjectNotFoundError):
        store.head(key)  # released

    # A holder that died leaves its lease; a live lease blocks, an expired one is taken over.
    with pytest.raises(ObjectChangedError):
        store.put_bytes_if(key, b"{}", "application/json", etag="not-the-etag")
    store.put_bytes(
        key, b'{"holder": "dead", "expires": "2000-01-01T00:00:00+00:00"}', "application/json"
    )
    with registry_lease(store, key, wait_s=5) as lease:
        assert json.loads(store.get_bytes(key))["holder"] == lease.holder
        with pytest.raises(RegistryBusyError), registry_lease(store, key, wait_s=0.5):
            pass


def test_the_local_lease_is_a_compare_and_swap(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    first = store.put_bytes_if("a/lease", b"1", "text/plain", etag=None)
    with pytest.raises(ObjectChangedError):
        store.put_bytes_if("a/lease", b"2", "text/plain", etag=None)
    with pytest.raises(ObjectChangedError):
        store.put_bytes_if("a/lease", b"2", "text/plain", etag="stale")
    store.put_bytes_if("a/lease", b"3", "text/plain", etag=first)
    assert store.get_bytes("a/lease") == b"3"
    assert [o.key for o in store.list("")] == ["a/lease"]  # the lock file is not in the store


# --- what the Dagster UI shows ----------------------------------------------------------------


def test_registry_materialisation_shows_counts_timings_and_a_gallery(
    talent_env: Settings,
    dagster_instance,
    three_person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README: the ``talent_registry`` asset shows talents, named talents, merges, timings
    and a gallery of the talents' faces. A run through the runner (as the CLI and API do),
    on a warehouse of its own in the session's bucket."""
    import base64

    from dagster import AssetKey

    from talent_assets.apps.runner import update_registry_in_process
    from talent_assets.defs.resources import build_resources
    from talent_assets.infra.curation import Registry, name_talent
    from tests.support.pipeline import run_key, upload

    monkeypatch.setenv("TALENT_WAREHOUSE", f"s3://{talent_env.bucket}/registry-ui/warehouse")
    settings = Settings.from_env()
    key = "videos/registry-ui/three.mp4"
    upload(settings, three_person[0], key)
    _, outcome = run_key(settings, dagster_instance, key)
    assert outcome.success and not outcome.registry_message, outcome

    def latest() -> dict:
        event = dagster_instance.get_latest_materialization_event(AssetKey("talent_registry"))
        assert event is not None
        metadata = event.asset_materialization.metadata
        return {name: getattr(value, "value", value) for name, value in metadata.items()}

    shown = latest()
    assert (shown["talents"], shown["named_talents"], shown["people"]) == (3, 0, 3)
    assert shown["videos"] == 1 and shown["manifests_updated"] == 1
    assert all(shown[t] >= 0 for t in ("read_s", "match_s", "write_s"))
    assert shown["match_threshold"] == 0.55
    data = shown["gallery"].split("base64,", 1)[1].rstrip(")")
    gallery = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
    assert gallery is not None and gallery.shape[1] >= 300  # three tiles side by side

    talent_id = json.loads(
        bucket_store(settings).get_bytes("processed/registry-ui/three/manifest.json")
    )["results"][0]["talent_id"]
    name_talent(Registry.for_settings(settings), talent_id, "Ada", "test")
    again = update_registry_in_process(build_resources(settings), instance=dagster_instance)
    assert again.success, again.message
    assert latest()["named_talents"] == 1


def test_erasing_a_video_twice_changes_nothing_the_second_time(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    """design.md: each erasure step is idempotent, so a forget that stopped half-way is
    finished by running it again."""
    from talent_assets.infra.erasure import erase_people
    from talent_assets.infra.warehouse import Warehouse

    out = tmp_path / "out"
    manifest = process(videos["bc"], out)
    store = LocalObjectStore(out)
    warehouse = Warehouse(store, "warehouse/")
    exemplars = np.asarray(
        warehouse.read("selected_frames", manifest["video_id"])["exemplars"][1].as_py(), np.float32
    )
    first = erase_people(warehouse, store, manifest["video_id"], {1}, exemplars)
    assert (first.people, first.files) == (1, 2) and first.faces > 0
    after_first = _snapshot(out)
    second = erase_people(warehouse, store, manifest["video_id"], {1}, exemplars)
    assert (second.people, second.faces, second.files) == (0, 0, 0)
    changed = {k for k, v in _snapshot(out).items() if after_first.get(k) != v}
    # Only the tables are rewritten (same rows); no image or manifest changes again.
    assert all(k.startswith("warehouse/") for k in changed), changed


def test_a_held_lease_is_renewed_and_a_lost_one_stops_its_writer(talent_env: Settings) -> None:
    """design.md: the holder renews its lease every third of its time, so it is never taken
    over while alive; a holder whose lease was taken over anyway learns it before writing."""
    from talent_assets.infra.registry_lock import RegistryLeaseLostError

    store = bucket_store(talent_env)
    key = "warehouse/_lease-renew.lease"
    with registry_lease(store, key, lease_s=0.9) as lease:
        threading.Event().wait(2.0)  # over twice the lease time: renewed meanwhile
        with pytest.raises(RegistryBusyError), registry_lease(store, key, wait_s=0.5):
            pass
        lease.check()
        # Someone else takes the key (as after an expiry): the next renewal fails.
        store.put_bytes(key, b'{"holder": "other", "expires": "2999-01-01T00:00:00+00:00"}', "x")
        threading.Event().wait(1.0)
        with pytest.raises(RegistryLeaseLostError):
            lease.check()
    # Not ours any more, so not deleted on the way out.
    assert json.loads(store.get_bytes(key))["holder"] == "other"
    store.delete([key])


def test_enrolment_never_renames_silently_and_merged_enrolments_stay_one(
    videos: dict[str, Path], cast: list[media.Person], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    process(videos["ab"], out)
    a_photo, b_photo = photo(cast[0], tmp_path, "a.jpg"), photo(cast[1], tmp_path, "b.jpg")
    a_id = talent("enroll", "Ada", str(a_photo), "--out", str(out)).split()[0]
    # The same person under another name: refused, pointing at `talent name`.
    proc = subprocess.run(
        [*TALENT, "enroll", "Someone Else", str(a_photo), "--out", str(out)],
        capture_output=True, text=True, env=os.environ.copy(), timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "already named 'Ada'; rename it" in proc.stderr, proc.stderr
    # Two photo-only talents merged by hand stay one talent, with both photos and one name.
    empty = tmp_path / "empty"
    first = talent("enroll", "Ada", str(a_photo), "--out", str(empty)).split()[0]
    second = talent("enroll", "Bob", str(b_photo), "--out", str(empty)).split()[0]
    talent("merge", first, second, "--out", str(empty))
    process(videos["ac"], empty)  # A joins the merged talent; C is someone else
    listed = talents(empty)
    assert sorted((t["name"] or "", len(t["videos"])) for t in listed) == [("", 1), ("Ada", 1)]
    assert {t["talent_id"] for t in listed if t["name"]} == {first}  # no orphan of Bob's photos
    photos = pq.read_table(empty / "warehouse/talent_photos/part-0.parquet")
    assert photos["talent_id"].to_pylist() == [first, first]
    assert a_id
