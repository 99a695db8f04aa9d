"""A real PostgreSQL server on loopback, from the machine's own binaries, for the local stack.

:class:`LocalPostgres` runs Debian's PostgreSQL (``/usr/lib/postgresql/<highest>/bin``, else
``initdb`` on ``PATH``; ``scripts/ensure-postgres`` installs it). ``start()`` creates the
cluster once (``initdb`` into an empty ``data_dir``), starts it with ``pg_ctl start -w`` on a
free 127.0.0.1 port with its unix socket in a private (0700) folder, and makes sure role
``dagster`` (password required, SCRAM-SHA-256) owns database ``dagster``. ``stop()`` is
``pg_ctl stop -m fast``.

Access:

* TCP: 127.0.0.1 only (``listen_addresses``), every role needs a SCRAM password. Only
  ``dagster`` has one, so the bootstrap superuser cannot log in over TCP at all.
* Unix socket: peer authentication, in a 0700 folder owned by the server's user. ``start()``
  uses it (as that user) to create the role and set its password; nobody else can reach it.
* The password is the caller's, or generated once and kept in ``<data_dir>.password``
  (mode 0600, next to ``data_dir``: ``initdb`` wants ``data_dir`` itself empty). It is sent
  to the server as a SCRAM verifier computed here, so not even the server sees it in clear.

Where the data lives, and running as root:

PostgreSQL refuses to run as root. When the effective uid is not 0, everything runs as the
caller and the cluster is ``data_dir`` itself, owned by the caller. When it is 0 (these
sandboxes and CI), ``initdb``, ``pg_ctl``, ``postgres`` and ``psql`` run as the ``postgres``
system user (Debian's package creates it) via ``subprocess``'s ``user``/``group``/
``extra_groups`` - the setuid/setgid/setgroups that ``setpriv`` does, without PAM - and the
cluster must be a folder ``postgres`` can reach by path (``pg_ctl`` and the postmaster open
it by its absolute path). :attr:`LocalPostgres.cluster_dir` says where it is:

* ``data_dir`` itself, chowned to ``postgres`` (0700), when ``postgres`` can search every
  folder above it - asked of the kernel (``test -x`` as ``postgres``). That is the case for
  ``./.talent/`` in a checkout with the usual 0755 folders. The log and the password file
  next to it stay root's.
* Otherwise (pytest's ``/tmp/pytest-of-root`` is 0700, and so is ``/root``), the cluster is
  ``~postgres/talent-devstack/<sha256(data_dir)[:16]>`` (Debian: ``/var/lib/postgresql``)
  and ``data_dir`` is made a symlink to it, so ``ls -l`` shows where the data is and later
  starts find it. A ``<key>.link`` file beside the cluster names ``data_dir``; ``start()``
  deletes clusters whose ``data_dir`` was in the temporary folder and is gone (pytest's
  rotation, ``talent demo``), never others. :meth:`LocalPostgres.delete_data` removes one
  at once (tests do).

Measured here, not guessed: opening the path instead with a POSIX ACL (``u:postgres:--x`` on
each closed folder) works but does not last - every pytest session that starts chmods
``/tmp/pytest-of-root`` back to 0700, which clears the ACL mask, and a test run beside other
sessions failed that way. ``chmod o+x`` on folders that are not ours was not an option.

Typical use::

    with LocalPostgres(root / "postgres") as pg:
        os.environ["DAGSTER_PG_URL"] = pg.url  # postgresql://dagster:...@127.0.0.1:<port>/dagster

The server is started by ``pg_ctl`` in its own session, so a crash of this process leaves it
running; ``atexit`` stops it on a normal exit, and the next ``start()`` reports a server still
running on the data folder together with the command that stops it.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import hmac
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import quote

__all__ = ["LocalPostgres", "PostgresError", "find_postgres_binaries", "scram_verifier"]

DATABASE = "dagster"
ROLE = "dagster"
SERVER_USER = "postgres"  # the system user the server runs as when we are root
STORE_NAME = "talent-devstack"  # in SERVER_USER's home: clusters it could not reach elsewhere
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations
_LIB_ROOT = Path("/usr/lib/postgresql")
_BINARIES = ("initdb", "pg_ctl", "postgres", "psql")
_ENSURE_HINT = "install them with scripts/ensure-postgres"
# What the server logs when the port we picked was taken before it could bind it.
_PORT_IN_USE = "Address already in use"
# Log lines worth quoting in an error, most telling first: the server's, then the tools'.
_COMPLAINTS = (
    re.compile(r"\b(FATAL|PANIC):"),
    re.compile(r"\bERROR:"),
    re.compile(r"^(initdb|pg_ctl|psql|postgres)(: | \()"),
)
# sun_path holds 108 bytes; the server appends "/.s.PGSQL.<port>" (and ".lock") to the folder.
_SOCKET_DIR_MAX = 80


class PostgresError(RuntimeError):
    """The local PostgreSQL server could not be found, set up, started or stopped."""


@dataclass(frozen=True)
class _ServerUser:
    """The system user the server runs as when this process is root."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def find_postgres_binaries() -> Path:
    """Return the folder holding ``initdb``, ``pg_ctl``, ``postgres`` and ``psql``.

    Prefers ``/usr/lib/postgresql/<highest version>/bin`` (Debian's layout), then the folder
    of ``initdb`` on ``PATH``.

    Raises:
        PostgresError: if no such folder exists.
    """
    versions: list[tuple[tuple[int, ...], Path]] = []
    if _LIB_ROOT.is_dir():
        for entry in _LIB_ROOT.iterdir():
            if re.fullmatch(r"\d+(\.\d+)*", entry.name) and _has_binaries(entry / "bin"):
                versions.append((tuple(int(p) for p in entry.name.split(".")), entry / "bin"))
    if versions:
        return max(versions)[1]
    initdb = shutil.which("initdb")
    if initdb and _has_binaries(Path(initdb).resolve().parent):
        return Path(initdb).resolve().parent
    raise PostgresError(
        f"PostgreSQL server binaries ({', '.join(_BINARIES)}) not found in "
        f"{_LIB_ROOT}/*/bin or on PATH; {_ENSURE_HINT}"
    )


