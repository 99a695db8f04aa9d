"""Claims about the front ends (``talent query``, ``talent up``, ``talent serve``, the API key
check, the Makefile) that docs/claims.md lists without a test.

Real parts only: the session's SeaweedFS server, real DuckDB with the httpfs wheel, real
Dagster instances read from the stack's own ``dagster.yaml``, ``talent``'s own ``main``, real
uvicorn, real ``make``. The one stand-in is the ``dagster`` executable that ``talent up``
launches (a script that records its command line and environment, then exits): the test sees
exactly what ``dagster dev`` would be given, without starting Dagster.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import io
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest
from dagster import DagsterInstance, DagsterRunStatus

from talent_assets.apps import cli
from talent_assets.apps.api import create_app
from talent_assets.apps.query import QueryError, connect, run_query
from talent_assets.core.video_id import video_id_for
from talent_assets.definitions import build_definitions
from talent_assets.defs.jobs import process_video_job
from talent_assets.devstack import stack as stack_module
from talent_assets.infra.settings import Settings
from talent_assets.infra.warehouse import Warehouse
from tests.integration.test_api import API_KEY, serve
from tests.support.pipeline import store_for

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()

# --------------------------------------------------------------------------- helpers


def _dead_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _videos_row(video_id: str, key: str) -> pa.Table:
    """One ``videos`` row, as ``raw_video`` writes it (cast to the schema by the warehouse)."""
    return pa.Table.from_pylist(
        [
            {
                "video_id": video_id,
                "bucket": "talent-test",
                "key": key,
                "etag": "0123",
                "size_bytes": 1000,
                "duration_s": 2.0,
                "fps": 25.0,
                "width": 64,
                "height": 48,
                "codec": "h264",
                "rotation": 0,
                "frames": 50,
                "ingested_at": dt.datetime.now(dt.UTC),
            }
        ]
    )


@dataclass
class TwoVideos:
    """A fresh S3 warehouse holding a ``videos`` partition for each of two videos."""

    settings: Settings
    warehouse: Warehouse
    first: str  # the video id whose partition DuckDB's glob lists first
    last: str
    keys: dict[str, str]  # video id -> S3 key of the video


@pytest.fixture
def two_videos(talent_env: Settings, monkeypatch: pytest.MonkeyPatch) -> TwoVideos:
    """Two videos' partitions, written through the pipeline's own :class:`Warehouse`, under a
    warehouse prefix of this test alone (the session's bucket is shared)."""
    prefix = f"claims-frontends/{uuid.uuid4().hex[:8]}/warehouse/"
    monkeypatch.setenv("TALENT_WAREHOUSE", f"s3://{talent_env.bucket}/{prefix}")
    settings = Settings.from_env()
    warehouse = Warehouse(store_for(settings), prefix)
    keys = {}
    for key in ("videos/claims/one.mp4", "videos/claims/two.mp4"):
        vid = video_id_for(settings.bucket, key, settings.video_prefix)
        warehouse.write("videos", vid, _videos_row(vid, key))
        keys[vid] = key
    first, last = sorted(keys)  # S3 lists keys in byte order, and so does DuckDB's glob
    return TwoVideos(settings, warehouse, first, last, keys)


def _corrupt(videos: TwoVideos, video_id: str) -> None:
    """Replace one video's ``videos`` partition object with bytes that are not Parquet."""
    key = videos.warehouse.partition_key("videos", video_id)
    videos.warehouse.store.put_bytes(key, b"not parquet at all " * 64, "application/octet-stream")


# --------------------------------------------------------------------------- talent query


def test_query_loads_httpfs_from_the_wheel_and_downloads_nothing(
    two_videos: TwoVideos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README, Analysts' SQL: "on S3 through DuckDB's httpfs extension, which comes from PyPI
    with the package and is loaded from disk: nothing is downloaded at run time".

    Every way DuckDB could fetch an extension is made to fail: each connection the code opens
    gets an empty extension directory and an extension repository on a dead port (on top of
    the code's own config), and every HTTP(S) proxy variable points at a dead port (loopback,
    where the S3 server is, bypasses it, as with curl). A query over the S3 warehouse must
    still answer, from a connection with extension autoinstall and autoload off, with httpfs
    loaded but never installed, and nothing may have been put in the extension directory.
    """
    dead = f"http://127.0.0.1:{_dead_port()}"
    extension_dir = tmp_path / "duckdb-extensions"
    extension_dir.mkdir()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.duckdb to fall back on
    real_connect = duckdb.connect
    configs: list[dict[str, Any]] = []

    def offline_connect(database: str = ":memory:", *args: Any, **kwargs: Any) -> Any:
        configs.append(dict(kwargs.get("config") or {}))
        kwargs["config"] = {
            **configs[-1],
            "extension_directory": str(extension_dir),
            "custom_extension_repository": dead,
            "autoinstall_extension_repository": dead,
        }
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", offline_connect)

    rows = json.loads(
        run_query(
            "SELECT video_id, key FROM videos ORDER BY video_id",
            settings=two_videos.settings,
            fmt="json",
        )
    )
    assert rows == [{"video_id": v, "key": two_videos.keys[v]} for v in sorted(two_videos.keys)]
    with connect(two_videos.settings) as con:
        assert con.execute(
            "SELECT current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions')"
        ).fetchone() == (False, False)
        assert con.execute(
            "SELECT loaded, installed FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
        ).fetchone() == (True, False)
    assert len(configs) == 2  # both connections went through the offline settings
    assert list(extension_dir.iterdir()) == []  # nothing was installed (downloaded)


def test_video_id_filter_reads_only_that_videos_files(two_videos: TwoVideos) -> None:
    """README, Analysts' SQL: "`video_id` is the partition: a filter on it reads only that
    video's files".

    The last-listed video's partition object is replaced with garbage in S3: a query
    filtering on the other video still answers (the garbage is never read), while an
    unfiltered query, or one filtering on the damaged video, fails on that very file.
    """
    _corrupt(two_videos, two_videos.last)
    settings = two_videos.settings
    good = two_videos.first
    rows = json.loads(
        run_query(
            f"SELECT video_id, key FROM videos WHERE video_id = '{good}'",
            settings=settings,
            fmt="json",
        )
    )
    assert rows == [{"video_id": good, "key": two_videos.keys[good]}]
    damaged = f"video_id={two_videos.last}/part-0.parquet"
    for sql in (
        "SELECT count(*) FROM videos",
        f"SELECT key FROM videos WHERE video_id = '{two_videos.last}'",
    ):
        with pytest.raises(QueryError, match=re.escape(damaged)):
            run_query(sql, settings=settings, fmt="json")


@pytest.mark.xfail(
    strict=True,
    raises=QueryError,
    reason="the views bind their columns by reading the footer of the table's first-listed "
    "partition file (at connect and at each query), so that file is read whatever the filter",
)
def test_video_id_filter_does_not_read_the_first_listed_partition(two_videos: TwoVideos) -> None:
    """README, Analysts' SQL: "a filter on it reads only that video's files", when the other
    video is the one DuckDB lists first. Broken today: with the first-listed partition of a
    table damaged, ``connect`` itself fails, so every ``talent query`` fails, filtered or not.
    """
    _corrupt(two_videos, two_videos.first)
    good = two_videos.last
    rows = json.loads(
        run_query(
            f"SELECT video_id FROM videos WHERE video_id = '{good}'",
            settings=two_videos.settings,
            fmt="json",
        )
    )
    assert rows == [{"video_id": good}]


# --------------------------------------------------------------------------- talent up


@dataclass(frozen=True)
class StubbedUp:
    """What ``talent up`` gave the ``dagster`` executable it started."""

    exit_code: int
    stderr: str
    argv: list[str]
    env: dict[str, str]
    root: Path


STUB_DAGSTER = """#!{python}
import json, os, sys
with open({out!r}, "w") as handle:
    json.dump({{"argv": sys.argv[1:], "env": dict(os.environ)}}, handle)
sys.exit(3)
"""


@pytest.fixture(scope="module")
def stubbed_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubbedUp]:
    """``talent up --sensor-interval 7`` through the CLI's ``main`` with
    ``TALENT_MAX_CONCURRENT_VIDEOS=3``: a real SeaweedFS starts and the stack writes its
    ``dagster.yaml``; the ``dagster`` it launches (next to the interpreter, as the stack finds
    it) is a stub that records its command line and environment and exits, so ``talent up``
    stops the stack and exits 1. ``TALENT_SENSOR_INTERVAL_S=99`` in the caller's environment
    shows that the flag, not the variable, sets the stack's interval."""
    folder = tmp_path_factory.mktemp("stubbed-up")
    record = folder / "dagster-call.json"
    bindir = folder / "bin"
    bindir.mkdir()
    stub = bindir / "dagster"
    stub.write_text(STUB_DAGSTER.format(python=sys.executable, out=str(record)))
    stub.chmod(0o755)
    root = folder / "stack"
    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "TALENT_S3_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        mp.delenv("DAGSTER_HOME", raising=False)
        mp.setenv("TALENT_MAX_CONCURRENT_VIDEOS", "3")
        mp.setenv("TALENT_SENSOR_INTERVAL_S", "99")
        mp.setenv("TALENT_CACHE_DIR", str(folder / "cache"))
        # The stack starts `dagster` from the folder of sys.executable: point only the stack
        # module's view of it at the stub's folder.
        mp.setattr(stack_module, "sys", types.SimpleNamespace(executable=str(bindir / "python")))
        with contextlib.redirect_stderr(stderr):
            code = cli.main(["up", "--root", str(root), "--sensor-interval", "7"])
    assert record.is_file(), f"talent up never started dagster: {stderr.getvalue()}"
    call = json.loads(record.read_text())
    yield StubbedUp(code, stderr.getvalue(), call["argv"], call["env"], root)


def test_up_sensor_interval_flag_sets_the_sensor_interval(stubbed_up: StubbedUp) -> None:
    """README, local stack: "The sensor `s3_video_sensor` lists `TALENT_VIDEO_PREFIX` every few
    seconds (`--sensor-interval`, or `TALENT_SENSOR_INTERVAL_S` for `dagster dev` elsewhere)".

    ``talent up --sensor-interval 7`` starts ``dagster dev`` on the code location with
    ``TALENT_SENSOR_INTERVAL_S=7`` (the caller's 99 overridden), and the code location built
    from that environment has a running sensor with a 7-s minimum interval.
    """
    from dagster import DefaultSensorStatus

    assert stubbed_up.exit_code == 1
    assert "dagster dev exited with code 3" in stubbed_up.stderr
    assert stubbed_up.argv[:3] == ["dev", "-m", "talent_assets.definitions"]
    assert stubbed_up.env["TALENT_SENSOR_INTERVAL_S"] == "7"
    sensor = build_definitions(Settings.from_env(stubbed_up.env)).resolve_sensor_def(
        "s3_video_sensor"
    )
    assert sensor.minimum_interval_seconds == 7
    assert sensor.default_status == DefaultSensorStatus.RUNNING


def test_stack_queue_runs_at_most_max_concurrent_videos(stubbed_up: StubbedUp) -> None:
    """README, local stack: "The stack's run queue runs at most `TALENT_MAX_CONCURRENT_VIDEOS`
    (default 1) videos at a time (a tag concurrency limit on `talent/pipeline=process_video`)".

    With the variable at 3, the instance ``dagster dev`` is given (its ``DAGSTER_HOME``, with
    the ``dagster.yaml`` the stack wrote) carries that limit, and Dagster's own queue daemon,
    deciding on queued runs of the real ``process_video`` job, starts 3 of 5 when none is
    running, 2 more when one is, and none while 3 are. (The decision is the daemon's
    ``_get_runs_to_dequeue``, a private method: the dequeue without launching anything.)
    """
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
        QueuedRunCoordinatorDaemon,
    )

    home = Path(stubbed_up.env["DAGSTER_HOME"])
    assert home == (stubbed_up.root / "dagster").resolve()
    assert (home / "dagster.yaml").is_file()
    origin = RemoteJobOrigin(
        RemoteRepositoryOrigin(
            InProcessCodeLocationOrigin(
                LoadableTargetOrigin(module_name="talent_assets.definitions")
            ),
            "__repository__",
        ),
        "process_video",
    )
    tags = dict(process_video_job.tags)  # what every run of the job carries

    def add_run(status: DagsterRunStatus) -> None:
        instance.add_run(
            DagsterRun(
                job_name="process_video",
                run_id=str(uuid.uuid4()),
                status=status,
                tags={**tags, "talent/video": uuid.uuid4().hex},
                remote_job_origin=origin,
            )
        )

    with DagsterInstance.from_config(str(home)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "talent/pipeline", "value": "process_video", "limit": 3} in limits
        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)

        def startable() -> int:
            return len(
                daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)
            )

        for _ in range(5):
            add_run(DagsterRunStatus.QUEUED)
        assert startable() == 3
        add_run(DagsterRunStatus.STARTED)
        assert startable() == 2
        add_run(DagsterRunStatus.STARTED)
        add_run(DagsterRunStatus.STARTED)
        assert startable() == 0


