#!/usr/bin/env python
"""Throughput of the detection worker's stages on this machine: decode, detect, embed.

Meant for a CUDA machine (the Modal GPU image has everything it needs; so does this project's
virtual environment plus ``onnxruntime-gpu``), and runs on any CPU with ``--cpu``. Run it as a
module from the repository root; that finds ``modal_gpu`` in the checkout even where the
project is not installed (the current directory is on ``sys.path`` under ``-m``):

    python -m benchmarks.gpu_bench --out bench.json                 # CUDA
    python -m benchmarks.gpu_bench --cpu --duration 8 --out cpu.json
    python -m benchmarks.gpu_bench --video my.mp4 --price-per-hour 0.59

Without ``--video`` it builds a test clip: a camera panning and zooming over the six people of
InsightFace's bundled ``t1.jpg`` (so there are real faces at changing sizes), H.264, with a
keyframe every 2 s. It measures

- decode: sequential PyAV decoding (``thread_type="AUTO"``) of every frame, and the worker's
  sampled decode (``iter_sampled_frames``: every frame decoded, the kept ones converted);
- the face engine per model pack (``bundled``; ``buffalo_l`` when its files are present or can
  be downloaded): detection alone (frames/s), recognition alone per batch size (faces/s), and
  the engine's ``analyse`` per batch of frames (frames/s, faces/s);
- end to end: ``detect_video_faces`` on the clip at ``--sample-fps``, as the worker runs it,
  with the video-seconds analysed per wall second and, given a price, the cost per video-hour.

Prints markdown tables and writes everything as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

try:
    import modal_gpu  # noqa: F401
except ImportError as error:  # e.g. ``python benchmarks/gpu_bench.py`` without the project
    raise SystemExit(
        "gpu_bench: cannot import modal_gpu; run `python -m benchmarks.gpu_bench` from the "
        "repository root (or install the project)"
    ) from error

from modal_gpu.detection import detect_video_faces
from modal_gpu.face_engine import FaceEngine
from modal_gpu.model_packs import (
    BUFFALO_L,
    BUNDLED,
    MODEL_PACKS,
    ModelPackError,
    default_model_root,
    ensure_model_pack,
)
from modal_gpu.video import SampledFrame, iter_sampled_frames, probe_video

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


# --- the test clip -------------------------------------------------------------------------------


def t1_photo() -> np.ndarray:
    """InsightFace's bundled group photo (six people), BGR."""
    import insightface

    path = Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"cannot read {path}")
    return image


