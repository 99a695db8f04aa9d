"""``talent``: run the pipeline on one video, run the demo, and (later) the local stack."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from talent_assets.apps.cli_errors import CliError
from talent_assets.apps.talent_commands import add_talent_commands

EXIT_FAILED = 1


def _parse_s3(source: str) -> tuple[str, str]:
    bucket, _, key = source[len("s3://") :].partition("/")
    if not bucket or not key:
        raise CliError(f"not an s3://bucket/key address: {source}")
    return bucket, key


def process_video(
    source: str, *, out: Path | None, sample_fps: float | None, instance: Any = None
) -> dict[str, Any]:
    """Run the four assets for ``source``: a local file, ``s3://bucket/key``, or an
    ``http(s)://`` URL of a video file or an HLS playlist.

    Returns the manifest; raises :class:`CliError` with the run's one-line reason on failure.
    """
    from talent_assets.core.manifest import manifest_key
    from talent_assets.defs.instance import current_instance
    from talent_assets.infra.s3 import bucket_store
    from talent_assets.infra.storage import LocalObjectStore

    settings = _settings_for(source, sample_fps)
    instance = instance or current_instance(keep_history=False)
    # A video fetched from a URL for a local run (--out) lives here until the run is over.
    with tempfile.TemporaryDirectory(prefix="talent-url-") as workdir:
        key, storage, outcome = _run_source(source, settings, out, instance, Path(workdir))
    _send_webhook(instance, settings, storage, outcome.run_id)
    if not outcome.success:
        raise CliError(outcome.message)
    if outcome.registry_message:
        print(f"talent: warning: talents not updated: {outcome.registry_message}", file=sys.stderr)
    # Read back outside the run: resource methods need Dagster to resolve their EnvVars.
    outputs = LocalObjectStore(out.resolve()) if out is not None else bucket_store(settings)
    return json.loads(
        outputs.get_bytes(manifest_key(storage.output_prefix, key, storage.video_prefix))
    )


def _run_source(
    source: str, settings: Any, out: Path | None, instance: Any, workdir: Path
) -> tuple[str, Any, Any]:
    """(object key, storage resource, run outcome) of processing ``source``."""
    from talent_assets.apps.runner import process_partition, process_url
    from talent_assets.core.video_id import video_id_for
    from talent_assets.defs.resources import build_resources

    resources = build_resources(settings)
    detector = resources["detector"]
    if is_url(source) and out is None:
        storage = resources["storage"]
        key, outcome = process_url(
            source, settings=settings, resources={"storage": storage, "detector": detector},
            instance=instance,
        )  # fmt: skip
        return key, storage, outcome
    key, local_root, tags = _source_key(source, settings, out is None, workdir)
    storage = _storage_for(resources["storage"], out, local_root)
    input_bucket = "local" if storage.local_input_dir else settings.bucket
    video_id = video_id_for(input_bucket, key, storage.video_prefix)
    outcome = process_partition(
        video_id, key, resources={"storage": storage, "detector": detector}, instance=instance,
        tags=tags,
    )  # fmt: skip
    return key, storage, outcome


def _send_webhook(instance: Any, settings: Any, storage: Any, run_id: str) -> None:
    """``TALENT_WEBHOOK_URL``'s event for this run, unless a daemon on the instance sends it."""
    from talent_assets.apps.webhook_fallback import deliver_without_daemon

    record = deliver_without_daemon(instance, settings, storage, run_id)
    if record:
        print(f"talent: webhook {record}", file=sys.stderr)


def _settings_for(source: str, sample_fps: float | None) -> Any:
    """The environment's settings, with the bucket an ``s3://`` source names and the
    ``--sample-fps`` override."""
    from talent_assets.infra.settings import Settings

    settings = Settings.from_env()
    if source.startswith("s3://"):
        # The address names the bucket to use for this run (inputs and outputs).
        settings = settings.replace(bucket=_parse_s3(source)[0])
    if sample_fps is not None:
        if sample_fps <= 0:
            raise CliError("--sample-fps must be positive")
        settings = settings.replace(sample_fps=sample_fps)
    return settings


def is_url(source: str) -> bool:
    """Whether a ``talent process`` source is a URL rather than a file or ``s3://`` address
    (any ``scheme://`` but s3: the URL policy then refuses schemes other than http(s))."""
    return "://" in source and not source.startswith("s3://")


def _source_key(
    source: str, settings: Any, uploads: bool, workdir: Path
) -> tuple[str, Path | None, dict[str, str]]:
    """(object key, local folder holding it or None, extra run tags). Without ``--out`` a
    local file is first put in the bucket's video prefix, like any other video."""
    from talent_assets.infra.s3 import bucket_store

    if is_url(source):
        return _url_source(source, settings, workdir)
    if source.startswith("s3://"):
        return _parse_s3(source)[1], None, {}
    path = Path(source).expanduser()
    if not path.is_file():
        raise CliError(f"no such file: {source}")
    local_input = path.resolve()
    if not uploads:
        return local_input.name, local_input.parent, {}
    key = f"{settings.video_prefix}{local_input.name}"
    bucket_store(settings).put_file(key, local_input, "video/mp4")
    return key, None, {}


