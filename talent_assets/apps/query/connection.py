"""The DuckDB connection: offline extensions, a temporary S3 secret, the warehouse views.

Extension autoinstall and autoload are off; httpfs (needed for ``s3://`` only) is loaded by
path from the ``duckdb-extension-httpfs`` wheel, so ``talent query`` never downloads anything
and works offline and reproducibly. S3 credentials live only in a temporary (in-memory, never
persisted) DuckDB secret, and every error raised from here is scrubbed of them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from talent_assets.apps.query.errors import QueryError, one_line, scrub
from talent_assets.apps.query.sql import literal
from talent_assets.apps.query.views import create_views
from talent_assets.infra.settings import Settings
from talent_assets.infra.warehouse import WarehouseRoot

_HTTPFS_PACKAGE = "duckdb_extension_httpfs"
_SECRET_NAME = "talent_warehouse"


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the four warehouse tables as views.

    A table without any partition yet is an empty view with the table's columns, so queries
    over a fresh warehouse return no rows instead of failing. Raises :class:`QueryError` if
    the warehouse cannot be reached or read.
    """
    location = _warehouse_root(settings.warehouse)
    root = location.url()  # s3://bucket/prefix or an absolute folder, no trailing slash
    # Never fetch or implicitly load extensions: what we need is loaded explicitly below,
    # from files installed with the package, so the CLI works offline and reproducibly.
    con = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    try:
        # Timestamps are stored in UTC; show them in UTC whatever the machine's zone.
        con.execute("SET TimeZone = 'UTC'")
        if location.bucket is not None:
            _load_httpfs(con)
            _create_s3_secret(con, settings)
        create_views(con, root)
    except QueryError:
        con.close()
        raise
    except duckdb.Error as err:
        con.close()
        raise QueryError(scrub(f"cannot read the warehouse {root}: {one_line(err)}")) from None
    return con


def _warehouse_root(warehouse: str) -> WarehouseRoot:
    """The parsed ``TALENT_WAREHOUSE``; a location it refuses is a :class:`QueryError`.

    :class:`WarehouseRoot` is the one parser of warehouse locations, so ``talent query``
    accepts exactly what the pipeline writes to; its messages are already meant for users.
    """
    try:
        return WarehouseRoot.parse(warehouse)
    except ValueError as err:
        raise QueryError(str(err)) from None


def _httpfs_path() -> Path:
    """The httpfs extension file shipped in the ``duckdb-extension-httpfs`` wheel.

    The wheel only carries ``duckdb_extension_httpfs/extensions/v<version>/httpfs.duckdb_
    extension`` (its README suggests a helper package that copies it into ~/.duckdb, which we
    do not need): ``LOAD '<path>'`` loads it directly. The version must match DuckDB's exactly.
    """
    # find_spec, not import: locating the files is all we need.
    spec = importlib.util.find_spec(_HTTPFS_PACKAGE)
    version = duckdb.__version__
    if spec is None or spec.origin is None:
        raise QueryError(
            f"reading s3:// needs the httpfs extension: install duckdb-extension-httpfs=={version}"
        )
    path = Path(spec.origin).parent / "extensions" / f"v{version}" / "httpfs.duckdb_extension"
    if not path.is_file():
        raise QueryError(
            f"duckdb-extension-httpfs does not match duckdb {version}: "
            f"install duckdb-extension-httpfs=={version}"
        )
    return path


def _load_httpfs(con: duckdb.DuckDBPyConnection) -> None:
    """Load httpfs from the installed wheel by path (autoload is off)."""
    con.execute(f"LOAD {literal(str(_httpfs_path()))}")


def _create_s3_secret(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """A temporary (in-memory, never persisted) S3 secret from the standard AWS variables."""
    params = _s3_secret_params(settings)
    body = ", ".join(
        f"{name} {str(value).lower() if isinstance(value, bool) else literal(value)}"
        for name, value in params.items()
    )
    try:
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET {_SECRET_NAME} ({body})")
    except duckdb.Error as err:
        # The statement holds the secret: report DuckDB's reason only, scrubbed.
        raise QueryError(scrub(f"invalid S3 settings: {one_line(err)}")) from None


def _s3_secret_params(settings: Settings) -> dict[str, str | bool]:
    """The secret's parameters: region, credentials if any, and the endpoint if not AWS.

    Credentials come from the environment (``AWS_ACCESS_KEY_ID`` and co.), deliberately not
    from :class:`Settings`, which never holds them.
    """
    params: dict[str, str | bool] = {"TYPE": "s3", "REGION": settings.region}
    key_id = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key_id and secret:
        params.update(KEY_ID=key_id, SECRET=secret)
        if token := os.environ.get("AWS_SESSION_TOKEN"):
            params["SESSION_TOKEN"] = token
    # Without a key pair the secret still sets endpoint and region: anonymous reads.
    if settings.endpoint_url:
        endpoint = settings.endpoint_url
        if "://" not in endpoint:
            endpoint = f"https://{endpoint}"
        parts = urlsplit(endpoint)
        # DuckDB wants host:port; SeaweedFS, MinIO & co. serve buckets as path segments.
        params.update(
            ENDPOINT=parts.netloc, URL_STYLE="path", USE_SSL=parts.scheme.lower() == "https"
        )
    return params
