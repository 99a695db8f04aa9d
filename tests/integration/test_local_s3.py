"""Tests for talent_assets.devstack.local_s3 against a real SeaweedFS server (no mocks)."""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from talent_assets.devstack import local_s3
from talent_assets.devstack.local_s3 import LocalS3Error, LocalS3Server, weed_binary_path

ACCESS_KEY = "test-access"
SECRET_KEY = "test-secret-0123456789"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3Server]:
    """One server shared by the module: starting costs ~1.5 s, stopping ~1 s."""
    srv = LocalS3Server(
        tmp_path_factory.mktemp("s3") / "data", access_key=ACCESS_KEY, secret_key=SECRET_KEY
    )
    with srv:
        yield srv


def _error_code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _processes_in_group(pgid: int) -> list[str]:
    """`ps` lines of processes whose process group is ``pgid``."""
    out = subprocess.run(
        ["ps", "-eo", "pid=,pgid=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if line.split()[1] == str(pgid)]


def _weed_processes_using(data_dir: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if "weed" in line and str(data_dir) in line]


def _listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(ip, port) of every TCP socket ``pid`` listens on, read from /proc (Linux)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            hex_ip, hex_port = local.split(":")
            if len(hex_ip) == 8:
                ip = socket.inet_ntop(socket.AF_INET, bytes.fromhex(hex_ip)[::-1])
            else:
                ip = f"ipv6:{hex_ip}"
            found.append((ip, int(hex_port, 16)))
    return found


def test_weed_binary_is_found() -> None:
    path = weed_binary_path()
    assert os.access(path, os.X_OK)


def test_starts_quickly_on_loopback(server: LocalS3Server) -> None:
    assert server.running
    assert server.endpoint_url == f"http://127.0.0.1:{server.port}"
    assert server.startup_seconds is not None and server.startup_seconds < 15
    ports = server.ports
    assert len(set(ports.values())) == len(ports) == 10
    assert server.log_path.is_file() and server.log_path.parent == server.data_dir


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_every_listener_is_loopback_and_chosen_by_us(server: LocalS3Server) -> None:
    assert server.pid is not None
    listeners = _listening_sockets(server.pid)
    assert listeners, "found no listening sockets for weed"
    assert {ip for ip, _ in listeners} == {"127.0.0.1"}
    assert {port for _, port in listeners} <= set(server.ports.values())
    assert server.port in {port for _, port in listeners}


def test_bucket_put_get_list(server: LocalS3Server) -> None:
    server.ensure_bucket("videos")
    server.ensure_bucket("videos")  # idempotent
    s3 = server.client()
    assert "videos" in {b["Name"] for b in s3.list_buckets()["Buckets"]}

    body = b"\x00\x01frame data" * 1000
    s3.put_object(Bucket="videos", Key="clips/a.mp4", Body=body, ContentType="video/mp4")
    s3.put_object(Bucket="videos", Key="clips/b.mp4", Body=b"b")
    s3.put_object(Bucket="videos", Key="other/c.txt", Body=b"c")

    got = s3.get_object(Bucket="videos", Key="clips/a.mp4")
    assert got["Body"].read() == body
    assert got["ContentType"] == "video/mp4"

    listing = s3.list_objects_v2(Bucket="videos", Prefix="clips/")
    assert [(o["Key"], o["Size"]) for o in listing["Contents"]] == [
        ("clips/a.mp4", len(body)),
        ("clips/b.mp4", 1),
    ]
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="videos", Key="clips/missing.mp4")
    assert _error_code(err) == "NoSuchKey"


def test_presigned_get_via_urllib(server: LocalS3Server) -> None:
    server.ensure_bucket("presign")
    s3 = server.client()
    s3.put_object(Bucket="presign", Key="dir/still 1.jpg", Body=b"jpeg bytes")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "presign", "Key": "dir/still 1.jpg"}, ExpiresIn=300
    )
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url  # SigV4, not the legacy signer
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"jpeg bytes"

    # The signature is actually checked.
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=10)
    assert err.value.code == 403


def test_wrong_credentials_rejected(server: LocalS3Server) -> None:
    def client(access_key: str, secret_key: str) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name="us-east-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    client(ACCESS_KEY, SECRET_KEY).list_buckets()  # the same client with the right pair works
    with pytest.raises(ClientError) as err:
        client(ACCESS_KEY, "wrong-secret").list_buckets()
    assert _error_code(err) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as err:
        client("nobody", SECRET_KEY).list_buckets()
    assert _error_code(err) == "InvalidAccessKeyId"

    # Anonymous requests are refused too.
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(server.endpoint_url + "/", timeout=10)
    assert http_err.value.code == 403


