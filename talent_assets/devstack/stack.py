"""The local stack: SeaweedFS + Dagster webserver and daemon with the S3 sensor running.

``talent up`` keeps its data under ``./.talent/`` (S3 objects, the Dagster instance, logs,
generated credentials) so a restart finds everything again. ``talent demo`` runs the same
stack in a temporary folder. Dagster's ``dagster dev`` only shuts its children down cleanly
on SIGINT, so that is what we send it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from talent_assets.defs.tags import PIPELINE_TAG_KEY, SOURCE_KEY_TAG
from talent_assets.devstack.local_postgres import LocalPostgres
from talent_assets.devstack.local_s3 import LocalS3Server
from talent_assets.infra.settings import Settings

DEFAULT_ROOT = Path(".talent")
STACK_FILE = "stack.json"
CREDENTIALS_FILE = "credentials.json"
UI_READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0


class StackError(RuntimeError):
    """The stack could not start or is not running."""


@dataclass(frozen=True)
class StackInfo:
    """What clients need to reach a running stack (no secrets: those stay in the env/file)."""

    endpoint_url: str
    bucket: str
    video_prefix: str
    ui_url: str
    dagster_home: str
    # The Dagster storage's PostgreSQL URL without its password (None: SQLite).
    postgres_url: str | None = None

    @classmethod
    def load(cls, root: Path) -> StackInfo:
        path = root / STACK_FILE
        if not path.is_file():
            raise StackError("no local stack is running here (start one with `talent up`)")
        return cls(**json.loads(path.read_text()))


def load_credentials(root: Path) -> tuple[str, str]:
    """The stack's S3 key pair: from the environment, else generated once and kept in root.

    The file is created with mode 0600 and never printed.
    """
    access = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if access and secret:
        return access, secret
    path = root / CREDENTIALS_FILE
    if path.is_file():
        data = json.loads(path.read_text())
        return data["access_key"], data["secret_key"]
    access, secret = f"talent{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    save_credentials(root, access, secret)
    return access, secret


def save_credentials(root: Path, access: str, secret: str) -> None:
    """Keep the key pair for ``talent upload`` and later restarts (owner-only file)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / CREDENTIALS_FILE
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"access_key": access, "secret_key": secret}, handle)


def start_s3(root: Path, credentials: tuple[str, str] | None) -> LocalS3Server:
    """Start SeaweedFS with its data in ``root/s3``: with ``credentials`` (then kept in root),
    else the pair kept in root or the environment (:func:`load_credentials`)."""
    root.mkdir(parents=True, exist_ok=True)
    if credentials:
        access, secret = credentials
        save_credentials(root, access, secret)
    else:
        access, secret = load_credentials(root)
    s3 = LocalS3Server(root / "s3", access_key=access, secret_key=secret)
    s3.start()
    return s3


def pipeline_environment(
    s3: LocalS3Server, bucket: str, settings: Settings, sensor_interval_s: int, dagster_home: Path
) -> dict[str, str]:
    """What the pipeline (code location, run workers, clients) needs to use this S3 server:
    credentials, endpoint, bucket, prefix, warehouse, the sensor on, and the Dagster home."""
    return {
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_REGION": settings.region,
        "TALENT_S3_ENDPOINT_URL": s3.endpoint_url,
        "TALENT_BUCKET": bucket,
        "TALENT_VIDEO_PREFIX": settings.video_prefix,
        "TALENT_WAREHOUSE": f"s3://{bucket}/warehouse",
        "TALENT_SENSOR_DEFAULT_STATUS": "running",
        "TALENT_SENSOR_INTERVAL_S": str(sensor_interval_s),
        "DAGSTER_HOME": str(dagster_home),
    }


def wait_for_http(
    url: str, proc: subprocess.Popen[bytes] | None, what: str, log: Path, timeout_s: float = 0
) -> None:
    """Wait until ``url`` answers 200; fail early (naming ``log``) if ``proc`` exits."""
    deadline = time.monotonic() + (timeout_s or UI_READY_TIMEOUT_S)
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode}; see {log}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    raise StackError(f"{what} did not answer {url} within {timeout_s or UI_READY_TIMEOUT_S:.0f} s")


