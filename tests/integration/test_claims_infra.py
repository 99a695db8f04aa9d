"""Infrastructure claims of docs/design.md that had no test, each checked with real parts.

The real SeaweedFS server on loopback, real Dagster runs on real instances, the real bundled
face engine; nothing is mocked. Counting requests uses botocore's public event hooks, which
observe a client without changing what it does.

- ``resolve_source_key``: "the key from the ``talent/key`` tag (else the ``videos`` table, else
  a listing) ... requires that it hashes to the partition"; "a run tag cannot point a
  partition at another object";
- "``VideoCache.fetch`` downloads once per ETag";
- "a mismatch [between clusters and faces] fails as ``out_of_date``";
- "``s3_url`` is a SigV4 presigned GET link valid for 7 days";
- "Asset retry policies: ``raw_video`` and ``selected_frames`` 2 retries from 2 s,
  ``face_detections`` 2 from 5 s, exponential; ``identity_clusters`` none";
- "S3 clients use botocore standard retries (5 attempts)";
- "Nothing is read at import: ``definitions.py`` is a lazy ``@dg.definitions`` that calls
  ``build_definitions(Settings.from_env())`` when Dagster loads the location";
- README: the ``bundled`` pack is "copied into ``$TALENT_MODEL_ROOT/models/bundled/``".
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from dagster import (
    AssetKey,
    Backoff,
    DagsterEventType,
    DagsterInstance,
    RetryPolicy,
    materialize,
)
from dagster import build_resources as dagster_build_resources
from dagster._core.definitions.dependency import NodeHandle

from modal_gpu.model_packs import MODEL_PACKS
from modal_gpu.s3 import s3_client, s3_client_from_env
from talent_assets.apps.runner import first_failure_with_kind, process_partition
from talent_assets.core.talent_frames import cluster_rows_for_faces
from talent_assets.core.video_id import output_stem, video_id_for
from talent_assets.defs.assets import ALL_ASSETS
from talent_assets.defs.partitions import videos_partitions
from talent_assets.defs.resources import build_resources
from talent_assets.defs.tags import SOURCE_KEY_TAG
from talent_assets.infra.settings import Settings
from talent_assets.infra.video_cache import VideoCache
from tests.support.pipeline import (
    manifest_of,
    output_keys,
    run_key,
    store_for,
    upload,
    warehouse,
    warehouse_keys,
)

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / "docs" / "design.md"
LOCATION = ("-m", "talent_assets.definitions")
ASSETS = ("raw_video", "face_detections", "identity_clusters", "selected_frames")


def _design_text() -> str:
    """docs/design.md with its line breaks folded, so sentences can be matched whole."""
    return " ".join(DESIGN.read_text().split())


def _step_failures(events: list[Any]) -> list[Any]:
    return [e for e in events if e.event_type == DagsterEventType.STEP_FAILURE]


def _retries(events: list[Any]) -> list[Any]:
    return [e for e in events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]


def _materialize(
    settings: Settings,
    instance: DagsterInstance,
    video_id: str,
    selection: list[str],
) -> Any:
    """Materialise ``selection`` of one partition through Dagster's API, as the UI's
    "Materialize selected" does: no ``talent/key`` tag."""
    instance.add_dynamic_partitions(videos_partitions.name, [video_id])
    return materialize(
        ALL_ASSETS,
        selection=selection,
        partition_key=video_id,
        instance=instance,
        resources=build_resources(settings),
        raise_on_error=False,
    )


# --- resolve_source_key: tag, videos table, listing; the key must hash to the partition ----------


def test_a_partition_without_tag_or_videos_row_finds_its_object_by_listing(
    talent_env: Settings, dagster_instance: DagsterInstance, no_face_clip: Path
) -> None:
    """design.md §4: ``resolve_source_key`` takes the key from the tag, "else the ``videos``
    table, else a listing". A partition materialised without the tag and with no ``videos``
    row finds its object by listing the video prefix, picking the one object that hashes to
    it (a decoy listed before it does not); a partition no listed object hashes to fails as
    ``missing_object``."""
    key = "videos/infra-listing/clip.mp4"
    decoy = "videos/infra-listing/a-decoy.mp4"  # listed first (lexicographic order)
    upload(talent_env, no_face_clip, decoy)
    upload(talent_env, no_face_clip, key)
    video_id = video_id_for(talent_env.bucket, key, talent_env.video_prefix)
    tables = warehouse(talent_env)
    assert tables.read("videos", video_id) is None  # nothing to fall back on but the listing

    result = _materialize(talent_env, dagster_instance, video_id, ["raw_video"])
    assert SOURCE_KEY_TAG not in result.dagster_run.tags
    assert result.success, first_failure_with_kind(result.all_events)
    row = tables.read("videos", video_id)
    assert row is not None and row.num_rows == 1
    assert row["key"][0].as_py() == key
    assert row["video_id"][0].as_py() == video_id
    assert row["etag"][0].as_py() == store_for(talent_env).head(key).etag

    # No tag, no row and nothing listed with this id: a clear missing_object failure.
    ghost = video_id_for(talent_env.bucket, "videos/infra-listing/ghost.mp4", "videos/")
    failed = _materialize(talent_env, dagster_instance, ghost, ["raw_video"])
    assert not failed.success
    message, kind = first_failure_with_kind(failed.all_events)
    assert kind == "missing_object"
    assert ghost in message and "\n" not in message
    assert tables.read("videos", ghost) is None


def test_a_tag_cannot_point_a_partition_at_another_object(
    talent_env: Settings, dagster_instance: DagsterInstance, no_face_clip: Path
) -> None:
    """design.md §4/§6: the key "must hash to the partition"; "a run tag cannot point a
    partition at another object". A run of partition A whose ``talent/key`` tag names object
    B (a real, valid video) fails once as ``bad_request`` with a one-line reason naming both,
    and writes nothing for either video."""
    key_a = "videos/infra-hash/a.mp4"
    key_b = "videos/infra-hash/b.mp4"
    upload(talent_env, no_face_clip, key_a)
    upload(talent_env, no_face_clip, key_b)
    id_a = video_id_for(talent_env.bucket, key_a, talent_env.video_prefix)
    id_b = video_id_for(talent_env.bucket, key_b, talent_env.video_prefix)
    assert id_a != id_b

    # The CLI's and API's way in: tags talent/key=B on partition A.
    outcome = process_partition(
        id_a, key_b, resources=build_resources(talent_env), instance=dagster_instance
    )
    assert not outcome.success
    assert outcome.error_kind == "bad_request"
    assert key_b in outcome.message and id_a in outcome.message
    assert "\n" not in outcome.message

    run = dagster_instance.get_run_by_id(outcome.run_id)
    assert run is not None and run.tags[SOURCE_KEY_TAG] == key_b
    events = [e.dagster_event for e in dagster_instance.all_logs(outcome.run_id)]
    events = [e for e in events if e is not None]
    assert [e.step_key for e in _step_failures(events)] == ["raw_video"]
    assert not _retries(events)  # bad input is never retried
    for video_id in (id_a, id_b):
        assert warehouse_keys(talent_env, video_id) == []
    for key in (key_a, key_b):
        assert output_keys(talent_env, key) == []


# --- the video cache: one download per ETag ------------------------------------------------------


class _GetObjectCounter:
    """Counts GetObject requests a client sends, through botocore's public event hooks."""

    def __init__(self, client: Any) -> None:
        self.keys: list[str] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-call.s3.GetObject", self._seen)

    def _seen(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.keys.append(params["url_path"].rsplit("/", 1)[-1])

    def count(self, name: str) -> int:
        with self._lock:
            return sum(1 for k in self.keys if k == name)


def test_video_cache_downloads_once_per_etag(talent_env: Settings, tmp_path: Path) -> None:
    """design.md §4: "``VideoCache.fetch`` downloads once per ETag". The same object fetched
    twice is downloaded once (GetObject requests counted on the real S3 server's client, and
    the cached file is the very same file); an identical re-upload keeps its ETag and is not
    downloaded again; a re-upload with new content (new ETag) is downloaded again."""
    store = store_for(talent_env)
    counter = _GetObjectCounter(store.client)
    name = "cache-probe.mp4"
    key = f"videos/infra-cache/{name}"
    first_bytes = b"version one " * 1000
    store.put_bytes(key, first_bytes, "video/mp4")
    cache = VideoCache(tmp_path / "video-cache")

    etag = store.head(key).etag
    path = cache.fetch(store, key, etag)
    assert path.read_bytes() == first_bytes
    assert counter.count(name) == 1
    stat = path.stat()

    again = cache.fetch(store, key, etag)
    assert again == path
    assert counter.count(name) == 1  # no second download
    assert (again.stat().st_ino, again.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)

    store.put_bytes(key, first_bytes, "video/mp4")  # same content: same ETag
    assert store.head(key).etag == etag
    assert cache.fetch(store, key, etag) == path
    assert counter.count(name) == 1

    second_bytes = b"version two " * 1000
    store.put_bytes(key, second_bytes, "video/mp4")  # new content: new ETag
    new_etag = store.head(key).etag
    assert new_etag != etag
    new_path = cache.fetch(store, key, new_etag)
    assert counter.count(name) == 2
    assert new_path != path
    assert new_path.read_bytes() == second_bytes
    assert cache.fetch(store, key, new_etag) == new_path
    assert counter.count(name) == 2
    # Only the two versions, nothing half-written.
    assert sorted(p.name for p in cache.root.iterdir()) == sorted([path.name, new_path.name])


# --- clusters out of date with faces -------------------------------------------------------------


@pytest.fixture
def processed_three_person(
    talent_env: Settings, dagster_instance: DagsterInstance, three_person
) -> tuple[str, str, dict[str, Any]]:
    """The three-person clip uploaded and run through all four assets: (key, video id,
    manifest)."""
    path, _ = three_person
    key = "videos/infra-stale/three.mp4"
    upload(talent_env, path, key)
    video_id, outcome = run_key(talent_env, dagster_instance, key)
    assert outcome.success, outcome.message
    manifest = manifest_of(talent_env, key)
    assert manifest is not None and manifest["people_found"] == 3
    return key, video_id, manifest


@pytest.mark.slow
def test_clusters_out_of_date_with_faces_fail_as_out_of_date(
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    processed_three_person: tuple[str, str, dict[str, Any]],
) -> None:
    """design.md §4/§6: ``load_clustered_faces`` joins people to faces on (frame_index,
    face_index) and "a mismatch fails as ``out_of_date``" (an input failure: one line, never
    retried, nothing published). Detection is re-materialised at another sampling rate, so
    the ``identity_clusters`` rows no longer match the faces; ``selected_frames`` alone then
    fails with that kind and the earlier outputs stay as they were."""
    key, video_id, manifest = processed_three_person
    store = store_for(talent_env)
    tables = warehouse(talent_env)
    selected_before = tables.read("selected_frames", video_id)

    # Published outputs only: re-running face_detections restages its representative frames
    # (under .staging/, which selected_frames reads and nobody else), as it should.
    def published() -> dict[str, bytes]:
        keys = output_keys(talent_env, key)
        return {k: store.get_bytes(k) for k in keys if "/.staging/" not in k}

    outputs_before = published()

    resampled = dataclasses.replace(talent_env, sample_fps=1.0)
    redetected = _materialize(resampled, dagster_instance, video_id, ["face_detections"])
    assert redetected.success, first_failure_with_kind(redetected.all_events)
    faces = tables.read("face_detections", video_id)
    clusters = tables.read("identity_clusters", video_id)
    assert faces is not None and clusters is not None
    assert (
        cluster_rows_for_faces(
            faces["frame_index"].to_pylist(),
            faces["face_index"].to_pylist(),
            clusters["frame_index"].to_pylist(),
            clusters["face_index"].to_pylist(),
        )
        is None
    ), "the re-detection should have left the clusters out of date"

    result = _materialize(talent_env, dagster_instance, video_id, ["selected_frames"])
    assert not result.success
    message, kind = first_failure_with_kind(result.all_events)
    assert kind == "out_of_date"
    assert "identity_clusters" in message and "face_detections" in message
    assert "out of date" in message and "\n" not in message
    assert [e.step_key for e in _step_failures(result.all_events)] == ["selected_frames"]
    assert not _retries(result.all_events)

    # Nothing published: the outputs and the selected_frames table are the first run's.
    assert manifest_of(talent_env, key) == manifest
    assert published() == outputs_before
    after = tables.read("selected_frames", video_id)
    assert after is not None and selected_before is not None and after.equals(selected_before)


# --- s3_url: a SigV4 presigned GET link valid for 7 days ---------------------------------------


@pytest.mark.slow
def test_manifest_s3_url_is_a_sigv4_link_valid_for_seven_days(
    talent_env: Settings, processed_three_person: tuple[str, str, dict[str, Any]], s3_server
) -> None:
    """design.md §5: "``s3_url`` is a SigV4 presigned GET link valid for 7 days". Every
    result's link is signed with AWS4-HMAC-SHA256 for 604800 s (the doc's 7 days) from about
    now, fetches exactly the uploaded frame, and never carries the secret key. (As any SigV4
    link does, it names the access key *id* in ``X-Amz-Credential``; only metadata is kept
    free of it, see ``test_claims.py``.)"""
    key, _, manifest = processed_three_person
    days = re.search(r"`s3_url` is a SigV4 presigned GET link valid for (\d+) days", _design_text())
    assert days, "design.md no longer states how long s3_url is valid"
    want_seconds = int(days.group(1)) * 24 * 3600
    assert want_seconds == 604800

    store = store_for(talent_env)
    results = manifest["results"]
    assert len(results) == 3
    folder = f"{talent_env.output_prefix}{output_stem(key, talent_env.video_prefix)}/"
    manifest_text = store.get_bytes(folder + "manifest.json").decode()
    assert s3_server.secret_key not in manifest_text
    for entry in results:
        url = entry["s3_url"]
        parts = urlsplit(url)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
        assert int(query["X-Amz-Expires"]) == want_seconds
        signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 600
        assert query["X-Amz-Credential"].split("/")[0] == s3_server.access_key
        assert re.fullmatch(r"[0-9a-f]{64}", query["X-Amz-Signature"])
        assert s3_server.secret_key not in url
        object_key = parts.path.split(f"/{talent_env.bucket}/", 1)[1]
        assert object_key == entry["s3_key"]
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == store.get_bytes(object_key)


# --- retry policies: the code agrees with design.md ----------------------------------------------


def _documented_retry_policies() -> dict[str, RetryPolicy | None]:
    """The asset retry policies design.md states, parsed from its "Retries." sentence."""
    text = _design_text()
    found = re.search(r"\*\*Retries\.\*\* Asset retry policies: (.*?none)\.", text)
    assert found, "design.md has no 'Asset retry policies: ...' sentence"
    sentence = found.group(1)
    backoff = Backoff.EXPONENTIAL if "exponential" in sentence else None
    assert backoff is not None, sentence
    policies: dict[str, RetryPolicy | None] = {}
    pattern = r"((?:`\w+`(?: and |, )?)+) (\d+)(?: retries)? from (\d+) s"
    for names, retries, delay in re.findall(pattern, sentence):
        for name in re.findall(r"`(\w+)`", names):
            policies[name] = RetryPolicy(
                max_retries=int(retries), delay=int(delay), backoff=backoff
            )
    for name in re.findall(r"`(\w+)` none", sentence):
        policies[name] = None
    return policies


def test_asset_retry_policies_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """design.md §6: "Asset retry policies: ``raw_video`` and ``selected_frames`` 2 retries
    from 2 s, ``face_detections`` 2 from 5 s, exponential; ``identity_clusters`` none". The
    sentence is parsed, so the doc and the code location Dagster loads
    (``talent_assets.definitions:defs``) must agree: each asset's own policy and the one the
    ``process_video`` job applies to its step."""
    documented = _documented_retry_policies()
    assert set(documented) == set(ASSETS)
    assert documented["face_detections"] == RetryPolicy(2, 5, Backoff.EXPONENTIAL)

    for name in list(os.environ):
        if name.startswith("TALENT_"):
            monkeypatch.delenv(name)
    from talent_assets.definitions import defs

    loaded = defs()
    job = loaded.resolve_job_def("process_video")
    for name in ASSETS:
        policy = loaded.resolve_assets_def(AssetKey(name)).op.retry_policy
        assert policy == documented[name], name
        assert job.get_retry_policy_for_handle(NodeHandle(name, None)) == documented[name], name


# --- S3 clients: botocore standard retries, 5 attempts -------------------------------------------


def _dead_endpoint() -> str:
    """An endpoint on loopback where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _pipeline_clients(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The S3 clients the project builds: the pipeline's (``TalentStorage`` from the
    settings' resources) and the Modal worker's (``s3_client_from_env``)."""
    monkeypatch.setenv("TALENT_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "infra-test-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "infra-test-secret")
    # Resources initialised as a run initialises them (their EnvVars resolved).
    with dagster_build_resources(build_resources(Settings.from_env())) as resources:
        pipeline = resources.storage.input_store().client
    return {
        "pipeline": pipeline,
        "worker": s3_client_from_env(),
        "factory default": s3_client(endpoint_url=endpoint, region="us-east-1"),
    }


def test_s3_clients_use_botocore_standard_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """design.md §6: "S3 clients use botocore standard retries": the pipeline's, the
    worker's and the factory's clients are configured in botocore's ``standard`` mode."""
    for name, client in _pipeline_clients(_dead_endpoint(), monkeypatch).items():
        assert client.meta.config.retries["mode"] == "standard", name


def test_s3_clients_make_five_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    """design.md §6: "S3 clients use botocore standard retries (5 attempts)". The clients'
    effective ``total_max_attempts`` is 5, and a request to a port where nothing listens is
    sent exactly 5 times (counted with botocore's ``before-send`` event hook) before it fails
    with ``EndpointConnectionError``."""
    from botocore.exceptions import EndpointConnectionError

    clients = _pipeline_clients(_dead_endpoint(), monkeypatch)
    attempts: dict[str, int] = {}
    for name, client in clients.items():
        sent: list[float] = []
        client.meta.events.register(
            "before-send.s3.HeadObject", lambda sent=sent, **_: sent.append(time.monotonic())
        )
        with pytest.raises(EndpointConnectionError):
            client.head_object(Bucket="talent", Key="videos/nothing-listens.mp4")
        attempts[name] = len(sent)
    totals = {n: c.meta.config.retries.get("total_max_attempts") for n, c in clients.items()}
    assert attempts == {name: 5 for name in clients}, f"attempts {attempts}, config {totals}"
    assert totals == {name: 5 for name in clients}


# --- nothing read at import; the lazy code location reads the settings when loaded -------------


def _python(code: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TALENT_", "DAGSTER_"))}
    return {**env, **extra}


def test_importing_the_code_location_reads_no_setting(tmp_path: Path) -> None:
    """design.md §7: "Nothing is read at import: ``definitions.py`` is a lazy
    ``@dg.definitions`` that calls ``build_definitions(Settings.from_env())`` when Dagster
    loads the location". With ``TALENT_SAMPLE_FPS=abc`` importing the module succeeds, while
    calling the lazy ``defs`` (what Dagster does on load) fails naming the variable; a good
    value set after the import is the one the loaded definitions use."""
    env = _clean_env(TALENT_SAMPLE_FPS="abc", DAGSTER_HOME=str(tmp_path))
    proc = _python(
        """
        import os
        import talent_assets.definitions as location
        print("imported", type(location.defs).__name__, flush=True)
        try:
            location.defs()  # what Dagster calls when it loads the location
        except Exception as err:
            print("load failed:", type(err).__name__, err, flush=True)
        else:
            print("loaded with a bad value")
        os.environ["TALENT_SAMPLE_FPS"] = "3.5"
        print("sample_fps", location.defs().resources["detector"].sample_fps)
        """,
        env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "imported LazyDefinitions", proc.stdout
    assert lines[1].startswith("load failed: SettingsError"), proc.stdout
    assert "TALENT_SAMPLE_FPS" in lines[1] and "'abc'" in lines[1]
    assert lines[2:] == ["sample_fps 3.5"]


@pytest.mark.slow
def test_dagster_refuses_to_load_the_location_naming_the_bad_variable(tmp_path: Path) -> None:
    """design.md §7 (as above), through Dagster's own CLI: ``dagster definitions validate -m
    talent_assets.definitions`` fails and names ``TALENT_SAMPLE_FPS`` when it is ``abc``."""
    env = _clean_env(TALENT_SAMPLE_FPS="abc", DAGSTER_HOME=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", *LOCATION],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "TALENT_SAMPLE_FPS" in out and "abc" in out


# --- TALENT_MODEL_ROOT ---------------------------------------------------------------------------


@pytest.fixture
def model_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment whose HOME is an empty temp folder (so ``~/.insightface`` is
    there, not the user's)."""
    home = tmp_path / "home"
    home.mkdir()
    return _clean_env(HOME=str(home))


def test_the_engine_copies_the_bundled_pack_under_talent_model_root(
    tmp_path: Path, model_env: dict[str, str]
) -> None:
    """README "Face engine": the ``bundled`` pack's files "are copied into
    ``$TALENT_MODEL_ROOT/models/bundled/``" (design.md §7: the worker reads
    ``TALENT_MODEL_ROOT`` itself). A face engine built in a process with the variable set
    loads its two models from there, and nothing lands in the default ``~/.insightface``;
    unset, the README's default ``~/.insightface`` is used."""
    code = """
        from modal_gpu.face_engine import FaceEngine
        engine = FaceEngine("bundled")
        print("engine", engine.pack)
        """
    root = tmp_path / "model-root"
    home = Path(model_env["HOME"])
    with_root = _python(code, {**model_env, "TALENT_MODEL_ROOT": str(root)}, cwd=tmp_path)
    assert with_root.returncode == 0, with_root.stderr
    pack = root / "models" / "bundled"
    assert sorted(p.name for p in pack.iterdir()) == sorted(MODEL_PACKS["bundled"])
    assert all((pack / name).stat().st_size > 1_000_000 for name in MODEL_PACKS["bundled"])
    assert not (home / ".insightface").exists()

    default = _python(code, model_env, cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    default_pack = home / ".insightface" / "models" / "bundled"
    assert sorted(p.name for p in default_pack.iterdir()) == sorted(MODEL_PACKS["bundled"])