def test_copy_object_and_batch_delete(server: LocalS3Server) -> None:
    server.ensure_bucket("pipeline")
    s3 = server.client()
    s3.put_object(Bucket="pipeline", Key="tmp/x.bin", Body=b"payload")
    s3.copy_object(
        Bucket="pipeline", Key="final/x.bin", CopySource={"Bucket": "pipeline", "Key": "tmp/x.bin"}
    )
    assert s3.get_object(Bucket="pipeline", Key="final/x.bin")["Body"].read() == b"payload"

    keys = [f"tmp/{i}" for i in range(5)]
    for key in keys:
        s3.put_object(Bucket="pipeline", Key=key, Body=b"1")
    result = s3.delete_objects(
        Bucket="pipeline", Delete={"Objects": [{"Key": k} for k in [*keys, "tmp/x.bin"]]}
    )
    assert not result.get("Errors")
    remaining = s3.list_objects_v2(Bucket="pipeline").get("Contents", [])
    assert [o["Key"] for o in remaining] == ["final/x.bin"]


def test_second_server_distinct_ports_then_stop_cleans_up(
    server: LocalS3Server, tmp_path: Path
) -> None:
    other = LocalS3Server(tmp_path / "other", access_key="k2", secret_key="s2-secret").start()
    try:
        assert set(other.ports.values()).isdisjoint(server.ports.values())
        other.ensure_bucket("only-here")
        assert [b["Name"] for b in other.client().list_buckets()["Buckets"]] == ["only-here"]
        assert "only-here" not in {b["Name"] for b in server.client().list_buckets()["Buckets"]}
        pid, port = other.pid, other.port
        assert pid is not None and _processes_in_group(pid)
    finally:
        other.stop()

    assert not other.running and other.pid is None
    assert _processes_in_group(pid) == []
    assert _weed_processes_using(other.data_dir) == []
    assert not _port_open(port)
    other.stop()  # idempotent
    assert server.running  # the first server is untouched


def test_restart_keeps_data_with_context_manager(tmp_path: Path) -> None:
    data_dir = tmp_path / "persist"
    with LocalS3Server(data_dir, access_key="k3", secret_key="s3-secret") as first:
        first.ensure_bucket("keep")
        first.client().put_object(Bucket="keep", Key="k", Body=b"survives")
        first_ports = first.ports
    assert not first.running

    with LocalS3Server(data_dir, access_key="k3", secret_key="s3-secret") as second:
        assert second.ports != first_ports
        assert second.client().get_object(Bucket="keep", Key="k")["Body"].read() == b"survives"
        # Only the current master state directory is kept.
        assert len(list((data_dir / "master").glob("m[0-9]*"))) == 1
    assert _weed_processes_using(data_dir) == []


def test_retries_once_on_port_collision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    real_pick = local_s3._pick_free_ports
    calls = []

    def pick_with_a_taken_port(count: int) -> list[int]:
        ports = real_pick(count)
        calls.append(ports)
        if len(calls) == 1:
            ports[4] = taken  # the volume server's port: weed exits, start() must retry
        return ports

    monkeypatch.setattr(local_s3, "_pick_free_ports", pick_with_a_taken_port)
    try:
        with LocalS3Server(tmp_path / "retry", access_key="k4", secret_key="s4-secret") as srv:
            assert len(calls) == 2
            assert taken not in srv.ports.values()
            srv.client().list_buckets()
    finally:
        blocker.close()
    assert "not available" in (tmp_path / "retry" / "weed.log").read_text()


def test_failed_start_raises_with_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "fake-weed"
    fake.write_text("#!/bin/sh\necho 'fake weed: cannot start' >&2\nexit 3\n")
    fake.chmod(0o755)
    srv = LocalS3Server(tmp_path / "fail", access_key="k", secret_key="s", weed_binary=str(fake))
    with pytest.raises(LocalS3Error) as err:
        srv.start()
    assert isinstance(err.value, RuntimeError)
    assert "exited with code 3" in str(err.value)
    assert "fake weed: cannot start" in str(err.value)
    assert not srv.running

    missing = LocalS3Server(
        tmp_path / "fail2", access_key="k", secret_key="s", weed_binary=str(tmp_path / "nope")
    )
    with pytest.raises(LocalS3Error, match="cannot run"):
        missing.start()


def test_empty_credentials_refused(tmp_path: Path) -> None:
    # weed mini without keys would serve anonymous requests.
    with pytest.raises(ValueError):
        LocalS3Server(tmp_path, access_key="", secret_key="x")


def _alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (PID 1 in a container may not reap)."""
    out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return out.returncode == 0 and not out.stdout.strip().startswith("Z")


def test_not_ready_times_out_and_kills_the_whole_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_s3, "READY_TIMEOUT_S", 1.0)
    child_pid_file = tmp_path / "child.pid"
    fake = tmp_path / "hanging-weed"
    # Never serves S3, and has a child that must die with it when start() gives up.
    fake.write_text(f"#!/bin/sh\necho started >&2\nsleep 300 &\necho $! > {child_pid_file}\nwait\n")
    fake.chmod(0o755)
    srv = LocalS3Server(tmp_path / "hang", access_key="k", secret_key="s", weed_binary=str(fake))
    with pytest.raises(LocalS3Error, match="not ready") as err:
        srv.start()
    assert "started" in str(err.value)  # log tail included
    assert not srv.running
    child_pid = int(child_pid_file.read_text())
    assert not _alive(child_pid)
