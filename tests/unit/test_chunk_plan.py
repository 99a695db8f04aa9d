"""How ``face_detections`` splits a video into chunks, retries a failed local chunk, and how
``selected_frames`` decodes its chosen frames.

docs/design.md, section 4:

- "``plan_detection`` picks the chunk length (Modal 120 s; locally ``auto_chunk_seconds``,
  one chunk per worker, at least 30 s) and ``modal_gpu/chunks.py:plan_chunks`` puts bounds on
  the sampling grid, aligned to static-reuse blocks"; README: "120-s chunks" on Modal, locally
  "one worker per core";
- "``modal_gpu/fanout.py:detect_in_chunks`` (spawn process pool [...]; a chunk is retried
  once, ``VideoError`` never)";
- "``decode_chosen_frames`` decodes only those frames at full size (``video.py:read_frames``)";
  README: ``selected_frames`` "decodes only those frames".

Real parts only: the planners are pure functions fed the documented defaults (and the
defaults of ``Settings``); the retry tests run the real spawn pool on real failures (a model
pack that is not installed, a file that is not a video) and count the pools by watching the
worker processes, as ``integration/test_faults.py`` watches them to kill one; the decoding
test counts the bytes the process reads from a real H.264 file (``/proc/self/io``).
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from modal_gpu.chunks import Chunk, plan_chunks, static_block_slots
from modal_gpu.fanout import detect_in_chunks
from modal_gpu.model_packs import ModelPackError
from modal_gpu.video import VideoError, read_frames
from talent_assets.defs.resources import build_resources
from talent_assets.infra.detection import DetectorConfig, plan_detection
from talent_assets.infra.settings import Settings
from tests.support import media

TEN_MINUTES = 600.0


def starts(chunks: list[Chunk]) -> list[float]:
    return [c.start_s for c in chunks]


def lengths(chunks: list[Chunk], duration_s: float) -> list[float]:
    """Seconds of video each chunk covers (the open-ended last one up to ``duration_s``)."""
    return [(duration_s if c.end_s is None else c.end_s) - c.start_s for c in chunks]


def assert_covers(chunks: list[Chunk]) -> None:
    """Chunks in order, each starting where the previous ended, the last one open-ended."""
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].start_s == 0.0 and chunks[-1].end_s is None
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(chunks))


# --- the chunk plan --------------------------------------------------------------------------


def test_modal_chunks_are_120_s() -> None:
    """design/README: on Modal, 120-s chunks. A 10-minute video is five chunks of 120 s; a
    90-minute one 45 (the "~45 GPUs" of ``MODAL_CHUNK_S``'s comment)."""
    chunks = plan_detection(DetectorConfig(kind="modal", model_pack="buffalo_l"), TEN_MINUTES)
    assert_covers(chunks)
    assert starts(chunks) == [0.0, 120.0, 240.0, 360.0, 480.0]
    assert lengths(chunks, TEN_MINUTES) == [120.0] * 5
    assert len(plan_detection(DetectorConfig(kind="modal"), 90 * 60.0)) == 45


def test_the_documented_settings_give_120_s_chunks_on_modal() -> None:
    """README: with ``TALENT_DETECTOR=modal`` and ``TALENT_MODEL_PACK=buffalo_l`` (nothing
    else set) the run's detector resource splits a video into 120-s chunks."""
    settings = Settings.from_env({"TALENT_DETECTOR": "modal", "TALENT_MODEL_PACK": "buffalo_l"})
    detector = build_resources(settings)["detector"]
    assert lengths(detector.plan(TEN_MINUTES), TEN_MINUTES) == [120.0] * 5


def test_local_chunks_are_one_per_worker() -> None:
    """design: locally one chunk per worker: a 10-minute video on 2 workers is two 300-s
    chunks, on 4 workers four 150-s chunks."""
    two = plan_detection(DetectorConfig(workers=2), TEN_MINUTES)
    assert_covers(two)
    assert starts(two) == [0.0, 300.0]
    four = plan_detection(DetectorConfig(workers=4), TEN_MINUTES)
    assert starts(four) == [0.0, 150.0, 300.0, 450.0]
    # One worker: the whole video in one chunk.
    assert plan_detection(DetectorConfig(workers=1), TEN_MINUTES) == [Chunk(0, 0.0, None)]


def test_local_default_is_one_chunk_per_core() -> None:
    """README: "one worker per core" (``TALENT_WORKERS`` unset): the default settings' plan
    of a video long enough for a minute per core is one chunk per core."""
    cores = os.cpu_count() or 1
    duration = 60.0 * cores
    detector = build_resources(Settings.from_env({}))["detector"]
    assert len(detector.plan(duration)) == cores
    assert len(plan_detection(DetectorConfig(), duration)) == cores


def test_local_chunks_are_at_least_30_s() -> None:
    """design: locally each chunk is at least 30 s: a 40-s video on 4 workers is not four
    10-s chunks but a 30-s chunk and the remaining 10 s; a 2-minute one on 8 workers four
    30-s chunks (not eight of 15 s)."""
    chunks = plan_detection(DetectorConfig(workers=4), 40.0)
    assert_covers(chunks)
    assert starts(chunks) == [0.0, 30.0]
    assert lengths(chunks, 40.0) == [30.0, 10.0]  # the last chunk is what is left
    many = plan_detection(DetectorConfig(workers=8), 120.0)
    assert lengths(many, 120.0) == [30.0] * 4


def test_chunks_grow_to_static_reuse_block_bounds() -> None:
    """design: bounds aligned to static-reuse blocks (5 s by default). 100 s on 3 workers
    asks for 34-s chunks; they grow to 35 s so that no 5-s block straddles two chunks. With
    reuse off (``static_block_s=0``) nothing needs aligning and the chunks stay 34 s."""
    aligned = plan_detection(DetectorConfig(workers=3), 100.0)
    assert starts(aligned) == [0.0, 35.0, 70.0]
    unaligned = plan_detection(DetectorConfig(workers=3, static_block_s=0), 100.0)
    assert starts(unaligned) == [0.0, 34.0, 68.0]


@pytest.mark.parametrize(
    ("kind", "workers", "chunk_s", "sample_fps", "static_block_s", "duration_s"),
    [
        ("local", 3, 0.0, 2.0, 5.0, 100.0),
        ("local", 7, 0.0, 2.0, 5.0, 1234.5),
        ("local", 2, 0.0, 3.0, 4.0, 95.0),
        ("local", 2, 47.0, 2.0, 5.0, 300.0),  # TALENT_CHUNK_S=47
        ("local", 5, 0.0, 0.5, 5.0, 611.0),
        ("modal", 0, 0.0, 2.0, 5.0, 5400.0),
        ("modal", 0, 0.0, 3.0, 7.0, 1000.0),
        ("modal", 0, 50.0, 1.0, 15.0, 400.0),
    ],
)
def test_every_chunk_bound_is_a_block_bound(
    kind: str,
    workers: int,
    chunk_s: float,
    sample_fps: float,
    static_block_s: float,
    duration_s: float,
) -> None:
    """design: chunk bounds fall on the sampling grid *and* on static-reuse block bounds
    (whole multiples of the block's sampling slots), whatever the settings."""
    config = DetectorConfig(
        kind=kind,  # type: ignore[arg-type]
        workers=workers,
        chunk_s=chunk_s,
        sample_fps=sample_fps,
        static_block_s=static_block_s,
    )
    chunks = plan_detection(config, duration_s)
    assert_covers(chunks)
    block = static_block_slots(sample_fps, static_block_s)
    assert block > 1
    for chunk in chunks[1:]:
        slot = chunk.start_s * sample_fps
        assert slot == pytest.approx(round(slot), abs=1e-9)
        assert round(slot) % block == 0, (chunk, block)
    wanted = chunk_s or (120.0 if kind == "modal" else 0.0)
    if wanted:  # grown to the next block bound, never shrunk
        assert all(wanted <= x < wanted + block / sample_fps for x in lengths(chunks, 1e9)[:-1])


def test_plan_chunks_of_the_documented_defaults_match_plan_detection() -> None:
    """The public planner of ``modal_gpu`` gives the same 120-s chunks for the same inputs,
    aligned to 10 sampling slots (5 s at 2 samples per second)."""
    assert static_block_slots(2.0, 5.0) == 10
    direct = plan_chunks(TEN_MINUTES, 2.0, 120.0, align_slots=10)
    assert direct == plan_detection(DetectorConfig(kind="modal"), TEN_MINUTES)


# --- local chunk retries -----------------------------------------------------------------------


class PoolWatcher:
    """Watches the worker processes this process starts and counts the process pools they
    belong to. A pool's workers all start when its chunks are submitted (seconds before any
    of them can finish: each imports the engine), and the next pool starts only after the
    previous one has shut down, so a worker first seen after every earlier one has gone
    starts a new pool."""

    def __init__(self) -> None:
        self._baseline = {p.pid for p in multiprocessing.active_children()}
        self._seen: dict[int, list[float]] = {}  # pid -> [first seen, last seen]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for process in multiprocessing.active_children():
                if process.pid not in self._baseline:
                    self._seen.setdefault(process.pid, [now, now])[1] = now
            time.sleep(0.005)

    def __enter__(self) -> PoolWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def pools(self) -> list[int]:
        """Workers per pool, in the order the pools ran."""
        sizes: list[int] = []
        last_seen = -math.inf
        for first, last in sorted(self._seen.values()):
            if first > last_seen:
                sizes.append(0)
            sizes[-1] += 1
            last_seen = max(last_seen, last)
        return sizes


TWO_CHUNKS = plan_chunks(40.0, 2.0, 20.0)  # two chunks, two workers: the pool path


def test_a_failing_chunk_is_retried_once_in_a_fresh_pool_then_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """design: "a chunk is retried once": a chunk that fails for a reason other than bad input
    (here: the configured model pack is not installed, so each worker's engine fails to
    load) runs a second time, in a fresh pool, and its error then propagates."""
    monkeypatch.setenv("TALENT_MODEL_ROOT", str(tmp_path / "no-models"))  # the workers' root
    video = tmp_path / "unused.mp4"  # never opened: the engine loads first
    with PoolWatcher() as watcher, pytest.raises(ModelPackError, match="buffalo_l"):
        detect_in_chunks(
            video, video_id="v", pack="buffalo_l", sample_fps=2.0, chunks=TWO_CHUNKS, workers=2
        )
    assert watcher.pools() == [2, 2]  # the first attempt's pool, then the retry's


def test_bad_input_in_a_chunk_is_never_retried(tmp_path: Path) -> None:
    """design: "``VideoError`` never [retried]": a file that is not a video fails in the
    first pool, and no second pool is started."""
    not_a_video = media.text_as_mp4(tmp_path)
    with PoolWatcher() as watcher, pytest.raises(VideoError, match="not a video"):
        detect_in_chunks(
            not_a_video,
            video_id="v",
            pack="bundled",
            sample_fps=2.0,
            chunks=TWO_CHUNKS,
            workers=2,
        )
    assert watcher.pools() == [2]


# --- selected_frames decodes only the chosen frames -------------------------------------------

NOISE_FPS = 10
NOISE_FRAMES = 300  # 30 s
KEYFRAME_EVERY = 10  # 1 s


@pytest.fixture(scope="module")
def noise_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s of random pixels (every frame costs the same ~27 KB, so bytes read measure frames
    decoded), H.264 with a keyframe every second, as cameras and encoders commonly write."""
    path = tmp_path_factory.mktemp("decode") / "noise.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=NOISE_FPS)
        stream.width, stream.height, stream.pix_fmt = 192, 108, "yuv420p"
        stream.time_base = Fraction(1, NOISE_FPS)
        stream.options = {
            "preset": "ultrafast",
            "crf": "10",
            "x264-params": f"keyint={KEYFRAME_EVERY}:min-keyint={KEYFRAME_EVERY}:scenecut=0",
        }
        for i in range(NOISE_FRAMES):
            pixels = rng.integers(0, 256, (108, 192, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="bgr24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def bytes_read_by_this_process() -> int:
    """``rchar`` of ``/proc/self/io``: bytes this process (all its threads) has read."""
    with open("/proc/self/io") as io:
        for line in io:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_read_frames_decodes_only_around_the_chosen_frames(noise_video: Path) -> None:
    """README/design: ``selected_frames`` decodes only the chosen frames (``read_frames``):
    it seeks to the keyframe before each one instead of decoding the video up to it. Two
    frames near the end of a 30-s video cost well under a tenth of the bytes that decoding up
    to them reads, and they are the very frames a full decode shows."""
    chosen = [255, 285]  # 25.5 s and 28.5 s
    before = bytes_read_by_this_process()
    frames = read_frames(noise_video, chosen)
    seeking = bytes_read_by_this_process() - before

    before = bytes_read_by_this_process()
    sequential = media.read_frames(noise_video, [i / NOISE_FPS for i in chosen])
    from_the_start = bytes_read_by_this_process() - before

    assert from_the_start > 0.9 * noise_video.stat().st_size  # the measure sees decoding
    assert seeking < 0.1 * from_the_start, (seeking, from_the_start)
    assert sorted(frames) == chosen
    for index, reference in zip(chosen, sequential, strict=True):
        np.testing.assert_array_equal(frames[index], reference)