def make_clip(path: Path, *, duration_s: float, height: int, fps: int) -> Path:
    """Pan and zoom over t1.jpg: faces move, grow and shrink; a mirrored cut every 10 s."""
    photo = t1_photo()
    width = int(round(height * 16 / 9)) // 2 * 2
    ph, pw = photo.shape[:2]
    frames = int(round(duration_s * fps))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast", "g": str(2 * fps)}
        for i in range(frames):
            t = i / fps
            source = photo[:, ::-1] if int(t // 10) % 2 else photo
            zoom = 1.0 + 0.8 * (0.5 - 0.5 * np.cos(2 * np.pi * t / 12.0))  # 1.0 … 1.8
            crop_w = min(pw, ph * 16 / 9) / zoom
            crop_h = crop_w * 9 / 16
            cx = crop_w / 2 + (pw - crop_w) * (0.5 - 0.5 * np.cos(2 * np.pi * t / 9.0))
            cy = crop_h / 2 + (ph - crop_h) * (0.5 - 0.5 * np.cos(2 * np.pi * t / 15.0))
            x0, y0 = int(cx - crop_w / 2), int(cy - crop_h / 2)
            view = source[y0 : y0 + int(crop_h), x0 : x0 + int(crop_w)]
            image = cv2.resize(view, (width, height), interpolation=cv2.INTER_LINEAR)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# --- decode --------------------------------------------------------------------------------------


def bench_decode(path: Path, sample_fps: float) -> dict[str, Any]:
    started = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = sum(1 for _ in container.decode(stream))
    all_s = time.perf_counter() - started

    started = time.perf_counter()
    kept = sum(1 for _ in iter_sampled_frames(path, sample_fps))
    sampled_s = time.perf_counter() - started
    return {
        "frames": decoded,
        "all_frames_s": round(all_s, 3),
        "all_frames_fps": round(decoded / all_s, 1),
        "sample_fps": sample_fps,
        "sampled_frames": kept,
        "sampled_s": round(sampled_s, 3),
        "sampled_decode_fps": round(decoded / sampled_s, 1),  # source frames walked per second
        "sampled_kept_fps": round(kept / sampled_s, 1),
    }


# --- model packs ---------------------------------------------------------------------------------


def ensure_pack(pack: str, download: bool) -> tuple[bool, str]:
    """(available, note). buffalo_l is fetched with InsightFace's downloader if allowed."""
    try:
        ensure_model_pack(pack)
        return True, ""
    except ModelPackError as err:
        if pack != BUFFALO_L or not download:
            return False, str(err)
    from insightface.utils.storage import MODEL_ZOO_RELEASE_DOWNLOAD_URL
    from insightface.utils.storage import download as insightface_download

    root = default_model_root()
    url = f"{MODEL_ZOO_RELEASE_DOWNLOAD_URL}{pack}.zip"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-pack-") as tmp,
            contextlib.redirect_stdout(sys.stderr),  # insightface prints its progress
        ):
            insightface_download("models", pack, force=True, root=tmp)
            folder = root / "models" / pack
            folder.mkdir(parents=True, exist_ok=True)
            for name in MODEL_PACKS[pack]:
                found = sorted(Path(tmp).rglob(name))
                if not found:
                    return False, f"download of {pack} has no {name}"
                shutil.copyfile(found[0], folder / name)
        return True, f"downloaded into {root / 'models' / pack}"
    except Exception as err:  # offline, blocked, or a changed release: skip, say why
        return False, f"not present, and downloading {url} failed ({type(err).__name__})"
    finally:
        socket.setdefaulttimeout(previous)


def session_providers(engine: FaceEngine) -> list[str]:
    session = getattr(getattr(engine, "_detector", None), "session", None)
    return list(session.get_providers()) if session is not None else list(engine.providers)


def aligned_crops(
    engine: FaceEngine, frames: list[SampledFrame], detections: list[tuple[Any, Any]]
) -> list[np.ndarray]:
    """112-px ArcFace crops of the faces ``engine.detect`` found in ``frames``."""
    from insightface.utils import face_align

    crops = []
    for frame, (boxes, points) in zip(frames, detections, strict=True):
        if boxes is None:
            continue
        for box, kps in zip(boxes, points, strict=True):
            if box[4] >= engine.det_threshold:
                crops.append(face_align.norm_crop(frame.image, landmark=kps, image_size=112))
    return crops


def bench_recognition(
    engine: FaceEngine, crops: list[np.ndarray], batch_sizes: list[int]
) -> list[dict[str, Any]]:
    """Recognition alone on the aligned crops, per batch size (faces/s)."""
    recognition = []
    for size in batch_sizes:
        if not crops:
            break
        engine._recogniser.get_feat(crops[:size])  # warm-up for this shape
        started = time.perf_counter()
        for i in range(0, len(crops), size):
            engine._recogniser.get_feat(crops[i : i + size])
        seconds = time.perf_counter() - started
        recognition.append(
            {"batch": size, "faces": len(crops), "faces_per_s": round(len(crops) / seconds, 1)}
        )
    return recognition


def bench_analyse(
    engine: FaceEngine, frames: list[SampledFrame], batch_sizes: list[int]
) -> list[dict[str, Any]]:
    """The engine's ``analyse`` per batch of frames (frames/s, faces/s)."""
    analyse = []
    for size in batch_sizes:
        faces = 0
        started = time.perf_counter()
        for i in range(0, len(frames), size):
            faces += len(engine.analyse(frames[i : i + size]))
        seconds = time.perf_counter() - started
        analyse.append(
            {
                "batch_frames": size,
                "frames": len(frames),
                "faces": faces,
                "frames_per_s": round(len(frames) / seconds, 1),
                "faces_per_s": round(faces / seconds, 1),
            }
        )
    return analyse


