"""A real SQS-compatible server on loopback for the sensor's ``sqs`` mode: fauxqs.

fauxqs is an npm package (locked in ``tools/sqs-emulator``, installed by
``scripts/ensure-sqs-emulator``) that speaks the SQS wire protocol, so boto3 drives it over
HTTP exactly as it drives AWS. It keeps its queues in memory: a restart empties them, which
is why the stack's tests never restart it mid-test. Bound to 127.0.0.1 only.

Typical use::

    with LocalSQSServer() as sqs:
        url = sqs.create_queue("videos")
        sqs.client().send_message(QueueUrl=url, MessageBody="...")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import boto3
from botocore.client import BaseClient

from talent_assets.devstack.stack import free_port

__all__ = ["LocalSQSError", "LocalSQSServer", "emulator_cli_path"]

REGION = "us-east-1"
READY_TIMEOUT_S = 30.0
# Any key pair works (fauxqs checks no signatures); boto3 still needs one to sign with.
DUMMY_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local-secret"}


class LocalSQSError(RuntimeError):
    """The emulator is not installed, did not start, or died."""


def emulator_cli_path() -> Path:
    """fauxqs's command line script, as ``scripts/ensure-sqs-emulator`` installs it."""
    root = Path(__file__).resolve().parents[2] / "tools" / "sqs-emulator"
    cli = root / "node_modules" / "fauxqs" / "dist" / "cli.js"
    if not cli.is_file():
        raise LocalSQSError(
            f"the SQS emulator is not installed ({cli} is missing): run scripts/ensure-sqs-emulator"
        )
    return cli


class LocalSQSServer:
    """fauxqs on a free loopback port; its own process group, torn down on stop."""

    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="sqs-"))
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        if self._port is None:
            raise LocalSQSError("the SQS emulator is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / "sqs.log"

    def start(self) -> Self:
        """Start fauxqs and wait until its health check answers."""
        node = shutil.which("node")
        if node is None:
            raise LocalSQSError("node is not installed: run scripts/ensure-sqs-emulator")
        cli = emulator_cli_path()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._port = free_port()
        env = {
            **os.environ,
            "FAUXQS_PORT": str(self._port),
            # Queue URLs then name the loopback address rather than "localhost".
            "FAUXQS_HOST": "127.0.0.1",
            "FAUXQS_DEFAULT_REGION": REGION,
            "FAUXQS_LOGGER": "false",
        }
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [node, str(cli)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise LocalSQSError(
                    f"the SQS emulator exited with code {self._process.returncode}; "
                    f"see {self.log_path}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.endpoint_url}/health", timeout=2) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise LocalSQSError(f"the SQS emulator did not answer within {READY_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """Stop the server (its queues are gone with it)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def client(self) -> BaseClient:
        """A boto3 SQS client for this server."""
        return boto3.client(
            "sqs", endpoint_url=self.endpoint_url, region_name=REGION, **DUMMY_CREDENTIALS
        )

    def create_queue(self, name: str, **attributes: str) -> str:
        """Create (or find) a standard queue; returns its URL."""
        return self.client().create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def environment(self, queue_url: str) -> dict[str, Any]:
        """The variables that point the sensor's ``sqs`` mode at ``queue_url`` here."""
        return {
            "TALENT_SENSOR_SOURCE": "sqs",
            "TALENT_SQS_QUEUE_URL": queue_url,
            "TALENT_SQS_ENDPOINT_URL": self.endpoint_url,
        }
