"""Production Dagster's topology on loopback: every service its own process.

Production runs Dagster as separate services sharing one PostgreSQL: the code location (a
gRPC code server that loads ``talent_assets.definitions`` and launches the runs), the
webserver and the daemon (sensors, run queue, run monitoring, run retries), each talking to
the code server over gRPC as ``workspace.yaml`` says. ``deploy/compose.yaml`` runs exactly
that; :class:`ProductionServices` starts the same processes here, with the same command
lines (:func:`service_commands`), the same ``workspace.yaml`` (:func:`workspace_yaml`) and the
same instance ``dagster.yaml`` (:func:`production_dagster_yaml`), plus a real PostgreSQL
(:class:`LocalPostgres`) and SeaweedFS (:class:`LocalS3Server`) in place of the compose
file's containers. A test checks that the compose file and this module agree.

Runs are launched by the DefaultRunLauncher: each is a subprocess of the code server, as in
compose. A crash of the code server's container takes its runs with it; :meth:`kill` does
the same to the code server's process group, and run monitoring plus run retries must then
bring those runs back (see :class:`~talent_assets.devstack.stack.RunMonitoring`).

The code server alone gets the pipeline's ``TALENT_*`` and S3 settings (sensors and runs
execute there); the webserver and daemon get only the Dagster home and the PostgreSQL
parts, as in compose.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from talent_assets.devstack.local_postgres import LocalPostgres
from talent_assets.devstack.local_s3 import LocalS3Server
from talent_assets.devstack.stack import (
    RunMonitoring,
    StackError,
    dagster_yaml,
    free_port,
    pipeline_environment,
    start_s3,
    stop_process_group,
    wait_for_http,
)
from talent_assets.infra.settings import Settings

#: The code location's name in the workspace (the webserver shows it; runs record it).
LOCATION_NAME = "talent_assets"
CODE_MODULE = "talent_assets.definitions"
#: The services in the order they start (the code server first: the others load from it).
SERVICES = ("code", "webserver", "daemon")
CODE_READY_TIMEOUT_S = 180.0
DAEMON_READY_TIMEOUT_S = 120.0
#: The repository a ``Definitions`` object becomes.
REPOSITORY_NAME = "__repository__"
#: The compose file's settings: its ports, and the concurrency its dagster.yaml allows.
COMPOSE_HOST = "0.0.0.0"
COMPOSE_PORTS = {"code": 4000, "webserver": 3000}
COMPOSE_DAGSTER_HOME = "/opt/dagster/dagster_home"
COMPOSE_CODE_HOST = "code"  # the code server's service name on the compose network
COMPOSE_MAX_CONCURRENT_VIDEOS = 1


_SENSOR_QUERY = """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
  __typename ... on Sensor { id } ... on PythonError { message } } }"""
_STOP_SENSOR = """mutation($id: String!) { stopSensor(id: $id) { __typename
  ... on StopSensorMutationResult { instigationState { status } }
  ... on PythonError { message } } }"""

_DAEMON_HEALTH = """{ instance { daemonHealth { allDaemonStatuses {
  daemonType required lastHeartbeatTime } } } }"""


def service_commands(host: str, ports: dict[str, int], workspace: str) -> dict[str, list[str]]:
    """The argv of each service (executable by name), bound to ``host``.

    The code server is ``dagster code-server start``, as the Helm chart runs a user
    deployment given ``codeServerArgs``: it keeps serving while it reloads its definitions.
    """
    return {
        "code": ["dagster", "code-server", "start", "-h", host, "-p", str(ports["code"]),
                 "-m", CODE_MODULE],
        "webserver": ["dagster-webserver", "-h", host, "-p", str(ports["webserver"]),
                      "-w", workspace],
        "daemon": ["dagster-daemon", "run", "-w", workspace],
    }  # fmt: skip


def workspace_yaml(code_host: str, code_port: int) -> str:
    """The webserver's and daemon's workspace: the one code location, over gRPC."""
    return f"""\
load_from:
  - grpc_server:
      host: {code_host}
      port: {code_port}
      location_name: {LOCATION_NAME}
