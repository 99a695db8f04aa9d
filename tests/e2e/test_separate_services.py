"""Production Dagster's topology: code server, webserver and daemon as separate processes,
storage in PostgreSQL (``talent_assets/devstack/services.py``), and the deploy files that
run the same thing in containers (``deploy/``).

The fast tests check that ``deploy/compose.yaml``, ``deploy/workspace.yaml``,
``deploy/dagster.yaml`` and the Helm values say what the harness runs; the slow one runs it:
a real video uploaded to S3 is found by the sensor (evaluated in the code server), queued
and launched by the daemon, run as a subprocess of the code server, and shows in the
webserver, with every run a row in PostgreSQL.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from pathlib import Path

import psycopg2
import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from talent_assets.devstack.services import (
    COMPOSE_CODE_HOST,
    COMPOSE_DAGSTER_HOME,
    COMPOSE_HOST,
    COMPOSE_PORTS,
    LOCATION_NAME,
    ProductionServices,
    production_dagster_yaml,
    service_commands,
    workspace_yaml,
)
from talent_assets.devstack.stack import RunMonitoring, wait_for_runs
from talent_assets.infra.settings import Settings
from tests.support.pipeline import manifest_of, upload

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_WORKSPACE = f"{COMPOSE_DAGSTER_HOME}/workspace.yaml"


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _strip_comments(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if not line.startswith("#"))


# --- the deploy files agree with the harness (fast) ---------------------------------------------


def test_compose_runs_the_commands_the_harness_runs() -> None:
    services = _compose()["services"]
    expected = service_commands(COMPOSE_HOST, COMPOSE_PORTS, COMPOSE_WORKSPACE)
    for name, argv in expected.items():
        assert services[name]["command"] == argv, name
    # The same five kinds of process, and nothing else long-running.
    assert set(services) == {"postgres", "s3", "bucket", "code", "webserver", "daemon"}
    assert services["s3"]["image"].startswith("chrislusf/seaweedfs:")
    assert services["s3"]["command"][:2] == ["server", "-s3"]
    # The images' default commands are the compose ones too.
    assert f"CMD {json.dumps(expected['code'])}" in (DEPLOY / "Dockerfile.code").read_text()
    dagster_image = (DEPLOY / "Dockerfile.dagster").read_text()
    assert f"CMD {json.dumps(expected['webserver'])}" in dagster_image


def test_compose_takes_secrets_from_the_env_file_only() -> None:
    services = _compose()["services"]
    secret_names = ("DAGSTER_PG_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if key in secret_names:
                assert value.startswith(f"${{{key}:?"), (name, key)
            if key == "TALENT_WEBHOOK_SECRET":  # optional, but only ever from the env file
                assert value == f"${{{key}:-}}", (name, key)
    # The code server reaches the others by service name, as workspace.yaml names it.
    code_env = services["code"]["environment"]
    assert code_env["DAGSTER_PG_HOST"] == "postgres"
    assert code_env["TALENT_S3_ENDPOINT_URL"].startswith("http://s3:")
    assert (DEPLOY / ".gitignore").read_text().splitlines()[-1] == ".env"


def test_deploy_workspace_and_instance_are_the_harness_files() -> None:
    workspace = _strip_comments((DEPLOY / "workspace.yaml").read_text())
    assert workspace == workspace_yaml(COMPOSE_CODE_HOST, COMPOSE_PORTS["code"])
    assert yaml.safe_load(workspace)["load_from"][0]["grpc_server"]["location_name"] == (
        LOCATION_NAME
    )
    instance = _strip_comments((DEPLOY / "dagster.yaml").read_text())
    assert instance == production_dagster_yaml()


def test_the_harness_instance_differs_from_compose_only_in_its_numbers() -> None:
    """The test harness runs 2 videos at once and finds lost runs after 45 s; otherwise its
    dagster.yaml is compose's."""
    deploy = yaml.safe_load(production_dagster_yaml())
    harness = yaml.safe_load(production_dagster_yaml(2, RunMonitoring(45, 60, 45, 3)))
    for config in (deploy, harness):
        config["concurrency"]["runs"].pop("max_concurrent_runs")
        config["concurrency"]["runs"].pop("tag_concurrency_limits")
        config.pop("run_monitoring")
    assert deploy == harness
    assert deploy["run_retries"] == {
        "enabled": True,
        "max_retries": 2,
        "retry_on_asset_or_op_failure": False,
    }
    assert set(deploy["storage"]["postgres"]["postgres_db"]) >= {"hostname", "password"}


