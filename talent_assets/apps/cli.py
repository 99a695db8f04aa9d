"""``talent``: run the pipeline on one video, run the demo, and (later) the local stack."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

EXIT_FAILED = 1


class CliError(Exception):
    """A failure to report as one line on stderr."""


def _instance():
    from dagster import DagsterInstance

    # A real instance keeps run history when DAGSTER_HOME is set; otherwise an ephemeral one.
    if os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.get()
    return DagsterInstance.ephemeral()


def _parse_s3(source: str) -> tuple[str, str]:
    bucket, _, key = source[len("s3://") :].partition("/")
    if not bucket or not key:
        raise CliError(f"not an s3://bucket/key address: {source}")
    return bucket, key


def process_video(
    source: str, *, out: Path | None, sample_fps: float | None, instance: Any = None
) -> dict[str, Any]:
    """Run the four assets for ``source`` (a local file or ``s3://bucket/key``).

    Returns the manifest; raises :class:`CliError` with the run's one-line reason on failure.
    """
    from talent_assets.apps.runner import process_partition
    from talent_assets.core.video_id import output_stem, video_id_for
    from talent_assets.defs.resources import TalentStorage, bucket_store, build_resources
    from talent_assets.infra.settings import Settings
    from talent_assets.infra.storage import LocalObjectStore

    settings = Settings.from_env()
    if source.startswith("s3://"):
        bucket, key = _parse_s3(source)
        # The address names the bucket to use for this run (inputs and outputs).
        settings = Settings(**{**settings.__dict__, "bucket": bucket})
        local_input = None
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise CliError(f"no such file: {source}")
        local_input = path.resolve()
        key = local_input.name

    if sample_fps is not None:
        if sample_fps <= 0:
            raise CliError("--sample-fps must be positive")
        settings = Settings(**{**settings.__dict__, "sample_fps": sample_fps})
    resources = build_resources(settings)
    storage: TalentStorage = resources["storage"]  # type: ignore[assignment]
    overrides: dict[str, Any] = {}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        overrides["local_output_dir"] = str(out.resolve())
    if local_input is not None:
        if out is not None:
            overrides.update(local_input_dir=str(local_input.parent), video_prefix="")
        else:
            # No --out: the file goes to the bucket like any other video, then is processed.
            key = f"{settings.video_prefix}{local_input.name}"
            bucket_store(settings).put_bytes(key, local_input.read_bytes(), "video/mp4")
    if overrides:
        # Resources are immutable config; build a new one rather than copying a model.
        fields = {name: getattr(storage, name) for name in TalentStorage.model_fields}
        storage = TalentStorage(**{**fields, **overrides})
    detector = resources["detector"]

    input_bucket = "local" if storage.local_input_dir else settings.bucket
    video_id = video_id_for(input_bucket, key, storage.video_prefix)
    outcome = process_partition(
        video_id,
        key,
        resources={"storage": storage, "detector": detector},
        instance=instance or _instance(),
    )
    if not outcome.success:
        raise CliError(outcome.message)
    manifest_key = f"{storage.output_prefix}{output_stem(key, storage.video_prefix)}/manifest.json"
    # Read back outside the run: resource methods need Dagster to resolve their EnvVars.
    outputs = LocalObjectStore(out.resolve()) if out is not None else bucket_store(settings)
    return json.loads(outputs.get_bytes(manifest_key))


def format_people(manifest: dict[str, Any]) -> str:
    """A plain-text table of the people in a manifest."""
    source = manifest["source"]
    lines = [
        f"{source['key']}: {manifest['people_found']} "
        f"{'person' if manifest['people_found'] == 1 else 'people'} "
        f"({manifest['video']['duration_s']:.1f} s video, "
        f"{manifest['metrics']['wall_s']:.1f} s to process)"
    ]
    if manifest["results"]:
        lines.append(f"  {'person':>6}  {'time (s)':>8}  {'score':>5}  {'screen (s)':>10}  frame")
    for r in manifest["results"]:
        where = r.get("path") or f"s3://{source['bucket']}/{r['s3_key']}"
        lines.append(
            f"  {r['person_id']:>6}  {r['timestamp']:>8.1f}  {r['score']:>5.1f}  "
            f"{r['screen_time']:>10.1f}  {where}"
        )
    return "\n".join(lines)


def _cmd_process(args: argparse.Namespace) -> int:
    from talent_assets.devstack.stack import use_running_stack

    if args.source.startswith("s3://") or args.out is None:
        use_running_stack()
    manifest = process_video(args.source, out=args.out, sample_fps=args.sample_fps)
    if args.json:
        print(json.dumps(manifest, indent=2))
    else:
        print(format_people(manifest))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from talent_assets.apps.demo import run_demo

    return run_demo()


def _cmd_up(args: argparse.Namespace) -> int:
    import signal
    import time

    from talent_assets.devstack.stack import LocalStack

    stack = LocalStack(args.root, ui_port=args.port, sensor_interval_s=args.sensor_interval)
    print(f"Starting SeaweedFS and Dagster (data in {stack.root}) ...", flush=True)
    info = stack.start()
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    # Handle both explicitly: a shell that starts us in the background ignores SIGINT, and
    # Ctrl-C must still stop the stack cleanly rather than leave servers behind.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        print(f"Dagster UI:  {info.ui_url}")
        print(
            f"S3 endpoint: {info.endpoint_url}  (bucket {info.bucket!r}; credentials in "
            f"{stack.root / 'credentials.json'} unless AWS_* are set)"
        )
        print(
            f"Upload:      talent upload VIDEO.mp4 ...   (to s3://{info.bucket}/"
            f"{info.video_prefix}; the sensor picks it up within seconds)"
        )
        print("Ctrl-C stops everything.", flush=True)
        while not stopping:
            if stack.dagster is None or stack.dagster.poll() is not None:
                raise CliError("dagster dev exited; see .talent/logs/dagster.log")
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping ...", flush=True)
        stack.stop()
    return 0


def _cmd_upload(args: argparse.Namespace) -> int:
    import boto3
    from botocore.config import Config as BotoConfig

    from talent_assets.devstack.stack import StackError, StackInfo, load_credentials
    from talent_assets.infra.storage import S3ObjectStore

    try:
        info = StackInfo.load(args.root)
    except StackError as err:
        raise CliError(str(err)) from None
    access, secret = load_credentials(args.root)
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=info.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=BotoConfig(signature_version="s3v4"),
    )
    store = S3ObjectStore(client, info.bucket)
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise CliError(f"no such file: {name}")
        key = f"{info.video_prefix}{path.name}"
        client.upload_file(str(path), info.bucket, key)
        print(f"uploaded {store.location(key)}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from talent_assets.devstack.stack import use_running_stack

    info = use_running_stack()
    if info is not None:
        print(f"Using the local stack: S3 {info.endpoint_url}, Dagster UI {info.ui_url}")

    # The API runs jobs through Dagster in this process; with the local stack's
    # DAGSTER_HOME its runs show in the stack's UI.
    uvicorn.run(
        "talent_assets.apps.api:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level="info",
    )
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    from talent_assets.apps.query import QueryError, run_query
    from talent_assets.devstack.stack import use_running_stack
    from talent_assets.infra.settings import Settings

    use_running_stack()

    try:
        print(run_query(args.sql, settings=Settings.from_env(), fmt=args.format))
    except QueryError as err:
        raise CliError(str(err)) from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talent", description="Find every person in a video and pick the best still."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    process = commands.add_parser(
        "process", help="run the whole pipeline on one video (local file or s3://bucket/key)"
    )
    process.add_argument("source", help="a local video file or s3://bucket/key")
    process.add_argument("--out", type=Path, help="write outputs to this folder, not to S3")
    process.add_argument("--json", action="store_true", help="print exactly the manifest")
    process.add_argument("--sample-fps", type=float, help="frames analysed per second")
    process.set_defaults(func=_cmd_process)
    demo = commands.add_parser(
        "demo", help="end to end on the embedded default: local S3, Dagster, sample videos"
    )
    demo.set_defaults(func=_cmd_demo)
    up = commands.add_parser(
        "up", help="the local stack: S3 server, Dagster webserver + daemon, sensor on"
    )
    up.add_argument("--root", type=Path, default=Path(".talent"), help="where data is kept")
    up.add_argument("--port", type=int, help="Dagster UI port (default: a free one)")
    up.add_argument("--sensor-interval", type=int, default=5, help="seconds between ticks")
    up.set_defaults(func=_cmd_up)
    upload = commands.add_parser("upload", help="upload videos to the running local stack")
    upload.add_argument("files", nargs="+", help="video files")
    upload.add_argument("--root", type=Path, default=Path(".talent"))
    upload.set_defaults(func=_cmd_upload)
    serve = commands.add_parser("serve", help="the HTTP API (FastAPI + uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_cmd_serve)
    query = commands.add_parser(
        "query",
        help="SQL (DuckDB) over the tables videos, face_detections, identity_clusters, "
        "selected_frames",
    )
    query.add_argument("sql", help="a SQL query")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.set_defaults(func=_cmd_query)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``talent`` console script."""
    args = build_parser().parse_args(argv)
    # Dagster wants a writable home for its instance; keep a one-off run's scratch out of $PWD.
    os.environ.setdefault("TALENT_CACHE_DIR", os.path.join(tempfile.gettempdir(), "talent-cache"))
    try:
        return args.func(args)
    except CliError as err:
        print(f"talent: error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("talent: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the promise is one line, never a traceback
        print(f"talent: error: {type(err).__name__}: {err}".splitlines()[0], file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
