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

How: ``python benchmarks/baseline.py VIDEO [--json] [--out DIR] [--sample-fps 2]``.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

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


def run(video: Path, sample_fps: float = 2.0, out: Path | None = None) -> dict[str, Any]:
    """Process one video the original endpoint's way; returns the JSON-able result."""
    started_at_import = time.perf_counter() - _T0
    t = time.perf_counter()
    import cv2
    import numpy as np
    from insightface.app import FaceAnalysis
    from sklearn.cluster import DBSCAN

    from modal_gpu.model_packs import ensure_model_pack
    from modal_gpu.quality import estimate_pose

    warnings.filterwarnings("ignore", category=FutureWarning)
    stages: dict[str, float] = {"imports_s": started_at_import + time.perf_counter() - t}

    t = time.perf_counter()
    folder = ensure_model_pack("bundled")
    app = FaceAnalysis(
        name=str(folder),
        allowed_modules=["detection", "recognition"],
        providers=["CPUExecutionProvider"],
    )
    app.prepare(ctx_id=-1, det_size=(DET_SIZE, DET_SIZE))
    stages["model_load_s"] = time.perf_counter() - t

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SystemExit(f"baseline: cannot open {video}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    duration = n_frames / fps if fps else 0.0

    seek_s = detect_s = 0.0
    frames_analyzed = 0
    width = height = 0
    faces: list[dict[str, Any]] = []
    embeddings: list[np.ndarray] = []
    k = 0
    while k / sample_fps < duration - 1e-9:
        index = int(round(k / sample_fps * fps))
        k += 1
        t = time.perf_counter()
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        seek_s += time.perf_counter() - t
        if not ok or frame is None:
            continue
        # The decoded frame's own time. The endpoint reported index / fps, which is wrong on
        # variable-frame-rate clips (OpenCV seeks by frame count); evaluation uses this one.
        shown_t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        frames_analyzed += 1
        height, width = frame.shape[:2]
        t = time.perf_counter()
        found = app.get(frame)
        detect_s += time.perf_counter() - t
        for face in found:
            if float(face.det_score) < MIN_DET_SCORE:
                continue
            yaw = estimate_pose(face.kps)[0]
            faces.append(
                {
                    "t": round(index / fps, 6),
                    "pts_t": round(shown_t, 6),
                    "frame_index": index,
                    "bbox": [round(float(v), 2) for v in face.bbox],
                    "det_score": round(float(face.det_score), 4),
                    "yaw": float(yaw),
                    "score": round(
                        float(
                            selection_score(float(face.det_score), yaw, face.bbox, width, height)
                        ),
                        3,
                    ),
                }
            )
            embeddings.append(np.asarray(face.normed_embedding, dtype=np.float32))
    stages["seek_decode_s"] = seek_s
    stages["detect_embed_s"] = detect_s

    t = time.perf_counter()
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
    stages["cluster_s"] = time.perf_counter() - t

    t = time.perf_counter()
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
    stages["select_s"] = time.perf_counter() - t

    t = time.perf_counter()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for r in results:
            cap.set(cv2.CAP_PROP_POS_FRAMES, r["frame_index"])
            ok, frame = cap.read()
            if ok:
                cv2.imwrite(str(out / f"person_{r['person_id']}.jpg"), frame)
                r["path"] = str(out / f"person_{r['person_id']}.jpg")
    cap.release()
    stages["write_s"] = time.perf_counter() - t
    stages["wall_s"] = time.perf_counter() - _T0
    age = process_age_s()
    if age is not None:
        stages["process_s"] = age
    return {
        "system": "baseline",
        "status": "success",
        "people_found": len(results),
        "results": results,
        "detections": faces,
        "video": {"duration_s": round(duration, 6), "fps": fps, "width": width, "height": height},
        "metrics": {
            "frames_analyzed": frames_analyzed,
            "faces_detected": len(faces),
            **{k: round(v, 3) for k, v in stages.items()},
        },
    }


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
