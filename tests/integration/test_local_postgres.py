"""Tests for talent_assets.devstack.local_postgres against a real PostgreSQL server (no mocks).

The client is the ``psql`` binary next to the server's (psycopg is not a dependency). Run as
root, as here, the server runs as the ``postgres`` user: pytest's 0700 temporary folders then
put the cluster in postgres's store (``data_dir`` a symlink to it), and a folder others may
search keeps it in place; both are exercised.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from talent_assets.devstack.local_postgres import (
    STORE_NAME,
    LocalPostgres,
    PostgresError,
    find_postgres_binaries,
)
from talent_assets.devstack.stack import dagster_pg_url

pytestmark = pytest.mark.timeout(120)
ROOT = os.geteuid() == 0


def _binaries() -> Path:
    try:
        return find_postgres_binaries()
    except PostgresError as err:
        pytest.fail(f"{err} (scripts/ensure-postgres installs them)")


def _psql(url: str, sql: str) -> subprocess.CompletedProcess[str]:
    """Run ``sql`` over TCP with ``psql`` (password from the URL); never raises on failure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "5"
    return subprocess.run(
        [str(_binaries() / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def _query(url: str, sql: str) -> str:
    result = _psql(url, sql)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _refused(host: str, port: int, family: socket.AddressFamily = socket.AF_INET) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) != 0


def _non_loopback_ipv4() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address.startswith("127.") else address


def _store() -> Path:
    return Path(pwd.getpwnam("postgres").pw_dir) / STORE_NAME


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """One server (generated password) shared by the module: initdb + start take ~1-2 s."""
    pg = LocalPostgres(tmp_path_factory.mktemp("pg") / "data")
    try:
        yield pg.start()
    finally:
        cluster = pg.cluster_dir
        pg.delete_data()
        assert not cluster.exists() and not pg.data_dir.exists()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A fresh folder that other users may search (0711) in a 1777 /tmp: reachable by
    postgres, so a cluster under it stays in place even when we are root."""
    folder = Path(tempfile.mkdtemp(prefix="talent-pg-test-", dir="/tmp"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_serves_database_dagster_to_role_dagster_over_loopback(server: LocalPostgres) -> None:
    assert server.running and server.pid
    assert server.url == f"postgresql://dagster:{server.password_file.read_text().strip()}@" + (
        f"127.0.0.1:{server.port}/dagster"
    )
    assert server.url_without_password == f"postgresql://dagster@127.0.0.1:{server.port}/dagster"
    who = _query(
        server.url,
        "SELECT current_user, current_database(), rolsuper FROM pg_roles "
        "WHERE rolname = current_user",
    )
    assert who == "dagster|dagster|f"
    _query(server.url, "CREATE TABLE kept (id int PRIMARY KEY, name text)")
    _query(server.url, "INSERT INTO kept VALUES (1, 'one'), (2, 'two')")
    assert _query(server.url, "SELECT string_agg(name, ',' ORDER BY id) FROM kept") == "one,two"


def test_files_and_ownership(server: LocalPostgres) -> None:
    """The cluster is found through data_dir; secrets and socket are private."""
    assert (server.data_dir / "PG_VERSION").is_file()
    assert (server.cluster_dir / "PG_VERSION").is_file()
    assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.log_path.stat().st_mode) == 0o600
    assert "database system is ready to accept connections" in server.log_path.read_text()
    assert server.socket_dir is not None
    assert stat.S_IMODE(server.socket_dir.stat().st_mode) == 0o700
    assert (server.socket_dir / f".s.PGSQL.{server.port}").is_socket()
    expected_owner = "postgres" if ROOT else server.server_user
    assert server.server_user == expected_owner
    assert server.cluster_dir.owner() == expected_owner
    assert stat.S_IMODE(server.cluster_dir.stat().st_mode) == 0o700
    if ROOT:
        # pytest's folders are 0700, so postgres cannot reach them: the cluster is in its
        # store, data_dir links to it, and a record names data_dir.
        assert server.data_dir.is_symlink()
        assert server.cluster_dir.parent == _store()
        assert server.data_dir.resolve() == server.cluster_dir
        record = server.cluster_dir.with_name(server.cluster_dir.name + ".link")
        assert record.read_text().strip() == str(server.data_dir.parent.resolve() / "data")
    else:
        assert server.cluster_dir == server.data_dir


def test_listens_on_ipv4_loopback_only(server: LocalPostgres) -> None:
    assert _query(server.url, "SHOW listen_addresses") == "127.0.0.1"
    assert not _refused("127.0.0.1", server.port)
    if socket.has_ipv6:
        assert _refused("::1", server.port, socket.AF_INET6)
    address = _non_loopback_ipv4()
    if address is not None:  # skipped only on a machine without a routed interface
        assert _refused(address, server.port)


def test_wrong_password_and_the_superuser_are_refused(server: LocalPostgres) -> None:
    wrong = _psql(f"postgresql://dagster:not-it@127.0.0.1:{server.port}/dagster", "SELECT 1")
    assert wrong.returncode != 0
    assert "password authentication failed" in wrong.stderr
    # The bootstrap superuser has no password, so it cannot log in over TCP at all.
    superuser = "postgres" if ROOT else server.server_user
    su = _psql(f"postgresql://{superuser}:x@127.0.0.1:{server.port}/postgres", "SELECT 1")
    assert su.returncode != 0
    assert "password authentication failed" in su.stderr


def test_restart_keeps_the_data(server: LocalPostgres) -> None:
    _query(server.url, "CREATE TABLE IF NOT EXISTS survives (v text)")
    _query(server.url, "INSERT INTO survives VALUES ('before restart')")
    old_port, old_socket_dir = server.port, server.socket_dir
    assert old_socket_dir is not None
    server.stop()
    assert not server.running and server.pid is None
    assert _refused("127.0.0.1", old_port)
    assert not old_socket_dir.exists()
    server.stop()  # idempotent
    orphans = _fake_store_entries() if ROOT else {}
    try:
        server.start()
        # start() pruned the orphan from a vanished temporary folder, and only that one.
        for name, cluster in orphans.items():
            assert cluster.exists() == (name == "kept"), name
    finally:
        for cluster in orphans.values():
            shutil.rmtree(cluster, ignore_errors=True)
            cluster.with_name(cluster.name + ".link").unlink(missing_ok=True)
    assert server.running and server.port  # a new free port (may equal the old one)
    assert _query(server.url, "SELECT v FROM survives") == "before restart"
    assert server.start() is server  # a no-op while running


def _fake_store_entries() -> dict[str, Path]:
    """Two stopped "clusters" in the store whose data_dir links are gone: one was in the
    temporary folder (an orphan), one elsewhere (a project that may have moved)."""
    owners = {
        "orphan": Path(tempfile.gettempdir()).resolve() / "talent-pg-test-gone" / "data",
        "kept": Path("/nonexistent-talent-pg-test/data"),
    }
    entries = {}
    for name, owner in owners.items():
        cluster = _store() / f"test-{name}-{os.getpid()}"
        cluster.mkdir()
        (cluster / "PG_VERSION").write_text("15\n")
        cluster.with_name(cluster.name + ".link").write_text(f"{owner}\n")
        entries[name] = cluster
    return entries


def test_a_second_server_on_the_same_data_is_refused(server: LocalPostgres) -> None:
    with pytest.raises(PostgresError, match=r"already runs on .*pg_ctl.* stop -D"):
        LocalPostgres(server.data_dir).start()
    assert server.running


def test_caller_password_fixed_port_and_a_reachable_folder(open_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    password = "caller's p@ss:word/%"  # quoted in the URL
    pg = LocalPostgres(open_dir / "pg", port=port, password=password)
    with pg:
        assert pg.port == port
        assert not pg.password_file.exists()
        assert _query(pg.url, "SELECT current_user") == "dagster"
        # postgres can reach this folder, so the data lives in data_dir itself.
        assert pg.cluster_dir == pg.data_dir and not pg.data_dir.is_symlink()
        assert (pg.data_dir / "PG_VERSION").is_file()
        assert pg.data_dir.owner() == ("postgres" if ROOT else pg.server_user)
        assert pg.log_path.owner() == pwd.getpwuid(os.geteuid()).pw_name
    assert not pg.running
    pg.delete_data()
    assert not pg.data_dir.exists() and not pg.log_path.exists()


def test_errors_are_one_line_postgres_errors(tmp_path: Path, open_dir: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    with pytest.raises(PostgresError, match="scripts/ensure-postgres") as missing:
        LocalPostgres(tmp_path / "a", bin_dir=empty_bin).start()
    assert "\n" not in str(missing.value)

    not_a_cluster = open_dir / "b"
    not_a_cluster.mkdir()
    (not_a_cluster / "stray.txt").write_text("x")
    with pytest.raises(PostgresError, match="neither empty nor a PostgreSQL cluster"):
        LocalPostgres(not_a_cluster).start()
    if ROOT:  # existing data where postgres cannot reach it is not moved behind our back
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "stray.txt").write_text("x")
        with pytest.raises(PostgresError, match=r"cannot reach .* already holds data"):
            LocalPostgres(tmp_path / "b").start()

    with socket.socket() as taken:  # a fixed port someone else holds
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        pg = LocalPostgres(tmp_path / "c", port=taken.getsockname()[1], password="pw")
        with pytest.raises(PostgresError, match="already in use") as busy:
            pg.start()
    assert "\n" not in str(busy.value)
    assert not pg.running and pg.socket_dir is None
    pg.delete_data()

    with pytest.raises(ValueError, match="printable ASCII"):
        LocalPostgres(tmp_path / "d", password="")


def test_a_dagster_instance_runs_on_it(server: LocalPostgres, tmp_path: Path) -> None:
    from dagster import DagsterInstance, job, op

    @op
    def one() -> int:
        return 1

    @job
    def tiny() -> None:
        one()

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {dagster_pg_url(server.url)!r}\n"
        "telemetry:\n  enabled: false\n"
    )
    instance = DagsterInstance.from_config(str(home))
    try:
        result = tiny.execute_in_process(instance=instance)
        assert result.success
        assert instance.get_run_by_id(result.run_id) is not None
    finally:
        instance.dispose()
    assert int(_query(server.url, "SELECT count(*) FROM runs")) >= 1