def bench_engine(
    pack: str, providers: list[str], frames: list[SampledFrame], batch_sizes: list[int]
) -> dict[str, Any]:
    started = time.perf_counter()
    engine = FaceEngine(pack, providers=providers)
    load_s = time.perf_counter() - started
    active = session_providers(engine)
    if providers[0] == CUDA and active[0] != CUDA:
        # onnxruntime falls back to the CPU quietly when CUDA/cuDNN libraries are missing.
        raise SystemExit(
            f"CUDA requested, but the {pack} sessions run on {', '.join(active)} (see the "
            "onnxruntime errors above); install the CUDA 12 / cuDNN 9 libraries or use --cpu"
        )
    engine.analyse(frames[:2])  # warm-up: CUDA context, cuDNN algorithm search, arenas

    started = time.perf_counter()
    detections = [engine.detect(frame.image) for frame in frames]
    detect_s = time.perf_counter() - started

    crops = aligned_crops(engine, frames, detections)
    recognition = bench_recognition(engine, crops, batch_sizes)
    analyse = bench_analyse(engine, frames, batch_sizes)
    return {
        "pack": pack,
        "providers": active,
        "load_s": round(load_s, 2),
        "detect_frames_per_s": round(len(frames) / detect_s, 1),
        "recognition": recognition,
        "analyse": analyse,
        "engine": engine,
    }


def bench_end_to_end(
    path: Path, engine: FaceEngine, sample_fps: float, duration_s: float, price: float | None
) -> dict[str, Any]:
    table, stats = detect_video_faces(path, video_id="bench", engine=engine, sample_fps=sample_fps)
    realtime = duration_s / stats.wall_s
    result = {
        "pack": engine.pack,
        "sample_fps": sample_fps,
        "frames_analyzed": stats.frames_analyzed,
        "faces": table.num_rows,
        "wall_s": round(stats.wall_s, 3),
        "decode_s": round(stats.decode_s, 3),
        "inference_s": round(stats.inference_s, 3),
        "video_s_per_wall_s": round(realtime, 2),
        "seconds_per_video_hour": round(3600 / realtime, 1),
    }
    if price is not None:
        result["price_per_hour"] = price
        result["cost_per_video_hour_usd"] = round(price / realtime, 4)
    return result


