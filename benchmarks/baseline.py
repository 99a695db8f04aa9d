"""The original endpoint's approach, re-implemented faithfully, as a yardstick.

What: for one video, seek to every sample with OpenCV (``CAP_PROP_POS_FRAMES``), run
InsightFace ``FaceAnalysis.get`` on the full frame (detection at 640x640, then recognition of
every detected face, one face at a time), drop faces with ``det_score < 0.6``, cluster the
L2-normalised embeddings with scikit-learn ``DBSCAN(eps=0.65, min_samples=3)`` (euclidean),
and pick each cluster's best face by ``40·det + 0.4·pose + 20·area``. Prints a manifest-like
JSON with the people, every kept detection and its cluster label, and per-stage seconds.

Interpretation of the selection score (the original's exact formula is known only by name):

* ``det``: SCRFD's detection score, 0-1.
* ``pose``: ``max(0, 100 - |yaw|)``, yaw in degrees estimated from the five landmarks with
  the pipeline's own geometric estimator (``modal_gpu.quality.estimate_pose``), so the two
  systems judge pose alike; 0-100. (The endpoint loaded no 3-D landmark model either.)
* ``area``: face box area (clipped to the frame) as a fraction of the frame area, 0-1.

Other choices, to keep the yardstick fair rather than strawman-slow:

* Samples are at ``t = k / sample_fps`` for ``t < frames / fps``, frame ``round(t · fps)``;
  a failed read skips that sample. The reported ``timestamp`` is ``index / fps`` as the
  endpoint's was; ``pts_t`` is the decoded frame's real time (they differ on
  variable-frame-rate clips), which the evaluation uses.
* Frames are not kept in memory: the chosen frames are re-read (one seek each) only when
  ``--out`` asks for JPEGs, so the peak memory is a lower bound of the original's.
* Same model pack as the pipeline (``bundled``: SCRFD-500M + ArcFace MobileFaceNet), CPU.

Why: ``benchmarks/bench.py`` and ``benchmarks/evaluate.py`` compare the pipeline with this,
side by side, on the same videos and models; it runs as its own process so that its process
start (imports, model load) counts like the pipeline's.

How: ``python -m benchmarks.baseline VIDEO [--json] [--out DIR] [--sample-fps 2]``, from the
repository root.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

DET_SIZE = 640
MIN_DET_SCORE = 0.6
DBSCAN_EPS = 0.65
DBSCAN_MIN_SAMPLES = 3
W_DET, W_POSE, W_AREA = 40.0, 0.4, 20.0


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc), or None elsewhere."""
    try:
        import os

        ticks = os.sysconf("SC_CLK_TCK")
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / ticks)
    except (OSError, ValueError, IndexError):
        return None


def selection_score(det: float, yaw: float, box: Any, frame_w: int, frame_h: int) -> float:
    """40·det + 0.4·pose + 20·area with pose = 100 - |yaw| (deg), area = box / frame."""
    x1, y1 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x2, y2 = min(float(frame_w), float(box[2])), min(float(frame_h), float(box[3]))
    area = max(0.0, x2 - x1) * max(0.0, y2 - y1) / float(frame_w * frame_h)
    pose = max(0.0, 100.0 - abs(yaw))
    return W_DET * det + W_POSE * pose + W_AREA * area


#: What ``run`` imports, timed as its ``imports_s`` (with the interpreter start before it).
_LIBRARIES = (
    "cv2",
    "numpy",
    "insightface.app",
    "sklearn.cluster",
    "modal_gpu.model_packs",
    "modal_gpu.quality",
)


@dataclass
class _Sampled:
    """The kept faces of every sample, their embeddings, and the sampling loop's times."""

    faces: list[dict[str, Any]] = field(default_factory=list)
    embeddings: list[Any] = field(default_factory=list)
    frames_analyzed: int = 0
    width: int = 0
    height: int = 0
    seek_s: float = 0.0
    detect_s: float = 0.0


def _import_libraries() -> None:
    for name in _LIBRARIES:
        importlib.import_module(name)
    warnings.filterwarnings("ignore", category=FutureWarning)


def _load_app() -> Any:
    """InsightFace ``FaceAnalysis`` (detection + recognition) on the bundled pack, CPU."""
    from insightface.app import FaceAnalysis

    from modal_gpu.model_packs import ensure_model_pack

    folder = ensure_model_pack("bundled")
    app = FaceAnalysis(
        name=str(folder),
        allowed_modules=["detection", "recognition"],
        providers=["CPUExecutionProvider"],
    )
    app.prepare(ctx_id=-1, det_size=(DET_SIZE, DET_SIZE))
    return app