def test_the_deploy_instance_is_valid_dagster_config(tmp_path: Path) -> None:
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_monitoring"]["max_resume_run_attempts"] == 0  # DefaultRunLauncher
    assert config["run_monitoring"]["max_runtime_seconds"] > 0


def test_helm_values_run_the_same_code_server_with_the_k8s_launcher() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    # The chart runs ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", port, *args].
    chart_argv = ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p",
                  str(deployment["port"]), *deployment["codeServerArgs"]]  # fmt: skip
    assert chart_argv == service_commands(COMPOSE_HOST, COMPOSE_PORTS, "")["code"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is True
    assert values["dagsterDaemon"]["runRetries"]["retryOnAssetOrOpFailure"] is False
    assert deployment["envSecrets"] == [{"name": "talent-s3"}]
    assert values["global"]["postgresqlSecretName"]
    limits = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    compose_limits = yaml.safe_load(production_dagster_yaml())["concurrency"]["runs"]
    assert [(t["key"], t["value"]) for t in limits["tagConcurrencyLimits"]] == [
        (t["key"], t["value"]) for t in compose_limits["tag_concurrency_limits"]
    ]


# --- the services themselves (slow) --------------------------------------------------------------


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    svc = ProductionServices(
        tmp_path / "svc",
        sensor_interval_s=2,
        credentials=(f"svc{secrets.token_hex(4)}", secrets.token_urlsafe(24)),
    )
    try:
        svc.start()
        for name, value in svc.environment().items():
            monkeypatch.setenv(name, value)
        yield svc
    finally:
        svc.stop()
        svc.postgres.delete_data()


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_video_runs_through_the_separate_services(services, three_person) -> None:
    # Each service is its own process, none a child of another, running the expected argv.
    pids = {name: services.pid(name) for name in ("code", "webserver", "daemon")}
    for name, pid in pids.items():
        # An exited service is a zombie with an empty cmdline: say so rather than IndexError.
        assert services.procs[name].poll() is None, (name, services.procs[name].returncode)
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        # A console script: the interpreter, then the script, then its arguments.
        assert [Path(argv[1]).name, *argv[2:]] == services.argv[name], (name, argv)
        assert not set(_ancestors(pid)) & set(pids.values()), name
    assert services.argv == service_commands(
        "127.0.0.1", services.ports, str(services.workspace_path)
    )
    assert services.workspace_path.read_text() == workspace_yaml(
        "127.0.0.1", services.ports["code"]
    )
    assert (services.dagster_home / "dagster.yaml").read_text() == production_dagster_yaml(
        1, services.monitoring
    )

    # The webserver answers and has loaded the code location from the gRPC server.
    with urllib.request.urlopen(f"{services.ui_url}/server_info", timeout=10) as response:
        assert json.loads(response.read())["dagster_webserver_version"]
    data = _graphql(
        services.ui_url,
        "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
        "displayMetadata { key value } locationOrLoadError { __typename } } } } }",
    )
    [entry] = data["workspaceOrError"]["locationEntries"]
    assert entry["name"] == LOCATION_NAME and entry["loadStatus"] == "LOADED"
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation"
    metadata = {m["key"]: m["value"] for m in entry["displayMetadata"]}
    assert metadata == {"host": "127.0.0.1", "port": str(services.ports["code"])}

    # A video uploaded to S3: found by the sensor, run, published.
    path, _ = three_person
    key = "videos/services/three.mp4"
    settings = Settings.from_env()
    upload(settings, path, key)
    run = wait_for_runs(services.dagster_home, [key], timeout_s=420)[key]
    assert run.status == DagsterRunStatus.SUCCESS
    # Launched through the code server (the DefaultRunLauncher records where).
    assert json.loads(run.tags[GRPC_INFO_TAG])["port"] == services.ports["code"]
    manifest = manifest_of(settings, key)
    assert manifest is not None and manifest["people_found"] == 3

    # The runs and their events are rows in PostgreSQL; no SQLite storage exists.
    with psycopg2.connect(services.postgres.url) as con, con.cursor() as cur:
        cur.execute("SELECT run_id, status FROM runs")
        rows = dict(cur.fetchall())
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run.run_id,))
        assert cur.fetchone()[0] > 10
    assert rows[run.run_id] == "SUCCESS"
    assert not list(services.dagster_home.rglob("*.db"))
    with DagsterInstance.from_config(str(services.dagster_home)) as instance:
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.SUCCESS
