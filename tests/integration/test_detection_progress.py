"""Detection progress in real runs, and representative frames through the Modal branch.

Claims (issue 14, part 4): while ``face_detections`` runs it logs lines like ``decoded
1,234/5,400 frames (23%), 41 s elapsed, ~2 min left`` to the run's event log at most every
few seconds (``FaceDetector.progress_interval_s``, 5 s by default), from a local process
pool (workers report through shared counters) and from Modal (per finished chunk); and a
front end that runs the job in its own process (``talent process``:
``core.progress.listening``) receives every report, ending with done == total. Part 3 on the
Modal branch: chunk replies carry each chunk's best frames and the join picks what one local
pass picks.

Real Dagster runs on the test S3 server; Modal is the stand-in of ``test_modal_branch.py``
(the real ``FaceDetector`` class run with ``.local()``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dagster import DagsterInstance

from modal_gpu.detection import detect_video_faces
from modal_gpu.video import probe_video
from talent_assets.apps.runner import process_partition
from talent_assets.core.progress import listening
from talent_assets.core.video_id import video_id_for
from talent_assets.defs.resources import build_resources
from talent_assets.infra.settings import Settings
from tests.integration.test_modal_branch import (  # noqa: F401 (fixtures)
    DeployedAppStandIn,
    modal_cloud,
    modal_env,
)
from tests.support import fade_media
from tests.support.pipeline import latest_metadata, manifest_of, store_for, upload

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*will not have access to the mounted Volume:UserWarning"),
]

LINE = re.compile(
    r"^decoded (?P<done>[\d,]+)/(?P<total>[\d,]+) frames \((?P<pct>\d+)%\), "
    r"(?P<elapsed>.+) elapsed(, (?P<left>.+ left|time left unknown))?$"
)


@pytest.fixture(scope="module")
def fades(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fade_media.fade_clip(tmp_path_factory.mktemp("fades"))


def _progress_lines(instance: DagsterInstance, run_id: str) -> list[re.Match]:
    messages = [entry.user_message for entry in instance.all_logs(run_id)]
    return [m for m in (LINE.match(message or "") for message in messages) if m]


def _run(settings: Settings, instance: DagsterInstance, key: str, interval_s: float):
    """Run the job in this process as ``talent process`` does, listening to its progress;
    the detector logs every ``interval_s`` seconds."""
    resources = build_resources(settings)
    detector = resources["detector"]
    fields = {name: getattr(detector, name) for name in type(detector).model_fields}
    resources["detector"] = type(detector)(**{**fields, "progress_interval_s": interval_s})
    heard: list[tuple[int, int]] = []
    video_id = video_id_for(settings.bucket, key, settings.video_prefix)
    with listening(lambda done, total: heard.append((done, total))):
        outcome = process_partition(
            video_id, key, resources=resources, instance=instance, quiet=False
        )
    assert outcome.success, outcome.message
    return video_id, outcome, heard


def test_a_local_pool_run_logs_progress_and_the_listener_hears_it(
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    fades: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "TALENT_WORKERS": "2",
        "TALENT_CHUNK_S": "5",
        "TALENT_SAMPLE_FPS": "4",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    key = "videos/progress/fades.mp4"
    upload(settings, fades, key)
    video_id, outcome, heard = _run(settings, dagster_instance, key, interval_s=0.5)

    meta = latest_metadata(dagster_instance, "face_detections", video_id)
    assert meta["chunks"] == 2 and meta["worker_processes"] == 2  # the pool path
    frames = meta["frames_analyzed"]
    assert frames == 40

    lines = _progress_lines(dagster_instance, outcome.run_id)
    assert len(lines) >= 2, [m.group(0) for m in lines]  # during the run, not only at its end
    assert lines[-1].group(0).startswith(f"decoded {frames}/{frames} frames (100%), ")
    assert lines[-1].group("left") is None  # done: no estimate
    percents = [int(m.group("pct")) for m in lines]
    assert percents == sorted(percents) and percents[0] < 100
    assert all(m.group("left") for m in lines[:-1])  # each interim line estimates time left

    # The listener (what the CLI renders) heard the pool's counts as they grew, then the end.
    assert heard[-1] == (frames, frames)
    dones = [done for done, _ in heard]
    assert dones == sorted(dones) and len(set(dones)) >= 3
    assert {total for _, total in heard[:-1]} == {40}  # 10 s at 4 samples per second


def test_modal_progress_per_chunk_and_representative_frames_as_one_local_pass(
    modal_env: Settings,  # noqa: F811
    modal_cloud: DeployedAppStandIn,  # noqa: F811
    dagster_instance: DagsterInstance,
    fades: Path,
    face_engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """3-s chunks on 1-s reuse blocks: windows of 2 s straddle chunk bounds."""
    for name, value in {
        "TALENT_CHUNK_S": "3", "TALENT_STATIC_BLOCK_S": "1", "TALENT_SAMPLE_FPS": "4",
        "TALENT_REPRESENTATIVE_FRAMES": "5",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    key = "videos/progress/modal-fades.mp4"
    upload(settings, fades, key)
    video_id, outcome, heard = _run(settings, dagster_instance, key, interval_s=0.0)

    requests = modal_cloud.maps[0]
    assert [(r["start_s"], r["end_s"]) for r in requests] == [
        (0.0, 3.0), (3.0, 6.0), (6.0, 9.0), (9.0, None),
    ]  # fmt: skip
    duration = probe_video(fades).duration_s
    assert {(r["representative_frames"], r["duration_s"]) for r in requests} == {(5, duration)}
    per_chunk = [len(r.get("representative", ())) for r in modal_cloud.replies]
    assert per_chunk == [2, 2, 2, 1]  # the windows each chunk overlaps: 0-1, 1-2, 3-4, 4

    # Progress once per finished chunk (cumulative; 100 % is kept for the end), then the end.
    counts = [r["frames_analyzed"] for r in modal_cloud.replies]
    assert [done for done, _ in heard] == [min(39, sum(counts[: i + 1])) for i in range(4)] + [40]
    assert len(_progress_lines(dagster_instance, outcome.run_id)) == 5

    # The join keeps what one local pass over the whole clip keeps, byte for byte.
    _, local = detect_video_faces(
        fades, video_id=video_id, engine=face_engine, sample_fps=4.0, static_block_s=1.0,
        representative_frames=5, duration_s=duration,
    )  # fmt: skip
    manifest = manifest_of(settings, key)
    entries = manifest["representative_frames"]
    assert [e["timestamp"] for e in entries] == [
        round(c.timestamp_s, 3) for c in local.representative
    ]
    store = store_for(settings)
    assert [store.get_bytes(e["s3_key"]) for e in entries] == [c.jpeg for c in local.representative]
