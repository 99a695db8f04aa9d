"""``talent up --postgres``: the stack with Dagster's storage in a local PostgreSQL server.

Real parts only: SeaweedFS, ``dagster dev`` (webserver + daemon), and PostgreSQL from the
machine's binaries (``scripts/ensure-postgres`` installs them), all on loopback.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import psycopg2
import pytest
from dagster import DagsterRunStatus

from talent_assets.devstack.stack import (
    LocalStack,
    StackInfo,
    dagster_pg_url,
    use_running_stack,
    wait_for_runs,
)
from talent_assets.infra.s3 import bucket_store
from talent_assets.infra.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_runs_and_events_are_kept_in_postgres(
    tmp_path: Path, three_person, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / ".talent"
    stack = LocalStack(
        root,
        bucket="talent",
        sensor_interval_s=2,
        credentials=(f"pg{secrets.token_hex(4)}", secrets.token_urlsafe(24)),
        postgres=True,
    )
    try:
        info = stack.start()
        for name, value in stack.environment().items():
            monkeypatch.setenv(name, value)
        # stack.json names the server but never carries its password.
        saved = json.loads((root / "stack.json").read_text())
        assert saved["postgres_url"] == info.postgres_url == stack.postgres.url_without_password
        assert stack.postgres.url.split("@")[0].split(":")[-1] not in json.dumps(saved)

        key = "videos/pg/three.mp4"
        bucket_store(Settings.from_env()).put_bytes(key, three_person[0].read_bytes(), "video/mp4")
        run = wait_for_runs(stack.dagster_home, [key], timeout_s=600)[key]
        assert run.status == DagsterRunStatus.SUCCESS
        # The runs are rows in PostgreSQL, not in a SQLite file under the Dagster home.
        with psycopg2.connect(stack.postgres.url) as con, con.cursor() as cur:
            cur.execute("SELECT run_id FROM runs")
            assert run.run_id in {row[0] for row in cur.fetchall()}
            cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run.run_id,))
            assert cur.fetchone()[0] > 10
        assert not list((stack.dagster_home).rglob("runs.db"))

        # A client in the stack folder finds the storage by itself (DAGSTER_PG_URL rebuilt
        # from stack.json and the password file).
        monkeypatch.delenv("DAGSTER_PG_URL")
        monkeypatch.delenv("TALENT_S3_ENDPOINT_URL")
        monkeypatch.chdir(tmp_path)
        assert use_running_stack(Path(".talent")) == StackInfo.load(root)
        import os

        assert os.environ["DAGSTER_PG_URL"] == dagster_pg_url(stack.postgres.url)
    finally:
        stack.stop()
    assert not stack.postgres.running
    stack.postgres.delete_data()
