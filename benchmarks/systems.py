"""The systems under test, as commands, and how to read their outputs into metric inputs.

What: command lines for

* ``ours``: this pipeline end to end, ``talent process VIDEO --out DIR --json`` (the four
  Dagster assets in-process, detection in a local process pool), and
* ``baseline``: ``python -m benchmarks.baseline VIDEO --json`` (the original endpoint's
  approach),
* ``decode_all`` / ``decode_sampled``: ``python -m benchmarks.decode_only`` (the physical
  limit),

and parsers that turn a finished run into a :class:`benchmarks.metrics.SystemOutput`: our
per-detection person ids come from the ``face_detections`` and ``identity_clusters`` tables
the run wrote under ``DIR/warehouse``, joined on (frame_index, face_index); the picks from
the manifest.

Benchmark scripts run as modules of the ``benchmarks`` package (``python -m benchmarks.NAME``)
with the repository root as their working directory (:data:`REPO`, pass it as ``cwd``), so
they import ``benchmarks`` and ``modal_gpu`` whatever directory the parent was started from.

Why: ``evaluate.py`` and ``bench.py`` must run exactly the same commands.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from benchmarks.metrics import Detection, Pick, SystemOutput

#: The repository root: the working directory of every child process (see module doc).
REPO = Path(__file__).resolve().parents[1]


def python() -> str:
    return sys.executable


def module_cmd(name: str, *args: str) -> list[str]:
    """``python -m benchmarks.NAME ARGS``; run it with ``cwd=REPO``."""
    return [python(), "-m", f"benchmarks.{name}", *args]


def talent_command() -> list[str]:
    """The ``talent`` console script of this interpreter's environment (what users run)."""
    script = Path(sys.executable).parent / "talent"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "talent_assets.apps.cli"]


def ours_cmd(video: Path, out: Path, sample_fps: float = 2.0) -> list[str]:
    return [
        *talent_command(),
        "process",
        str(video),
        "--out",
        str(out),
        "--json",
        "--sample-fps",
        str(sample_fps),
    ]


def baseline_cmd(video: Path, sample_fps: float = 2.0) -> list[str]:
    return module_cmd("baseline", str(video), "--json") + (
        ["--sample-fps", str(sample_fps)] if sample_fps != 2.0 else []
    )


def decode_cmd(video: Path, mode: str, sample_fps: float = 2.0) -> list[str]:
    return module_cmd("decode_only", str(video), "--mode", mode, "--sample-fps", str(sample_fps))


def child_env(work: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child: ours gets a private cache and an ephemeral Dagster instance."""
    env = dict(os.environ)
    env.pop("DAGSTER_HOME", None)
    env["TALENT_CACHE_DIR"] = str(work / "cache")
    env.setdefault("PYTHONWARNINGS", "ignore")
    env.update(extra or {})
    return env


def provenance() -> dict[str, Any]:
    """Where the numbers come from: commit (and whether the tree had changes), machine load."""
    import platform
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
        except OSError:
            return ""

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty_files": len(git("status", "--porcelain").splitlines()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _table_file(out: Path, table: str) -> Path | None:
    found = sorted((out / "warehouse" / table).glob("video_id=*/part-0.parquet"))
    return found[0] if found else None


def parse_ours(stdout: str, out: Path) -> tuple[dict[str, Any], SystemOutput]:
    """The manifest and the metric inputs of a finished ``talent process --out out`` run."""
    import pyarrow.parquet as pq

    manifest = json.loads(stdout)
    detections: list[Detection] = []
    faces_file = _table_file(out, "face_detections")
    clusters_file = _table_file(out, "identity_clusters")
    if faces_file is not None:
        faces = pq.read_table(
            faces_file, columns=["frame_index", "face_index", "timestamp_s", "x1", "y1", "x2", "y2"]
        ).to_pylist()
        person: dict[tuple[int, int], int] = {}
        if clusters_file is not None:
            for row in pq.read_table(
                clusters_file, columns=["frame_index", "face_index", "person_id"]
            ).to_pylist():
                person[(row["frame_index"], row["face_index"])] = int(row["person_id"])
        for row in faces:
            detections.append(
                Detection(
                    t=float(row["timestamp_s"]),
                    box=(row["x1"], row["y1"], row["x2"], row["y2"]),
                    person=person.get((row["frame_index"], row["face_index"]), -1),
                )
            )
    picks = [
        Pick(
            int(r["person_id"]), float(r["timestamp"]), tuple(r["bbox"]) if r.get("bbox") else None
        )
        for r in manifest.get("results", [])
    ]
    return manifest, SystemOutput(detections, picks)


def parse_baseline(stdout: str) -> tuple[dict[str, Any], SystemOutput]:
    """The result and the metric inputs of a finished ``baseline.py --json`` run."""
    result = json.loads(stdout)
    # Judge the frames actually analysed: pts_t is their real time, "t" / "timestamp" is
    # index / fps as the endpoint reported it (off on variable-frame-rate clips).
    detections = [
        Detection(float(d.get("pts_t", d["t"])), tuple(d["bbox"]), int(d["person"]))
        for d in result["detections"]
    ]
    picks = [
        Pick(int(r["person_id"]), float(r.get("pts_t", r["timestamp"])), tuple(r["bbox"]))
        for r in result["results"]
    ]
    return result, SystemOutput(detections, picks)