def stop_process_group(
    proc: subprocess.Popen[bytes],
    first_signal: int = signal.SIGTERM,
    wait_s: float = STOP_TIMEOUT_S,
) -> None:
    """Stop ``proc`` (started with ``start_new_session``) and everything in its group:
    ``first_signal``, then SIGTERM, then SIGKILL; finally SIGKILL to the group, so no run
    worker it started outlives it."""
    if proc.poll() is None:
        pgid = os.getpgid(proc.pid)
        for sig, wait in ((first_signal, wait_s), (signal.SIGTERM, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group id is the leader's pid
    proc.wait(timeout=5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class RunMonitoring:
    """The daemon's run monitoring, for an instance whose runs outlive the process that
    launched them (separate services; see ``services.py``).

    The DefaultRunLauncher cannot check a run worker's health (Dagster's
    ``supports_check_run_worker_health`` is False for it) and cannot resume runs, so with it
    monitoring catches a lost run only by its timeouts: a run that never reaches STARTED
    (``start_timeout_s``), one stuck cancelling (``cancel_timeout_s``), and one STARTED for
    longer than ``max_runtime_s`` (its worker died with its code server, say). Each is marked
    failed, and run retries launch it again. ``max_resume_run_attempts`` stays 0: a value
    above 0 makes the daemon call ``resume_run``, which this launcher does not implement.
    """

    start_timeout_s: int = 180
    cancel_timeout_s: int = 180
    # 0 = no limit. A lost STARTED run is only found by this with the DefaultRunLauncher.
    max_runtime_s: int = 3600
    poll_interval_s: int = 30
    # The run queue's pace (written only with monitoring, i.e. for the separate services).
    # The daemon looks at the queue every ``dequeue_interval_s`` (Dagster's default: 5). With
    # the DefaultRunLauncher a launch waits until the run's new process has imported the
    # code (seconds), so runs dequeued together are launched in threads, not one by one.
    dequeue_interval_s: int = 5


def dagster_yaml(
    max_concurrent_videos: int,
    postgres: bool = False,
    *,
    monitoring: RunMonitoring | None = None,
    postgres_parts: bool = False,
) -> str:
    """Instance config: a run queue that caps concurrent videos, run retries, no telemetry;
    with ``postgres``, runs, event logs and schedules in PostgreSQL at ``DAGSTER_PG_URL``
    (read from the environment by every process that opens the instance), or with
    ``postgres_parts`` from ``DAGSTER_PG_HOST``/``_PORT``/``_USERNAME``/``_PASSWORD``/``_DB``
    (what a compose file or Kubernetes Secret provides). With ``monitoring``, the daemon's run
    monitoring, and runs that could not be launched because the code server was unreachable
    go back to the queue instead of failing.

    Run retries only cover crashed runs (a killed worker, a lost process): op failures are
    retried by the assets' RetryPolicy, and bad input must not be retried at all.
    """
    limit = max(1, max_concurrent_videos)
    text = f"""\
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
{_run_queue_yaml(monitoring) if monitoring else ""}concurrency:
  runs:
    max_concurrent_runs: {limit * 2 + 1}
    tag_concurrency_limits:
      - key: {PIPELINE_TAG_KEY}
        value: process_video
        limit: {limit}
      - key: {PIPELINE_TAG_KEY}
        value: talent_registry
        limit: 1
  pools:
    default_limit: 1
run_retries:
  enabled: true
  max_retries: 2
  retry_on_asset_or_op_failure: false
telemetry:
  enabled: false
"""
    if monitoring is not None:
        text += _run_monitoring_yaml(monitoring)
    if postgres_parts:
        return text + POSTGRES_PARTS_STORAGE_YAML
    return text + (POSTGRES_STORAGE_YAML if postgres else "")


def _run_queue_yaml(monitoring: RunMonitoring) -> str:
    # A run dequeued while its code server restarts would otherwise fail at launch (and only
    # a run retry would bring it back); requeued, it simply waits for the server.
    return f"""\
  config:
    max_user_code_failure_retries: 5
    user_code_failure_retry_delay: 10
    dequeue_interval_seconds: {monitoring.dequeue_interval_s}
    dequeue_use_threads: true
"""


def _run_monitoring_yaml(monitoring: RunMonitoring) -> str:
    return f"""\
run_monitoring:
  enabled: true
  start_timeout_seconds: {monitoring.start_timeout_s}
  cancel_timeout_seconds: {monitoring.cancel_timeout_s}
  max_runtime_seconds: {monitoring.max_runtime_s}
  max_resume_run_attempts: 0
  poll_interval_seconds: {monitoring.poll_interval_s}
"""


def dagster_pg_url(url: str) -> str:
    """``url`` with the psycopg2 driver named: dagster-postgres is written for psycopg2, and
    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, on which its queries fail."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


#: dagster-postgres storage for runs, event logs and schedules (one URL for all three).
POSTGRES_STORAGE_YAML = """\
storage:
  postgres:
    postgres_url:
      env: DAGSTER_PG_URL
"""

#: The same storage from the parts a deployment's secrets provide. The psycopg2 driver is
#: named for the reason given in :func:`dagster_pg_url`.
POSTGRES_PARTS_STORAGE_YAML = """\
storage:
  postgres:
    postgres_db:
      hostname:
        env: DAGSTER_PG_HOST
      port:
        env: DAGSTER_PG_PORT
      username:
        env: DAGSTER_PG_USERNAME
      password:
        env: DAGSTER_PG_PASSWORD
      db_name:
        env: DAGSTER_PG_DB
      scheme: postgresql+psycopg2
"""


class LocalStack:
    """SeaweedFS on loopback plus ``dagster dev`` (webserver + daemon) with the sensor on."""

    def __init__(
        self,
        root: Path = DEFAULT_ROOT,
        *,
        bucket: str | None = None,
        ui_port: int | None = None,
        sensor_interval_s: int = 5,
        max_concurrent_videos: int | None = None,
        credentials: tuple[str, str] | None = None,
        postgres: bool = False,
    ) -> None:
        self.settings = Settings.from_env()
        self.root = Path(root).resolve()
        self.bucket = bucket or self.settings.bucket
        self.ui_port = ui_port
        self.sensor_interval_s = sensor_interval_s
        self.max_concurrent_videos = max_concurrent_videos or self.settings.max_concurrent_videos
        self.credentials = credentials
        # Dagster's storage: a local PostgreSQL server (``talent up --postgres``), the one
        # DAGSTER_PG_URL names, or SQLite under the Dagster home.
        self.postgres = LocalPostgres(self.root / "postgres") if postgres else None
        self.postgres_url = os.environ.get("DAGSTER_PG_URL") if not postgres else None
        self.s3: LocalS3Server | None = None
        self.dagster: subprocess.Popen[bytes] | None = None
        self.info: StackInfo | None = None

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    def environment(self) -> dict[str, str]:
        """The environment the pipeline runs with inside this stack."""
        if self.s3 is None:
            raise StackError("the stack is not started")
        return {
            **pipeline_environment(
                self.s3, self.bucket, self.settings, self.sensor_interval_s, self.dagster_home
            ),
            **({"DAGSTER_PG_URL": self._pg_url()} if self._pg_url() else {}),
        }

    def _pg_url(self) -> str | None:
        if self.postgres is not None and self.postgres.running:
            return dagster_pg_url(self.postgres.url)
        return self.postgres_url

    def start(self) -> StackInfo:
        """Start S3, then Dagster; returns once the UI answers."""
        self.s3 = start_s3(self.root, self.credentials)
        try:
            if self.postgres is not None:
                self.postgres.start()
            self.s3.ensure_bucket(self.bucket)
            self.dagster_home.mkdir(parents=True, exist_ok=True)
            (self.dagster_home / "dagster.yaml").write_text(
                dagster_yaml(self.max_concurrent_videos, postgres=self._pg_url() is not None)
            )
            port = self.ui_port or free_port()
            env = {**os.environ, **self.environment()}
            logs = self.root / "logs"
            logs.mkdir(exist_ok=True)
            log = (logs / "dagster.log").open("ab")
            dagster = str(Path(sys.executable).with_name("dagster"))
            self.dagster = subprocess.Popen(
                [dagster, "dev", "-m", "talent_assets.definitions", "-h", "127.0.0.1",
                 "-p", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so SIGINT reaches all
            )  # fmt: skip
            log.close()
            ui_url = f"http://127.0.0.1:{port}"
            wait_for_http(
                f"{ui_url}/server_info", self.dagster, "dagster dev", logs / "dagster.log"
            )
            env_prefix = self.environment()["TALENT_VIDEO_PREFIX"]
            self.info = StackInfo(
                endpoint_url=self.s3.endpoint_url,
                bucket=self.bucket,
                video_prefix=env_prefix,
                ui_url=ui_url,
                dagster_home=str(self.dagster_home),
                postgres_url=self.postgres.url_without_password if self.postgres else None,
            )
            (self.root / STACK_FILE).write_text(json.dumps(self.info.__dict__, indent=2))
            return self.info
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGINT to ``dagster dev`` (then harder if it lingers), then stop S3."""
        if self.dagster is not None:
            # SIGINT first: ``dagster dev`` shuts its children down cleanly only on that.
            stop_process_group(self.dagster, first_signal=signal.SIGINT)
        self.dagster = None
        if self.postgres is not None and self.postgres.running:
            self.postgres.stop()  # after Dagster, its client; the data stays
        if self.s3 is not None:
            self.s3.stop()
            self.s3 = None
        (self.root / STACK_FILE).unlink(missing_ok=True)

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def wait_for_runs(dagster_home: Path, keys: list[str], timeout_s: float = 600.0) -> dict[str, Any]:
    """Wait until a run for each S3 key (started by the sensor) has finished.

    Returns the latest run per key. Reads the stack's own Dagster instance.
    """
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    finished = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + timeout_s
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        while True:
            latest: dict[str, Any] = {}
            for key in keys:
                runs = instance.get_runs(filters=RunsFilter(tags={SOURCE_KEY_TAG: key}), limit=1)
                if runs:
                    latest[key] = runs[0]
            done = len(latest) == len(keys) and all(
                run.status in finished for run in latest.values()
            )
            if done:
                return latest
            if time.monotonic() > deadline:
                waiting = [k for k in keys if k not in latest or latest[k].status not in finished]
                raise StackError(f"runs did not finish within {timeout_s:.0f} s: {waiting}")
            time.sleep(1.0)


def use_running_stack(root: Path = DEFAULT_ROOT) -> StackInfo | None:
    """Point this process's environment at a running ``talent up`` stack, if there is one.

    Only when no S3 endpoint is configured explicitly, so an explicit configuration always
    wins. Sets the endpoint, bucket, prefix, Dagster home (runs then show in the stack's
    UI) and, unless already set, the stack's credentials.
    """
    if Settings.from_env().endpoint_url:
        return None
    try:
        info = StackInfo.load(root)
    except StackError:
        return None
    access, secret = load_credentials(root)
    os.environ.update(
        {
            "TALENT_S3_ENDPOINT_URL": info.endpoint_url,
            "TALENT_BUCKET": info.bucket,
            "TALENT_VIDEO_PREFIX": info.video_prefix,
            "DAGSTER_HOME": info.dagster_home,
            "AWS_ACCESS_KEY_ID": access,
            "AWS_SECRET_ACCESS_KEY": secret,
        }
    )
    os.environ.setdefault("AWS_REGION", "us-east-1")
    os.environ.pop("TALENT_WAREHOUSE", None)
    if info.postgres_url:
        # The instance's dagster.yaml reads DAGSTER_PG_URL: the stack's URL and its password.
        password = LocalPostgres(root / "postgres").password_file.read_text().strip()
        os.environ["DAGSTER_PG_URL"] = dagster_pg_url(
            info.postgres_url.replace(
                "postgresql://dagster@", f"postgresql://dagster:{quote(password, safe='')}@", 1
            )
        )
    return info