# --------------------------------------------------------------------------- talent serve


def test_serve_defaults_to_the_readme_address() -> None:
    """README, HTTP API: "served by `talent serve` (uvicorn, 127.0.0.1:8000)"; the address is
    read from the README, so the parser's defaults and the sentence must agree (the curl
    example uses the same address)."""
    found = re.search(r"`talent serve` \(uvicorn, ([0-9.]+):(\d+)\)", README)
    assert found, "the README no longer states the address of `talent serve`"
    host, port = found.group(1), int(found.group(2))
    args = cli.build_parser().parse_args(["serve"])
    assert (args.host, args.port) == (host, port)
    assert f"http://{host}:{port}/process" in README


def test_serve_in_a_stack_folder_uses_the_stacks_dagster_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """README, HTTP API: "With a `talent up` stack running in the same folder, `talent serve`
    (like `talent query` and `talent process s3://...`) uses it automatically, and the API's
    runs show in the stack's Dagster UI".

    ``talent serve`` through the CLI's ``main``, in a folder whose ``.talent/`` holds a
    stack's ``stack.json`` and ``credentials.json`` (no stack running: only the files are
    read), with no S3, credential or Dagster variable set. uvicorn is replaced by a recorder
    that builds the app from the factory it was given, as uvicorn would: the app's Dagster
    instance is the stack's ``DAGSTER_HOME`` and its settings name the stack's endpoint.
    """
    root = tmp_path / ".talent"
    home = root / "dagster"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(stack_module.dagster_yaml(1))
    info = {
        "endpoint_url": f"http://127.0.0.1:{_dead_port()}",
        "bucket": "stackbucket",
        "video_prefix": "videos/",
        "ui_url": "http://127.0.0.1:3999",
        "dagster_home": str(home),
    }
    (root / "stack.json").write_text(json.dumps(info))
    stack_module.save_credentials(root, "stackkey", secrets.token_urlsafe(24))
    monkeypatch.chdir(tmp_path)
    touched = (
        "TALENT_S3_ENDPOINT_URL",
        "TALENT_BUCKET",
        "TALENT_VIDEO_PREFIX",
        "TALENT_WAREHOUSE",
        "DAGSTER_HOME",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    )
    for name in touched:  # set then delete, so monkeypatch restores what serve sets
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    monkeypatch.setenv("TALENT_CACHE_DIR", str(tmp_path / "cache"))
    served: dict[str, Any] = {}

    def fake_uvicorn_run(target: str, **options: Any) -> None:
        from uvicorn.importer import import_from_string

        assert options.get("factory") is True
        app = import_from_string(target)()
        try:
            served.update(
                options,
                instance_root=app.state.instance.root_directory,
                endpoint_url=app.state.settings.endpoint_url,
                bucket=app.state.settings.bucket,
            )
        finally:
            app.state.queue.shutdown()
            app.state.instance.dispose()

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", fake_uvicorn_run)
    assert cli.main(["serve"]) == 0, capsys.readouterr().err
    assert served["instance_root"] == str(home)
    assert (served["endpoint_url"], served["bucket"]) == (info["endpoint_url"], "stackbucket")
    assert (served["host"], served["port"]) == ("127.0.0.1", 8000)
    assert os.environ["AWS_ACCESS_KEY_ID"] == "stackkey"
    assert "Using the local stack" in capsys.readouterr().out


