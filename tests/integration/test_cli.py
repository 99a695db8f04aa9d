"""The ``talent`` command as a user runs it: a real subprocess, real files, real S3."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from talent_assets.core.video_id import video_id_for
from talent_assets.infra.settings import Settings
from tests.support.pipeline import upload, warehouse_keys

pytestmark = pytest.mark.slow

TALENT = [sys.executable, "-m", "talent_assets.apps.cli"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TALENT, *args],
        cwd=cwd,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_process_local_file_to_folder_prints_the_manifest(
    three_person, tmp_path: Path, talent_env: Settings
) -> None:
    path, _ = three_person
    out = tmp_path / "out"
    proc = _run(["process", str(path), "--out", str(out), "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)  # stdout is exactly the manifest
    # Progress goes to stderr (not a terminal here: plain lines, at least the final one).
    assert re.search(r"^talent: decoded 16/16 frames \(100%\), \d+ s elapsed$", proc.stderr, re.M)
    folder = out / "processed" / "three_person"
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert manifest["people_found"] == 3
    assert (folder / "contact_sheet.jpg").is_file()
    for result in manifest["results"]:
        n = result["person_id"]
        assert Path(result["path"]) == folder / f"person_{n}.jpg"
        assert Path(result["face_path"]) == folder / f"person_{n}_face.jpg"
        assert Path(result["path"]).is_file() and Path(result["face_path"]).is_file()
    for table in ("videos", "face_detections", "identity_clusters", "selected_frames"):
        parts = list((out / "warehouse" / table).glob("video_id=*/part-0.parquet"))
        assert len(parts) == 1, table


def test_sample_fps_option_changes_frames_analysed(three_person, tmp_path: Path) -> None:
    path, _ = three_person
    proc = _run(
        ["process", str(path), "--out", str(tmp_path / "o"), "--json", "--sample-fps", "1"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metrics"]["frames_analyzed"] == 8  # 8 s at 1 per second


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("empty", "empty file (0 bytes)"),
        ("text", "not a video"),
        ("truncated", "not a video"),
    ],
)
def test_bad_local_file_exits_nonzero_with_one_line(
    name: str, expected: str, bad_inputs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = _run(["process", str(bad_inputs[name]), "--out", str(out)], tmp_path)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("talent: error: ") and expected in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (out / "processed").exists()
    assert not (out / "warehouse").exists()


def test_missing_s3_object_exits_nonzero_with_one_line(
    talent_env: Settings, tmp_path: Path
) -> None:
    key = "videos/cli/absent.mp4"
    proc = _run(["process", f"s3://{talent_env.bucket}/{key}"], tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.strip() == (f"talent: error: missing object: s3://{talent_env.bucket}/{key}")
    assert warehouse_keys(talent_env, video_id_for(talent_env.bucket, key)) == []


def test_process_s3_source_writes_to_the_bucket(
    talent_env: Settings, tmp_path: Path, no_face_clip: Path
) -> None:
    key = "videos/cli/empty-room.mp4"
    upload(talent_env, no_face_clip, key)
    proc = _run(["process", f"s3://{talent_env.bucket}/{key}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "0 people" in proc.stdout
    assert len(warehouse_keys(talent_env, video_id_for(talent_env.bucket, key))) == 4


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    proc = _run(["process"], tmp_path)
    assert proc.returncode == 2
    proc = _run(["process", str(tmp_path / "nope.mp4")], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"talent: error: no such file: {tmp_path / 'nope.mp4'}"