# --- reporting -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import onnxruntime

    gpu = None
    if shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        )
        gpu = out.stdout.strip() or None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "onnxruntime": onnxruntime.__version__,
        "available_providers": onnxruntime.get_available_providers(),
        "pyav": av.__version__,
    }


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    m, v, d = report["machine"], report["video"], report["decode"]
    out = [
        f"## Worker throughput ({'CPU only' if report['cpu_only'] else 'CUDA'})",
        "",
        f"Machine: {m['cpu_count']} CPUs, GPU: {m['gpu'] or 'none'}, onnxruntime "
        f"{m['onnxruntime']}, PyAV {m['pyav']}, Python {m['python']}",
        f"Video: {v['path_name']} {v['width']}x{v['height']} {v['fps']} fps, "
        f"{v['duration_s']} s, {v['frames']} frames, {v['codec']}",
        "",
        "### Decode (sequential, thread_type AUTO)",
        "",
        table(
            [
                {"what": "all frames", "frames/s": d["all_frames_fps"], "s": d["all_frames_s"]},
                {
                    "what": f"sampled at {d['sample_fps']}/s (kept {d['sampled_frames']})",
                    "frames/s": d["sampled_decode_fps"],
                    "s": d["sampled_s"],
                },
            ],
            ["what", "frames/s", "s"],
        ),
        "",
        "### Face engine",
        "",
    ]
    rows = []
    for pack in report["packs"]:
        if pack.get("skipped"):
            out.append(f"- `{pack['pack']}` skipped: {pack['skipped']}")
            continue
        for a in pack["analyse"]:
            rec = next((r for r in pack["recognition"] if r["batch"] == a["batch_frames"]), {})
            rows.append(
                {
                    "pack": pack["pack"],
                    "provider": pack["providers"][0],
                    "detect frames/s": pack["detect_frames_per_s"],
                    "batch": a["batch_frames"],
                    "recognise faces/s": rec.get("faces_per_s", ""),
                    "analyse frames/s": a["frames_per_s"],
                    "analyse faces/s": a["faces_per_s"],
                }
            )
    if rows:
        out += ["", table(rows, list(rows[0])), ""]
    if report.get("end_to_end"):
        out += ["### End to end (detect_video_faces)", ""]
        e2e = report["end_to_end"]
        out.append(table(e2e, list(e2e[0])))
    return "\n".join(out) + "\n"


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The options, and the onnxruntime providers they ask for (CUDA checked here)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, help="benchmark this video instead of a test clip")
    parser.add_argument("--duration", type=float, default=30.0, help="test clip seconds")
    parser.add_argument("--height", type=int, default=720, help="test clip height (16:9)")
    parser.add_argument("--fps", type=int, default=30, help="test clip frame rate")
    parser.add_argument("--cpu", action="store_true", help="CPUExecutionProvider only")
    parser.add_argument("--packs", default=f"{BUNDLED},{BUFFALO_L}")
    parser.add_argument("--no-download", action="store_true", help="never fetch buffalo_l")
    parser.add_argument("--batch-sizes", default="1,8,32", help="frames (and faces) per call")
    parser.add_argument("--sample-fps", type=float, default=2.0, help="end-to-end sampling")
    parser.add_argument("--engine-fps", type=float, default=5.0, help="frames for engine tests")
    parser.add_argument("--max-frames", type=int, default=150, help="cap on engine test frames")
    parser.add_argument("--price-per-hour", type=float, help="GPU $/h for a cost estimate")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    import onnxruntime

    if args.cpu:
        return args, [CPU]
    if CUDA not in onnxruntime.get_available_providers():
        parser.error("no CUDAExecutionProvider in this onnxruntime; use --cpu or onnxruntime-gpu")
    if hasattr(onnxruntime, "preload_dlls"):
        onnxruntime.preload_dlls()  # CUDA/cuDNN from the nvidia-* wheels
    return args, [CUDA, CPU]


def bench_packs(
    args: argparse.Namespace,
    providers: list[str],
    batch_sizes: list[int],
    path: Path,
    duration_s: float,
    report: dict[str, Any],
) -> None:
    """Engine and end-to-end figures of every requested pack, appended to ``report``."""
    frames = list(iter_sampled_frames(path, args.engine_fps))[: args.max_frames]
    for pack in [p.strip() for p in args.packs.split(",") if p.strip()]:
        available, note = ensure_pack(pack, download=not args.no_download)
        if not available:
            report["packs"].append({"pack": pack, "skipped": note})
            print(f"skipping {pack}: {note}", file=sys.stderr)
            continue
        result = bench_engine(pack, providers, frames, batch_sizes)
        engine = result.pop("engine")
        if note:
            result["note"] = note
        report["packs"].append(result)
        report["end_to_end"].append(
            bench_end_to_end(path, engine, args.sample_fps, duration_s, args.price_per_hour)
        )


def main(argv: list[str] | None = None) -> int:
    args, providers = parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]

    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        if args.video:
            path = args.video
        else:
            started = time.perf_counter()
            path = make_clip(
                Path(tmp) / "bench.mp4", duration_s=args.duration, height=args.height, fps=args.fps
            )
            print(f"built {path.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        info = probe_video(path)
        report: dict[str, Any] = {
            "cpu_only": args.cpu,
            "machine": machine(),
            "video": {"path_name": path.name, **info.to_dict()},
            "decode": bench_decode(path, args.sample_fps),
            "packs": [],
            "end_to_end": [],
        }
        bench_packs(args, providers, batch_sizes, path, info.duration_s, report)

    print(markdown(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