# --------------------------------------------------------------------------- API key


def test_api_key_is_compared_in_constant_time(
    dagster_instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README, HTTP API: "every other request needs `Authorization: Bearer <key>` (compared in
    constant time) or gets 401"; design: "with `hmac.compare_digest`".

    Requests served by uvicorn: the presented token and the full key, as bytes, go to
    ``hmac.compare_digest`` (or ``secrets.compare_digest``) for the right key and for wrong
    keys of any length, a one-byte one and a prefix of the key included, so no early length
    check or plain ``==`` decides first.
    """
    import secrets as secrets_module

    real = hmac.compare_digest
    calls: list[tuple[Any, Any]] = []

    def recording(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    monkeypatch.setattr(secrets_module, "compare_digest", recording)
    settings = replace(Settings(), api_key=API_KEY)
    key = API_KEY.encode()
    tokens = {API_KEY: 404, "x": 401, API_KEY[:-1]: 401, API_KEY[:-1] + "!": 401}
    with serve(create_app(settings, dagster_instance)) as url, httpx.Client(base_url=url) as http:
        for token, status in tokens.items():
            calls.clear()
            answer = http.get("/no-such-path", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == status, (token, answer.text)
            assert len(calls) == 1, f"{token!r} was not compared with compare_digest"
            assert all(isinstance(arg, bytes) for arg in calls[0])
            assert sorted(calls[0]) == sorted([token.encode(), key])


# --------------------------------------------------------------------------- Makefile


def _make_dry_run(*args: str) -> list[str]:
    """``make -n -B ARGS``: every command the target would run, its prerequisites included
    (``-B`` treats the venv stamp as out of date, as on a fresh machine); runs nothing."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    proc = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout.splitlines()