"""


def production_dagster_yaml(
    max_concurrent_videos: int = COMPOSE_MAX_CONCURRENT_VIDEOS,
    monitoring: RunMonitoring | None = None,
) -> str:
    """The instance of the separate services: PostgreSQL from ``DAGSTER_PG_*``, the run
    queue, run retries and run monitoring (``deploy/dagster.yaml`` is this with defaults)."""
    return dagster_yaml(
        max_concurrent_videos,
        postgres=True,
        monitoring=monitoring or RunMonitoring(),
        postgres_parts=True,
    )


class ProductionServices:
    """PostgreSQL, SeaweedFS, the code server, the webserver and the daemon, each its own
    process on 127.0.0.1, configured like ``deploy/compose.yaml``."""

    def __init__(
        self,
        root: Path,
        *,
        bucket: str = "talent",
        sensor_interval_s: int = 2,
        max_concurrent_videos: int = 1,
        credentials: tuple[str, str] | None = None,
        monitoring: RunMonitoring | None = None,
        extra_env: dict[str, str] | None = None,
        stopped_sensors: tuple[str, ...] = (),
    ) -> None:
        """Configure (not start). ``extra_env`` is added to the code server's environment
        (the pipeline's settings, e.g. ``TALENT_SAMPLE_FPS``). ``stopped_sensors`` are
        stopped through the webserver before the daemon first starts (:meth:`stop_sensor`)."""
        self.settings = Settings.from_env()
        self.root = Path(root).resolve()
        self.bucket = bucket
        self.sensor_interval_s = sensor_interval_s
        self.max_concurrent_videos = max_concurrent_videos
        self.credentials = credentials
        self.monitoring = monitoring or RunMonitoring()
        self.extra_env = dict(extra_env or {})
        self.stopped_sensors = tuple(stopped_sensors)
        self.postgres = LocalPostgres(self.root / "postgres")
        self.s3: LocalS3Server | None = None
        self.ports: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.argv: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ paths and config

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def workspace_path(self) -> Path:
        return self.dagster_home / "workspace.yaml"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['webserver']}"

    def log_path(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def dagster_environment(self) -> dict[str, str]:
        """What every Dagster process needs: its home and PostgreSQL's parts (as compose's
        ``.env`` provides them)."""
        return {
            "DAGSTER_HOME": str(self.dagster_home),
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.postgres.port),
            "DAGSTER_PG_USERNAME": "dagster",
            "DAGSTER_PG_PASSWORD": unquote(urlsplit(self.postgres.url).password or ""),
            "DAGSTER_PG_DB": "dagster",
        }

    def environment(self) -> dict[str, str]:
        """The environment the pipeline runs with (the code server's; also what clients
        such as uploads, queries and ``DagsterInstance`` need)."""
        if self.s3 is None:
            raise StackError("the services are not started")
        common = pipeline_environment(
            self.s3, self.bucket, self.settings, self.sensor_interval_s, self.dagster_home
        )
        return {**common, **self.dagster_environment(), **self.extra_env}

    def _service_env(self, name: str) -> dict[str, str]:
        # The webserver and daemon get no S3 or TALENT_* settings: sensors and runs execute
        # in the code server, and compose gives those settings to it alone.
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TALENT_", "AWS_"))}
        own = self.environment() if name == "code" else self.dagster_environment()
        return {**base, **own}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ProductionServices:
        """Start PostgreSQL and S3, write the instance and workspace, then the code server
        (until it serves), the webserver (until it answers) and the daemon."""
        self.s3 = start_s3(self.root, self.credentials)
        try:
            self.postgres.start()
            self.s3.ensure_bucket(self.bucket)
            self.dagster_home.mkdir(parents=True, exist_ok=True)
            (self.dagster_home / "dagster.yaml").write_text(
                production_dagster_yaml(self.max_concurrent_videos, self.monitoring)
            )
            self.ports = {"code": free_port(), "webserver": free_port()}
            self.workspace_path.write_text(workspace_yaml("127.0.0.1", self.ports["code"]))
            self.argv = service_commands("127.0.0.1", self.ports, str(self.workspace_path))
            self.log_path("code").parent.mkdir(parents=True, exist_ok=True)
            for name in SERVICES:
                if name == "daemon":
                    for sensor in self.stopped_sensors:
                        self.stop_sensor(sensor)
                self.restart(name)
            return self
        except BaseException:
            self.stop()
            raise

    def restart(self, name: str) -> None:
        """(Re)start service ``name`` with its argv and port; return once it serves (the
        daemon: once each of its daemons has beaten)."""
        if name in self.procs and self.procs[name].poll() is None:
            raise StackError(f"{name} is still running; kill or stop it first")
        executable = str(Path(sys.executable).with_name(self.argv[name][0]))
        with self.log_path(name).open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(self.argv[name])}\n".encode())
            log.flush()
            self.procs[name] = subprocess.Popen(
                [executable, *self.argv[name][1:]],
                env=self._service_env(name),
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: a kill takes the service and what it started (the
                # code server's run workers), as a container's end does.
                start_new_session=True,
            )
        if name == "code":
            self._wait_for_code_server()
        elif name == "webserver":
            wait_for_http(f"{self.ui_url}/server_info", self.procs[name], name, self.log_path(name))
        else:
            self._wait_for_daemon(time.time())

    def _wait_for_code_server(self) -> None:
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=self.ports["code"], host="127.0.0.1")
        deadline = time.monotonic() + CODE_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.procs["code"].poll() is not None:
                raise StackError(f"the code server exited; see {self.log_path('code')}")
            # Connect first: the gRPC client prints every refused attempt to stderr.
            with contextlib.suppress(Exception):  # not listening yet, or still loading
                socket.create_connection(("127.0.0.1", self.ports["code"]), timeout=1).close()
                if client.health_check_query() == "SERVING":
                    return
            time.sleep(0.5)
        raise StackError(f"the code server did not serve within {CODE_READY_TIMEOUT_S:.0f} s")

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a GraphQL request to the webserver (errors raise)."""
        request = urllib.request.Request(
            f"{self.ui_url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            reply = json.loads(response.read())
        if reply.get("errors"):
            raise StackError(f"GraphQL errors: {reply['errors']}")
        return reply["data"]

    def stop_sensor(self, name: str) -> None:
        """Stop sensor ``name`` of the code location as the UI's toggle does (GraphQL
        ``stopSensor``); the stopped state is stored in the instance, so it outlives
        restarts of the daemon and the code server, whatever the sensor's default status."""
        selector = {"repositoryLocationName": LOCATION_NAME,
                    "repositoryName": REPOSITORY_NAME, "sensorName": name}  # fmt: skip
        found = self.graphql(_SENSOR_QUERY, {"selector": selector})["sensorOrError"]
        if "id" not in found:
            raise StackError(f"no sensor {name}: {found}")
        stopped = self.graphql(_STOP_SENSOR, {"id": found["id"]})["stopSensor"]
        status = (stopped.get("instigationState") or {}).get("status")
        if status != "STOPPED":
            raise StackError(f"sensor {name} did not stop: {stopped}")

    def _wait_for_daemon(self, since: float) -> None:
        """Until every daemon the instance requires has a heartbeat newer than ``since``
        (as the webserver's daemon health shows); fail early, naming the log, if it exits."""
        deadline = time.monotonic() + DAEMON_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            proc = self.procs["daemon"]
            if proc.poll() is not None:
                raise StackError(
                    f"the daemon exited with code {proc.returncode}; see {self.log_path('daemon')}"
                )
            statuses = self.graphql(_DAEMON_HEALTH)["instance"]["daemonHealth"]
            required = [s for s in statuses["allDaemonStatuses"] if s["required"]]
            if required and all((s["lastHeartbeatTime"] or 0) > since for s in required):
                return
            time.sleep(0.5)
        raise StackError(f"the daemon did not beat within {DAEMON_READY_TIMEOUT_S:.0f} s")

    def kill(self, name: str) -> None:
        """SIGKILL service ``name`` and its process group, as a crashed container."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def pid(self, name: str) -> int:
        """Process id of service ``name``."""
        return self.procs[name].pid

    def stop(self) -> None:
        """Stop the daemon, webserver and code server (SIGTERM, then SIGKILL), then
        PostgreSQL and S3. The data stays in ``root``."""
        for name in reversed(SERVICES):
            if name in self.procs:
                stop_process_group(self.procs.pop(name), wait_s=15.0)
        if self.postgres.running:
            self.postgres.stop()
        if self.s3 is not None:
            self.s3.stop()
            self.s3 = None

    def __enter__(self) -> ProductionServices:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