def _open_video(video: Path) -> tuple[Any, float, float]:
    """(OpenCV capture, fps, duration in seconds from the frame count)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SystemExit(f"baseline: cannot open {video}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    duration = n_frames / fps if fps else 0.0
    return cap, fps, duration


def _face_record(
    face: Any, yaw: float, index: int, fps: float, shown_t: float, width: int, height: int
) -> dict[str, Any]:
    """One kept detection as the JSON reports it (its cluster label is added later)."""
    return {
        "t": round(index / fps, 6),
        "pts_t": round(shown_t, 6),
        "frame_index": index,
        "bbox": [round(float(v), 2) for v in face.bbox],
        "det_score": round(float(face.det_score), 4),
        "yaw": float(yaw),
        "score": round(
            float(selection_score(float(face.det_score), yaw, face.bbox, width, height)),
            3,
        ),
    }


def _sample_faces(app: Any, cap: Any, fps: float, duration: float, sample_fps: float) -> _Sampled:
    """Seek to every sample, detect and embed its faces, keep those with det >= 0.6."""
    import cv2
    import numpy as np

    from modal_gpu.quality import estimate_pose

    sampled = _Sampled()
    k = 0
    while k / sample_fps < duration - 1e-9:
        index = int(round(k / sample_fps * fps))
        k += 1
        t = time.perf_counter()
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        sampled.seek_s += time.perf_counter() - t
        if not ok or frame is None:
            continue
        # The decoded frame's own time. The endpoint reported index / fps, which is wrong on
        # variable-frame-rate clips (OpenCV seeks by frame count); evaluation uses this one.
        shown_t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        sampled.frames_analyzed += 1
        sampled.height, sampled.width = frame.shape[:2]
        t = time.perf_counter()
        found = app.get(frame)
        sampled.detect_s += time.perf_counter() - t
        for face in found:
            if float(face.det_score) < MIN_DET_SCORE:
                continue
            yaw = estimate_pose(face.kps)[0]
            sampled.faces.append(
                _face_record(face, yaw, index, fps, shown_t, sampled.width, sampled.height)
            )
            sampled.embeddings.append(np.asarray(face.normed_embedding, dtype=np.float32))
    return sampled


def _cluster(faces: list[dict[str, Any]], embeddings: list[Any]) -> Any:
    """DBSCAN labels of the embeddings (-1 = noise), also stored as each face's ``person``."""
    import numpy as np
    from sklearn.cluster import DBSCAN

    if embeddings:
        labels = (
            DBSCAN(eps=DBSCAN_EPS, min_samples=DBSCAN_MIN_SAMPLES, metric="euclidean")
            .fit(np.stack(embeddings))
            .labels_
        )
    else:
        labels = np.zeros(0, dtype=int)
    for face, label in zip(faces, labels, strict=True):
        face["person"] = int(label)
    return labels


def _select(faces: list[dict[str, Any]], labels: Any) -> list[dict[str, Any]]:
    """Each cluster's best face (highest score, then earliest) and its span."""
    results = []
    for label in sorted(int(x) for x in set(labels.tolist()) if x >= 0):
        members = [f for f in faces if f["person"] == label]
        best = max(members, key=lambda f: (f["score"], -f["t"]))
        results.append(
            {
                "person_id": label,
                "timestamp": best["t"],
                "pts_t": best["pts_t"],
                "frame_index": best["frame_index"],
                "score": best["score"],
                "bbox": best["bbox"],
                "faces": len(members),
                "first_seen": min(f["t"] for f in members),
                "last_seen": max(f["t"] for f in members),
            }
        )
    return results


def _write_frames(cap: Any, results: list[dict[str, Any]], out: Path | None) -> None:
    """Re-read each chosen frame (one seek each) and write it as ``out/person_<n>.jpg``."""
    import cv2

    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        cap.set(cv2.CAP_PROP_POS_FRAMES, r["frame_index"])
        ok, frame = cap.read()
        if ok:
            cv2.imwrite(str(out / f"person_{r['person_id']}.jpg"), frame)
            r["path"] = str(out / f"person_{r['person_id']}.jpg")


def _result(
    sampled: _Sampled,
    results: list[dict[str, Any]],
    duration: float,
    fps: float,
    stages: dict[str, float],
) -> dict[str, Any]:
    return {
        "system": "baseline",
        "status": "success",
        "people_found": len(results),
        "results": results,
        "detections": sampled.faces,
        "video": {
            "duration_s": round(duration, 6),
            "fps": fps,
            "width": sampled.width,
            "height": sampled.height,
        },
        "metrics": {
            "frames_analyzed": sampled.frames_analyzed,
            "faces_detected": len(sampled.faces),
            **{k: round(v, 3) for k, v in stages.items()},
        },
    }


def run(video: Path, sample_fps: float = 2.0, out: Path | None = None) -> dict[str, Any]:
    """Process one video the original endpoint's way; returns the JSON-able result."""
    started_at_import = time.perf_counter() - _T0
    t = time.perf_counter()
    _import_libraries()
    stages: dict[str, float] = {"imports_s": started_at_import + time.perf_counter() - t}

    t = time.perf_counter()
    app = _load_app()
    stages["model_load_s"] = time.perf_counter() - t

    cap, fps, duration = _open_video(video)
    sampled = _sample_faces(app, cap, fps, duration, sample_fps)
    stages["seek_decode_s"] = sampled.seek_s
    stages["detect_embed_s"] = sampled.detect_s

    t = time.perf_counter()
    labels = _cluster(sampled.faces, sampled.embeddings)
    stages["cluster_s"] = time.perf_counter() - t

    t = time.perf_counter()
    results = _select(sampled.faces, labels)
    stages["select_s"] = time.perf_counter() - t

    t = time.perf_counter()
    _write_frames(cap, results, out)
    cap.release()
    stages["write_s"] = time.perf_counter() - t
    stages["wall_s"] = time.perf_counter() - _T0
    age = process_age_s()
    if age is not None:
        stages["process_s"] = age
    return _result(sampled, results, duration, fps, stages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--json", action="store_true", help="print the full JSON result")
    parser.add_argument("--out", type=Path, help="write person_<n>.jpg frames here")
    parser.add_argument("--sample-fps", type=float, default=2.0)
    args = parser.parse_args(argv)
    if not args.video.is_file():
        print(f"baseline: no such file: {args.video}", file=sys.stderr)
        return 1
    result = run(args.video, args.sample_fps, args.out)
    if args.json:
        print(json.dumps(result))
    else:
        m = result["metrics"]
        print(
            f"{args.video.name}: {result['people_found']} people, {m['faces_detected']} faces "
            f"in {m['frames_analyzed']} frames, {m['wall_s']:.1f} s"
        )
        for r in result["results"]:
            print(f"  person {r['person_id']}: t={r['timestamp']:.2f} s score={r['score']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
