"""Videos with a display rotation (phone clips stored landscape, shown portrait).

README: the ``videos`` table records ``width, height`` and ``rotation``; "Boxes and landmarks
are in display pixels of the full frame (rotation applied)". The probe must report the
displayed size and the rotation, the sampler must hand the face engine upright frames, and the
boxes must land on the person where a viewer sees them, through a real run as well.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from dagster import DagsterInstance

from modal_gpu.video import iter_sampled_frames, probe_video, read_frames
from talent_assets.core.clustering import box_iou
from talent_assets.infra.settings import Settings
from tests.support import media
from tests.support.pipeline import (
    latest_metadata,
    manifest_of,
    run_key,
    store_for,
    upload,
    warehouse,
)

# Displayed portrait 720x1280, the face in the upper left quarter: where it lands in the
# stored (landscape) pixels is far from where it is shown, so an unrotated frame misses it.
SIZE = (720, 1280)
FACE_POS = (0.35, 0.3)


def _portrait(directory: Path, rotate: int) -> media.VideoTruth:
    return media.build_video(
        directory / f"portrait{rotate:+d}.mp4",
        [media.Segment(2.0, [media.Appearance(1, pos=FACE_POS, face_px=170)])],
        size=SIZE,
        fps=10,
        rotate=rotate,
    )


@pytest.fixture(scope="module")
def portrait_minus_90(tmp_path_factory: pytest.TempPathFactory) -> media.VideoTruth:
    """The phone case: display rotation -90 (pixels stored 1280x720, shown 720x1280)."""
    return _portrait(tmp_path_factory.mktemp("rotation"), -90)


def _stored_frame(path: Path) -> np.ndarray:
    """The first frame as stored in the file, without its display rotation."""
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="bgr24")


def _iou(a, b) -> float:
    return float(box_iou(np.array([a], float), np.array([b], float))[0, 0])


@pytest.mark.parametrize("rotate", [-90, 90, 180])
def test_probe_reports_the_displayed_size_and_the_rotation(
    rotate: int, tmp_path: Path, portrait_minus_90: media.VideoTruth
) -> None:
    truth = portrait_minus_90 if rotate == -90 else _portrait(tmp_path, rotate)
    stored = _stored_frame(truth.path)
    info = probe_video(truth.path)
    # The display matrix says "turn -rotate degrees counter-clockwise", i.e. clockwise.
    assert info.rotation == (-rotate) % 360
    assert (info.width, info.height) == truth.size
    if rotate % 180:
        assert stored.shape[:2] == (SIZE[0], SIZE[1])  # stored landscape: height 720
    assert info.frames == truth.n_frames and info.duration_s == pytest.approx(2.0)


@pytest.mark.parametrize("rotate", [-90, 90, 180])
def test_sampled_frames_are_upright_and_faces_land_on_the_person(
    rotate: int, tmp_path: Path, portrait_minus_90: media.VideoTruth, face_engine
) -> None:
    truth = portrait_minus_90 if rotate == -90 else _portrait(tmp_path, rotate)
    frames = list(iter_sampled_frames(truth.path, 2.0))
    assert [f.timestamp_s for f in frames] == [0.0, 0.5, 1.0, 1.5]
    width, height = truth.size
    for frame in frames:
        assert frame.image.shape == (height, width, 3)
        assert frame.scale == 1.0
        # The picture a player shows at that time (the builder's own upright decode).
        shown = media.read_frame(truth.path, frame.timestamp_s)
        assert np.abs(frame.image.astype(int) - shown.astype(int)).mean() < 2.0

    faces = face_engine.analyse(frames)
    assert [f.frame_index for f in faces] == [f.frame_index for f in frames]  # one each
    for face in faces:
        want = truth.face_box_at(1, face.timestamp_s)
        assert _iou(face.bbox, want) > 0.6, (face.bbox, want)
        # Landmarks in display pixels too: both eyes above the mouth, inside the box.
        points = face.landmarks.reshape(5, 2)
        assert points[:2, 1].max() < points[3:, 1].min()
        x1, y1, x2, y2 = face.bbox
        assert ((points[:, 0] >= x1) & (points[:, 0] <= x2)).all()
        assert ((points[:, 1] >= y1) & (points[:, 1] <= y2)).all()

    # The selection stage's full-size decode turns its frames upright as well.
    index = frames[2].frame_index
    (decoded,) = read_frames(truth.path, [index]).values()
    assert decoded.shape == (height, width, 3)
    shown = media.read_frame(truth.path, frames[2].timestamp_s)
    assert np.abs(decoded.astype(int) - shown.astype(int)).mean() < 2.0


def test_rotated_video_through_a_run(
    talent_env: Settings,
    dagster_instance: DagsterInstance,
    portrait_minus_90: media.VideoTruth,
    face_engine,
) -> None:
    truth = portrait_minus_90
    key = "videos/rotation/phone.mp4"
    upload(talent_env, truth.path, key)
    video_id, outcome = run_key(talent_env, dagster_instance, key)
    assert outcome.success, outcome.message

    tables = warehouse(talent_env)
    (video,) = tables.read("videos", video_id).to_pylist()
    assert (video["width"], video["height"], video["rotation"]) == (720, 1280, 90)
    assert latest_metadata(dagster_instance, "raw_video", video_id)["resolution"] == "720x1280"

    detections = tables.read("face_detections", video_id).to_pylist()
    assert len(detections) == 4  # one face in each of the 4 sampled frames
    for row in detections:
        box = (row["x1"], row["y1"], row["x2"], row["y2"])
        assert _iou(box, truth.face_box_at(1, row["timestamp_s"])) > 0.6, row["timestamp_s"]

    manifest = manifest_of(talent_env, key)
    assert manifest["video"]["width"] == 720 and manifest["video"]["height"] == 1280
    assert manifest["people_found"] == 1
    (result,) = manifest["results"]
    assert _iou(result["bbox"], truth.face_box_at(1, result["timestamp"])) > 0.6
    frame = cv2.imdecode(
        np.frombuffer(store_for(talent_env).get_bytes(result["s3_key"]), np.uint8),
        cv2.IMREAD_COLOR,
    )
    assert frame.shape[:2] == (1280, 720)  # the talent frame is portrait, as shown
    # and the face is where the box says, upright: the engine finds it there again.
    from modal_gpu.video import SampledFrame

    (again,) = face_engine.analyse([SampledFrame(0, 0.0, frame, 1.0)])
    assert _iou(again.bbox, result["bbox"]) > 0.8