def _has_binaries(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in _BINARIES)


def _server_user() -> _ServerUser | None:
    """The ``postgres`` system user when we are root (the server refuses root), else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresError(
            f"running as root needs the {SERVER_USER!r} system user to run the server as "
            f"(Debian's postgresql package creates it); {_ENSURE_HINT}"
        ) from None
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return _ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)


def _pick_free_port() -> int:
    """A free loopback TCP port (closed again before the server binds it: start() retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    ``ALTER ROLE ... PASSWORD '<verifier>'`` sets the password without sending it in clear.
    Exact for printable ASCII passwords (SASLprep leaves those unchanged).
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _check_password(password: str) -> None:
    if not password or not password.isascii() or not password.isprintable():
        raise ValueError("the password must be non-empty printable ASCII")


def _load_or_create_password(path: Path) -> str:
    """The password kept in ``path`` (mode 0600), generated and written on first use."""
    if path.is_file():
        os.chmod(path, 0o600)
        password = path.read_text().strip()
        if not password:
            raise PostgresError(f"password file {path} is empty; delete it to generate one")
        return password
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


# ---------------------------------------------------------------------------- the store


def _store(user: _ServerUser) -> Path:
    """Where clusters live that ``user`` could not reach where they were asked for."""
    return Path(user.home) / STORE_NAME


def _record_of(cluster: Path) -> Path:
    """The file next to a store cluster naming the ``data_dir`` symlink that uses it."""
    return cluster.with_name(cluster.name + ".link")


def _prune_store(store: Path, keep: Path) -> list[Path]:
    """Delete the store's orphans; return them.

    An orphan is a cluster whose recorded ``data_dir`` is no longer a symlink to it, was in
    the temporary folder (a deleted test or demo folder), and has no server running. Others
    stay: a project folder that was moved or deleted is the user's call.
    """
    temp = Path(tempfile.gettempdir()).resolve()
    pruned = []
    for record in sorted(store.glob("*.link")):
        cluster = store / record.name.removesuffix(".link")
        try:
            owner = Path(record.read_text().strip())
        except OSError:
            continue
        in_use = owner.is_symlink() and owner.resolve() == cluster
        if cluster == keep or in_use or not owner.is_relative_to(temp):
            continue
        if _live_postmaster(cluster) is not None:
            continue
        shutil.rmtree(cluster, ignore_errors=True)
        record.unlink(missing_ok=True)
        pruned.append(cluster)
    return pruned


def _live_postmaster(cluster: Path) -> int | None:
    """The pid in ``cluster/postmaster.pid`` if that process is alive and a postgres."""
    try:
        pid = int((cluster / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if _running_postgres(pid) else None


# ---------------------------------------------------------------------------- the server


class LocalPostgres:
    """A PostgreSQL cluster in ``data_dir`` served on 127.0.0.1 for role/database ``dagster``.

    Data persists across restarts (the port may change, the data does not) in
    :attr:`cluster_dir`: ``data_dir`` itself, or - as root, where the ``postgres`` user cannot
    reach ``data_dir`` - the folder ``data_dir`` is a symlink to. Server output, and that of
    ``initdb``/``pg_ctl``/``psql``, is appended to ``<data_dir>.log``.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        password: str | None = None,
        bin_dir: Path | None = None,
    ) -> None:
        """Configure (but do not start) a server for the cluster in ``data_dir``.

        Args:
            data_dir: the cluster folder (``PGDATA``), created and initialised when empty;
                as root it may become a symlink to one (see the module doc).
            port: TCP port on 127.0.0.1; by default a free one is picked on every start.
            password: role ``dagster``'s password; by default generated once and kept in
                ``<data_dir>.password`` (mode 0600).
            bin_dir: folder of the PostgreSQL binaries; by default :func:`find_postgres_binaries`.
        """
        if password is not None:
            _check_password(password)
        self.data_dir = Path(data_dir).absolute()
        self._fixed_port = port
        self._given_password = password
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self._active_bin_dir: Path | None = None  # the binaries the running server came from
        self._password: str | None = None
        self._port: int | None = None
        self._pid: int | None = None
        self._socket_dir: Path | None = None
        self._user: _ServerUser | None = None
        self._run_offset = 0  # log size when the last command was run
        self._cluster_dir: Path | None = None
        self.startup_seconds: float | None = None

    # ------------------------------------------------------------------ properties

    @property
    def log_path(self) -> Path:
        """File receiving the output of the server, ``initdb``, ``pg_ctl`` and ``psql``."""
        return self.data_dir.with_name(self.data_dir.name + ".log")

    @property
    def password_file(self) -> Path:
        """Where a generated password is kept (unused when the caller gives one)."""
        return self.data_dir.with_name(self.data_dir.name + ".password")

    @property
    def cluster_dir(self) -> Path:
        """Where the cluster's files are: ``data_dir``, or the store folder it links to."""
        if self._cluster_dir is not None:
            return self._cluster_dir
        return self.data_dir.resolve() if self.data_dir.is_symlink() else self.data_dir

    @property
    def running(self) -> bool:
        """True while the server this object started is alive."""
        return self._pid is not None and self._postmaster_pid() == self._pid

    @property
    def pid(self) -> int | None:
        """Process id of the running postmaster, else None."""
        return self._pid if self.running else None

    @property
    def port(self) -> int:
        """The server's TCP port on 127.0.0.1."""
        if self._port is None:
            raise PostgresError("local PostgreSQL server is not started")
        return self._port

    @property
    def socket_dir(self) -> Path | None:
        """The private folder holding the server's unix socket while it runs."""
        return self._socket_dir

    @property
    def server_user(self) -> str:
        """The system user the server runs as (``postgres`` when we are root)."""
        return self._user.name if self._user else pwd.getpwuid(os.geteuid()).pw_name

    @property
    def url(self) -> str:
        """``postgresql://dagster:<password>@127.0.0.1:<port>/dagster`` (password escaped)."""
        if self._password is None:
            raise PostgresError("local PostgreSQL server is not started")
        return f"postgresql://{ROLE}:{quote(self._password, safe='')}@{self._netloc_tail()}"

    @property
    def url_without_password(self) -> str:
        """The URL without its secret, for logs and ``stack.json``."""
        return f"postgresql://{ROLE}@{self._netloc_tail()}"

    def _netloc_tail(self) -> str:
        return f"127.0.0.1:{self.port}/{DATABASE}"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalPostgres:
        """Initialise the cluster if needed, start it, and ensure role and database.

        Returns ``self``; a no-op when already running. Retries once with a fresh port if
        the picked one was taken before the server could bind it.

        Raises:
            PostgresError: binaries or the ``postgres`` user missing, ``data_dir`` unusable,
                another server on it, or the server failing to start.
        """
        if self.running:
            return self
        began = time.monotonic()
        bin_dir = self._bin_dir or find_postgres_binaries()
        if not _has_binaries(bin_dir):
            raise PostgresError(f"{bin_dir} lacks {', '.join(_BINARIES)}; {_ENSURE_HINT}")
        self._active_bin_dir = bin_dir
        self._user = _server_user()
        try:
            self._password = self._given_password or _load_or_create_password(self.password_file)
            fresh = self._prepare_data_dir(bin_dir)
        except OSError as err:
            raise PostgresError(f"cannot prepare {self.data_dir}: {err}") from err
        try:
            if fresh:
                self._initdb(bin_dir)
            self._socket_dir = self._make_socket_dir()
            self._launch(bin_dir)
            self._ensure_role_and_database(bin_dir)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        # A forgotten server must not outlive the interpreter (a crashed test, Ctrl-C).
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``) and remove its socket folder.

        Idempotent, and safe to call on a server that never started. Falls back to an
        immediate shutdown (SIGQUIT) if ``pg_ctl`` cannot stop it in time.
        """
        atexit.unregister(self.stop)
        socket_dir, self._socket_dir = self._socket_dir, None
        if socket_dir is not None and self._active_bin_dir is not None:
            pid = self._postmaster_pid()
            pg_ctl = str(self._active_bin_dir / "pg_ctl")
            wait = ("-w", "-t", str(STOP_TIMEOUT_S))
            with contextlib.suppress(PostgresError):
                self._run(
                    [pg_ctl, "stop", "-D", str(self.cluster_dir), "-m", "fast", *wait, "-s"],
                    timeout=STOP_TIMEOUT_S + 5,
                    what="pg_ctl stop",
                )
            if pid is not None and _running_postgres(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGQUIT)
                deadline = time.monotonic() + 5
                while _running_postgres(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
        self._pid = None
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)

    def delete_data(self) -> None:
        """Stop the server and delete what ``start()`` made: the cluster (wherever it lives),
        ``data_dir`` (or its link and store record), the password file and the log.

        Raises:
            PostgresError: if another server still runs on the cluster.
        """
        self.stop()
        cluster = self.cluster_dir
        pid = _live_postmaster(cluster)
        if pid is not None:
            raise PostgresError(f"a PostgreSQL server (pid {pid}) still runs on {cluster}")
        if self.data_dir.is_symlink():
            self.data_dir.unlink()
            if cluster.parent.name == STORE_NAME:
                _record_of(cluster).unlink(missing_ok=True)
        shutil.rmtree(cluster, ignore_errors=True)
        self._cluster_dir = None
        self.password_file.unlink(missing_ok=True)
        self.log_path.unlink(missing_ok=True)

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

    # ------------------------------------------------------------------ set-up steps

    def _prepare_data_dir(self, bin_dir: Path) -> bool:
        """Find (or make) the cluster folder and make it the server user's; True if empty."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        cluster = self._locate_cluster() if self._user is not None else self.data_dir
        cluster.mkdir(mode=0o700, exist_ok=True)
        self._cluster_dir = cluster
        fresh = not any(cluster.iterdir())
        if not fresh:
            self._check_existing_cluster(bin_dir)
        if self._user is not None:
            if fresh:
                os.chown(cluster, self._user.uid, self._user.gid)
            elif cluster.stat().st_uid != self._user.uid:
                raise PostgresError(
                    f"{cluster} belongs to uid {cluster.stat().st_uid}, but the server runs "
                    f"as {self._user.name} (uid {self._user.uid})"
                )
        if fresh:
            os.chmod(cluster, 0o700)  # initdb insists on 0700 or 0750
        return fresh

    def _check_existing_cluster(self, bin_dir: Path) -> None:
        version_file = self.cluster_dir / "PG_VERSION"
        if not version_file.is_file():
            raise PostgresError(
                f"{self.data_dir} is neither empty nor a PostgreSQL cluster (no PG_VERSION)"
            )
        cluster = version_file.read_text().strip()
        out = subprocess.run(
            [str(bin_dir / "pg_ctl"), "--version"], capture_output=True, text=True, check=False
        ).stdout
        binaries = re.search(r"(\d+)(\.\d+)?", out)
        if binaries and binaries.group(1) != cluster.split(".")[0]:
            raise PostgresError(
                f"{self.data_dir} was made by PostgreSQL {cluster}, but {bin_dir} is "
                f"PostgreSQL {binaries.group(0)}; use matching binaries or a new data folder"
            )
        pid = self._postmaster_pid()
        if pid is not None:
            as_user = f"runuser -u {SERVER_USER} -- " if os.geteuid() == 0 else ""
            raise PostgresError(
                f"a PostgreSQL server (pid {pid}) already runs on {self.data_dir}; stop it "
                f"with: {as_user}{bin_dir / 'pg_ctl'} stop -D {self.cluster_dir} -m fast"
            )

    def _locate_cluster(self) -> Path:
        """Where the cluster lives when we are root (see the module doc).

        ``data_dir`` itself when the server user can reach it; otherwise a folder in the
        store under that user's home, which ``data_dir`` becomes a symlink to.
        """
        assert self._user is not None
        store = _store(self._user)
        if self.data_dir.is_symlink():  # linked by an earlier start (or by the caller)
            target = self.data_dir.resolve()
            return self._relocate(store) if target.parent == store else target
        if self._user_can_traverse(self.data_dir.parent.resolve()):
            return self.data_dir
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise PostgresError(
                f"the {self._user.name} user cannot reach {self.data_dir} (a folder above it "
                f"is closed to it), which already holds data; move it somewhere it can reach"
            )
        return self._relocate(store)

    def _relocate(self, store: Path) -> Path:
        """The store folder for ``data_dir`` (made if missing), ``data_dir`` linked to it."""
        assert self._user is not None
        if not self._user_can_traverse(store.parent):
            raise PostgresError(
                f"the {self._user.name} user can reach neither {self.data_dir.parent} nor its "
                f"home {store.parent}; use a data folder under a path it can traverse"
            )
        owner = self.data_dir.parent.resolve() / self.data_dir.name
        if self.data_dir.is_symlink():
            cluster = self.data_dir.resolve()
        else:
            cluster = store / hashlib.sha256(str(owner).encode()).hexdigest()[:16]
            if self.data_dir.exists():
                self.data_dir.rmdir()  # empty (checked by the caller)
            self.data_dir.symlink_to(cluster, target_is_directory=True)
        for folder in (store, cluster):
            folder.mkdir(mode=0o700, exist_ok=True)
            os.chown(folder, self._user.uid, self._user.gid)
        _record_of(cluster).write_text(f"{owner}\n")
        for pruned in _prune_store(store, keep=cluster):
            self._log(f"removed {pruned}: its link in a temporary folder is gone")
        return cluster

    def _user_can_traverse(self, folder: Path) -> bool:
        assert self._user is not None
        probe = subprocess.run(
            ["test", "-x", str(folder)], cwd="/", check=False, **self._as_server_user()
        )
        return probe.returncode == 0

    def _make_socket_dir(self) -> Path:
        """A fresh 0700 folder for the unix socket, owned by the server user, short enough."""
        parent = tempfile.gettempdir()
        if len(parent) > _SOCKET_DIR_MAX - 20:
            parent = "/tmp"
        folder = Path(tempfile.mkdtemp(prefix="talent-pg-", dir=parent))
        if self._user is not None:
            os.chown(folder, self._user.uid, self._user.gid)
        return folder

    def _initdb(self, bin_dir: Path) -> None:
        """Create the cluster: UTF-8, C locale, peer on the socket, SCRAM over TCP."""
        self._run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.cluster_dir),
                "--encoding=UTF8",
                "--no-locale",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
            ],
            timeout=120,
            what="initdb",
        )

    def _launch(self, bin_dir: Path) -> None:
        """``pg_ctl start -w`` on the fixed port, or on a free one (twice if it was taken)."""
        attempts = 1 if self._fixed_port is not None else 2
        for attempt in range(1, attempts + 1):
            self._port = self._fixed_port or _pick_free_port()
            try:
                self._run(
                    self._start_command(bin_dir), timeout=START_TIMEOUT_S + 5, what="pg_ctl start"
                )
            except PostgresError as err:
                if _PORT_IN_USE not in self._log_since(self._run_offset):
                    raise
                if attempt < attempts:
                    continue
                raise PostgresError(
                    f"port {self._port} on 127.0.0.1 is already in use (see {self.log_path})"
                ) from err
            self._pid = self._postmaster_pid()
            if self._pid is None:
                raise PostgresError("pg_ctl reported a start but no server is running")
            return

    def _start_command(self, bin_dir: Path) -> list[str]:
        assert self._socket_dir is not None and self._port is not None
        # pg_ctl hands -o to a shell; the socket folder is ours (no spaces or quotes).
        options = " ".join(
            [
                "-h 127.0.0.1",  # listen_addresses: loopback IPv4 only
                f"-p {self._port}",
                f"-k {self._socket_dir}",
                "-c unix_socket_permissions=0700",
                "-c password_encryption=scram-sha-256",
            ]
        )
        # No -l: the server inherits pg_ctl's stdout, our log file.
        pg_ctl = str(bin_dir / "pg_ctl")
        wait = ("-w", "-t", str(START_TIMEOUT_S))
        return [pg_ctl, "start", "-D", str(self.cluster_dir), *wait, "-s", "-o", options]

    def _ensure_role_and_database(self, bin_dir: Path) -> None:
        """Over the unix socket, as the superuser: role ``dagster`` with our password owns
        database ``dagster`` (created when missing; the password is reset on every start)."""
        assert self._password is not None and self._socket_dir is not None
        sql = (
            f"SELECT 'CREATE ROLE {ROLE}' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = '{ROLE}')\\gexec\n"
            f"ALTER ROLE {ROLE} WITH LOGIN NOSUPERUSER NOCREATEROLE "
            f"PASSWORD '{scram_verifier(self._password)}';\n"
            f"SELECT 'CREATE DATABASE {DATABASE} OWNER {ROLE}' WHERE NOT EXISTS "
            f"(SELECT FROM pg_database WHERE datname = '{DATABASE}')\\gexec\n"
        )
        self._run(
            [
                *(str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"),
                *("-h", str(self._socket_dir), "-p", str(self.port), "-d", "postgres", "-f", "-"),
            ],
            timeout=60,
            what="creating role and database",
            stdin=sql,
        )

    # ------------------------------------------------------------------ helpers

    def _as_server_user(self) -> dict[str, Any]:
        """``subprocess`` keyword arguments that run a command as the server user."""
        if self._user is None:
            return {}
        return {
            "user": self._user.uid,
            "group": self._user.gid,
            "extra_groups": list(self._user.groups),
        }

    def _env(self) -> dict[str, str]:
        """The environment minus PG* variables (the server depends only on our arguments)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"  # English messages: _PORT_IN_USE is matched against them
        if self._user is not None:
            env.update(HOME=self._user.home, USER=self._user.name, LOGNAME=self._user.name)
        return env

    def _run(
        self, cmd: list[str], *, timeout: float, what: str = "", stdin: str | None = None
    ) -> None:
        """Run ``cmd`` as the server user with its output appended to the log file."""
        with self._open_log() as log:
            self._run_offset = os.fstat(log.fileno()).st_size
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(cmd)}\n".encode())
            log.flush()
            try:
                subprocess.run(
                    cmd,
                    input=stdin.encode() if stdin is not None else None,
                    stdin=None if stdin is not None else subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                    cwd="/",
                    timeout=timeout,
                    check=True,
                    **self._as_server_user(),
                )
            except (OSError, subprocess.SubprocessError) as err:
                raise PostgresError(f"{what or cmd[0]} failed: {self._reason(err)}") from err

    def _postmaster_pid(self) -> int | None:
        """The pid of a live postmaster on this cluster, else None."""
        return _live_postmaster(self.cluster_dir)

    def _open_log(self) -> IO[bytes]:
        """The log file for appending; created owner-only (it may quote SQL statements)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "ab")

    def _log(self, message: str) -> None:
        with self._open_log() as log:
            log.write(f"=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n".encode())

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _reason(self, err: BaseException) -> str:
        """One line: the most telling complaint the command logged (else ``err``), and where
        to read more (FATAL before ERROR before the tools' own lines)."""
        lines = self._log_since(self._run_offset).splitlines()
        for pattern in _COMPLAINTS:
            found = [line.strip() for line in lines if pattern.search(line)]
            if found:
                return f"{found[0]} (see {self.log_path})"
        return f"{err} (see {self.log_path})"


def _running_postgres(pid: int) -> bool:
    """True while ``pid`` runs a postgres: not gone, not a zombie, not a reused pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc to ask: trust kill()
        return True
    # "<pid> (<comm>) <state> ...": comm may itself hold parentheses.
    comm, _, rest = stat.partition("(")[2].rpartition(")")
    return rest.split()[0] != "Z" and comm.startswith(("postgres", "postmaster"))