def _readme_make_targets() -> dict[str, str]:
    """``make TARGET   # what it does`` lines of the README's code blocks."""
    return dict(re.findall(r"^make ([\w-]+)\s+#\s*(.+)$", README, flags=re.M))


def _assert_after_sync(lines: list[str], command: Callable[[str], bool]) -> None:
    syncs = [i for i, line in enumerate(lines) if re.search(r"\buv\b.*\bsync --frozen\b", line)]
    runs = [i for i, line in enumerate(lines) if command(line)]
    assert syncs, f"no `uv sync --frozen` (setup) before the target: {lines}"
    assert runs, f"the documented command is missing: {lines}"
    assert syncs[0] < runs[0], lines


def test_make_targets_run_what_the_readme_says_after_setup() -> None:
    """README: "`make demo` set up, then run the whole pipeline ... `make test` set up, then
    run the test suite", "Both commands do all set-up on a fresh machine ...: they install uv
    if missing, create `.venv` from the lock file, and run"; Development: "`make test-fast`
    tests/unit + tests/integration, without those marked slow", "`make lint` ruff".

    ``make -n`` prints, for each target, the set-up (``uv sync --frozen``, i.e. from the lock,
    installing uv with pip when there is none) before the documented command.
    """
    documented = _readme_make_targets()
    assert {"demo", "test", "test-fast", "lint"} <= set(documented), documented
    demo_cmd = re.search(r"^(\.venv/bin/talent demo)\s+# what `make demo` runs$", README, re.M)
    assert demo_cmd, "the README no longer says what `make demo` runs"
    folders = re.findall(r"tests/\w+", documented["test-fast"])
    assert (
        folders == ["tests/unit", "tests/integration"] and "marked slow" in documented["test-fast"]
    )
    pytest_cmd = re.compile(r"^\.venv/bin/python -m pytest -q(?P<rest>.*)$")

    test = _make_dry_run("test")
    _assert_after_sync(
        test, lambda line: bool(re.fullmatch(r"\.venv/bin/python -m pytest -q", line))
    )
    fast = _make_dry_run("test-fast")
    expected_fast = " " + " ".join(folders) + ' -m "not slow"'
    _assert_after_sync(
        fast, lambda line: (m := pytest_cmd.match(line)) is not None and m["rest"] == expected_fast
    )
    lint = _make_dry_run("lint")
    _assert_after_sync(lint, lambda line: line == ".venv/bin/ruff check .")
    _assert_after_sync(lint, lambda line: line == ".venv/bin/ruff format --check .")
    _assert_after_sync(_make_dry_run("demo"), lambda line: line == demo_cmd.group(1))
    # Without uv on the machine, setup first installs it with pip.
    no_uv = _make_dry_run("UV=", "test")
    installs = [i for i, line in enumerate(no_uv) if re.search(r"-m pip install .*\buv; fi$", line)]
    syncs = [i for i, line in enumerate(no_uv) if "sync --frozen" in line]
    assert installs and syncs and installs[0] < syncs[0], no_uv