def _url_source(url: str, settings: Any, workdir: Path) -> tuple[str, Path, dict[str, str]]:
    """Fetch ``url`` (SSRF-guarded, within the TALENT_URL_* limits) into ``workdir/url/`` for
    a local run (``--out``); the partition and outputs follow the URL key."""
    from talent_assets.core.hls import PlaylistError
    from talent_assets.core.url_policy import UrlRefusedError, display_url
    from talent_assets.defs.tags import SOURCE_URL_TAG
    from talent_assets.infra.url_fetch import UrlFetchError
    from talent_assets.infra.url_video import VideoFetchError, fetch_url_video

    tags = {SOURCE_URL_TAG: display_url(url)}
    try:
        video = fetch_url_video(url, settings, workdir)
    except (UrlRefusedError, UrlFetchError, PlaylistError, VideoFetchError) as error:
        raise CliError(str(error)) from None
    key = video.key[len(settings.video_prefix) :]
    (workdir / key).parent.mkdir(parents=True, exist_ok=True)
    video.path.rename(workdir / key)
    return key, workdir, tags


def _storage_for(storage: Any, out: Path | None, local_root: Path | None) -> Any:
    """The storage resource, redirected to local folders for ``--out`` / a local input."""
    from talent_assets.defs.resources import TalentStorage

    overrides: dict[str, Any] = {}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        overrides["local_output_dir"] = str(out.resolve())
    if local_root is not None:
        overrides.update(local_input_dir=str(local_root), video_prefix="")
    if not overrides:
        return storage
    # Resources are immutable config; build a new one rather than copying a model.
    fields = {name: getattr(storage, name) for name in TalentStorage.model_fields}
    return TalentStorage(**{**fields, **overrides})


def _cmd_process(args: argparse.Namespace) -> int:
    from talent_assets.core.manifest import format_people
    from talent_assets.devstack.stack import use_running_stack

    if args.source.startswith("s3://") or args.out is None:
        use_running_stack()
    from talent_assets.apps.progress import show_progress

    # stderr only: a bar on a terminal, a line every 10 s otherwise; stdout stays the result.
    with show_progress():
        manifest = process_video(args.source, out=args.out, sample_fps=args.sample_fps)
    if args.json:
        print(json.dumps(manifest, indent=2))
    else:
        print(format_people(manifest))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from talent_assets.apps.demo import run_demo

    return run_demo(out=args.out, keep=args.keep)


def _cmd_up(args: argparse.Namespace) -> int:
    from talent_assets.apps.foreground import wait_until_interrupted
    from talent_assets.devstack.stack import LocalStack

    stack = LocalStack(
        args.root,
        ui_port=args.port,
        sensor_interval_s=args.sensor_interval,
        postgres=args.postgres,
    )
    print(f"Starting SeaweedFS and Dagster (data in {stack.root}) ...", flush=True)
    info = stack.start()
    try:
        print(f"Dagster UI:  {info.ui_url}")
        if info.postgres_url:
            print(f"PostgreSQL:  {info.postgres_url}  (Dagster's storage; password beside it)")
        print(
            f"S3 endpoint: {info.endpoint_url}  (bucket {info.bucket!r}; credentials in "
            f"{stack.root / 'credentials.json'} unless AWS_* are set)"
        )
        print(
            f"Upload:      talent upload VIDEO.mp4 ...   (to s3://{info.bucket}/"
            f"{info.video_prefix}; the sensor picks it up within seconds)"
        )
        print("Ctrl-C stops everything.", flush=True)
        wait_until_interrupted(stack)
    finally:
        print("Stopping ...", flush=True)
        stack.stop()
    return 0


def _cmd_upload(args: argparse.Namespace) -> int:
    from talent_assets.devstack.stack import StackError, StackInfo, load_credentials
    from talent_assets.infra.s3 import s3_client
    from talent_assets.infra.storage import S3ObjectStore

    try:
        info = StackInfo.load(args.root)
    except StackError as err:
        raise CliError(str(err)) from None
    access, secret = load_credentials(args.root)
    client = s3_client(
        endpoint_url=info.endpoint_url, region="us-east-1", access_key=access, secret_key=secret
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
    demo.add_argument(
        "--out", type=Path, default=Path("talent-demo"),
        help="where the frames, contact sheets, manifests and tables are copied "
        "(default ./talent-demo)",
    )  # fmt: skip
    demo.add_argument(
        "--keep", action="store_true",
        help="keep the stack running afterwards (to browse the runs in the UI) until Ctrl-C",
    )  # fmt: skip
    demo.set_defaults(func=_cmd_demo)
    up = commands.add_parser(
        "up", help="the local stack: S3 server, Dagster webserver + daemon, sensor on"
    )
    up.add_argument("--root", type=Path, default=Path(".talent"), help="where data is kept")
    up.add_argument("--port", type=int, help="Dagster UI port (default: a free one)")
    up.add_argument("--sensor-interval", type=int, default=5, help="seconds between ticks")
    up.add_argument(
        "--postgres",
        action="store_true",
        help="keep Dagster's runs and events in a local PostgreSQL server (data in --root)",
    )
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
        "selected_frames, talents, talent_appearances, talent_events",
    )
    query.add_argument("sql", help="a SQL query")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.set_defaults(func=_cmd_query)
    add_talent_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``talent`` console script."""
    args = build_parser().parse_args(argv)
    # Dagster wants a writable home for its instance; keep a one-off run's scratch out of $PWD.
    os.environ.setdefault("TALENT_CACHE_DIR", os.path.join(tempfile.gettempdir(), "talent-cache"))
    from talent_assets.infra.settings import SettingsError

    try:
        return args.func(args)
    except (CliError, SettingsError) as err:
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
