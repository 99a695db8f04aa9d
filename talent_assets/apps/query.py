"""Analysts' SQL (``talent query``): DuckDB views over the Parquet warehouse.

:func:`connect` opens an in-memory DuckDB with one view per warehouse table (``videos``,
``face_detections``, ``identity_clusters``, ``selected_frames``) over
``<warehouse>/<table>/video_id=<id>/*.parquet``, read in place: from S3 through the httpfs
extension, or from a local folder. :func:`run_query` runs one SQL text on it and renders the
result as an aligned text table, CSV or JSON.

The httpfs extension comes from the PyPI wheel ``duckdb-extension-httpfs`` (same version as
``duckdb``) and is loaded from that file by path; extension autoinstall and autoload are off,
so nothing is ever downloaded at run time. S3 credentials go into a temporary DuckDB secret,
which DuckDB redacts in ``duckdb_secrets()``; on top of that every error message and every
output is scrubbed of the secret values, so they cannot reach the terminal or a log.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import importlib.util
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa

from talent_assets.core.tables import TABLE_SCHEMAS
from talent_assets.infra.settings import Settings

__all__ = ["FORMATS", "TABLES", "QueryError", "connect", "run_query"]

TABLES: tuple[str, ...] = tuple(TABLE_SCHEMAS)
FORMATS = ("table", "csv", "json")

_HTTPFS_PACKAGE = "duckdb_extension_httpfs"
_SECRET_NAME = "talent_warehouse"
# Environment variables whose values must never appear in anything we return or raise.
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Shorter values are not scrubbed from outputs: replacing e.g. every "ab" would mangle data,
# and real secret keys (40 characters on AWS) are far longer.
_MIN_SCRUB_LEN = 8
_MAX_ERROR_LEN = 500
_MAX_CELL_WIDTH = 48  # table format only: embeddings and long keys are cut with "…"


class QueryError(Exception):
    """A query could not be answered; the message is one line meant for the user."""


# --------------------------------------------------------------------------- connection


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the four warehouse tables as views.

    A table without any partition yet is an empty view with the table's columns, so queries
    over a fresh warehouse return no rows instead of failing. Raises :class:`QueryError` if
    the warehouse cannot be reached or read.
    """
    root = _warehouse_root(settings.warehouse)
    # Never fetch or implicitly load extensions: what we need is loaded explicitly below,
    # from files installed with the package, so the CLI works offline and reproducibly.
    con = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    try:
        # Timestamps are stored in UTC; show them in UTC whatever the machine's zone.
        con.execute("SET TimeZone = 'UTC'")
        if root.startswith("s3://"):
            _load_httpfs(con)
            _create_s3_secret(con, settings)
        present = _tables_with_partitions(con, root)
        for name in TABLES:
            con.execute(_view_sql(name, root, name in present))
    except QueryError:
        con.close()
        raise
    except duckdb.Error as err:
        con.close()
        raise QueryError(_scrub(f"cannot read the warehouse {root}: {_one_line(err)}")) from None
    return con


def _warehouse_root(warehouse: str) -> str:
    """``s3://bucket/prefix`` as is, or an absolute local folder; never a trailing slash."""
    if warehouse.startswith("s3://"):
        root = warehouse.rstrip("/")
        if not root[len("s3://") :]:
            raise QueryError(f"not an s3://bucket/prefix warehouse: {warehouse}")
        return root
    if warehouse.startswith("file://"):
        warehouse = warehouse[len("file://") :]
    elif "://" in warehouse:
        raise QueryError(f"unsupported warehouse location (s3:// or a local folder): {warehouse}")
    return str(Path(warehouse).expanduser().resolve())


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
    con.execute(f"LOAD {_literal(str(_httpfs_path()))}")


def _create_s3_secret(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """A temporary (in-memory, never persisted) S3 secret from the standard AWS variables."""
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
    body = ", ".join(
        f"{name} {str(value).lower() if isinstance(value, bool) else _literal(value)}"
        for name, value in params.items()
    )
    try:
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET {_SECRET_NAME} ({body})")
    except duckdb.Error as err:
        # The statement holds the secret: report DuckDB's reason only, scrubbed.
        raise QueryError(_scrub(f"invalid S3 settings: {_one_line(err)}")) from None


def _tables_with_partitions(con: duckdb.DuckDBPyConnection, root: str) -> set[str]:
    """Names of the tables that have at least one partition file (one listing in all)."""
    # A literal, not a ``?`` parameter: binding Python parameters makes DuckDB import pandas,
    # a second of start-up for every ``talent query``.
    pattern = _literal(f"{root}/*/video_id=*/*.parquet")
    files = con.execute(f"SELECT file FROM glob({pattern})").fetchall()
    return {name for (file,) in files for name in TABLES if f"/{name}/video_id=" in file}


def _view_sql(name: str, root: str, has_files: bool) -> str:
    if not has_files:
        # Same columns and types as the Parquet files would give, and no rows.
        columns = ", ".join(
            f"CAST(NULL AS {_duckdb_type(field.type)}) AS {_identifier(field.name)}"
            for field in TABLE_SCHEMAS[name]
        )
        return f"CREATE VIEW {name} AS SELECT {columns} WHERE false"
    # The files carry video_id as a column too; DuckDB then exposes a single video_id (the
    # partition value, identical by construction), and filters on it prune whole files.
    # VARCHAR always: an id that looks like a number must not be auto-cast.
    pattern = _literal(f"{root}/{name}/video_id=*/*.parquet")
    return (
        f"CREATE VIEW {name} AS SELECT * FROM read_parquet({pattern}, "
        "hive_partitioning = true, hive_types = {'video_id': VARCHAR})"
    )


def _duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type that reading this Arrow type back from Parquet gives."""
    simple = {
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.bool_(): "BOOLEAN",
        pa.int8(): "TINYINT",
        pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.float32(): "FLOAT",
        pa.float64(): "DOUBLE",
        pa.date32(): "DATE",
        pa.binary(): "BLOB",
    }
    if arrow_type in simple:
        return simple[arrow_type]
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP WITH TIME ZONE" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        # Parquet has no fixed-size lists: they come back as variable-length LISTs.
        return f"{_duckdb_type(arrow_type.value_type)}[]"
    raise TypeError(f"no DuckDB type for the Arrow type {arrow_type}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- queries


def run_query(sql: str, *, settings: Settings, fmt: str = "table") -> str:
    """Run ``sql`` over the warehouse views; the result as ``table``, ``csv`` or ``json``.

    Several statements may be given (``;``-separated); the last one's result is returned, and
    a statement without a result (``SET``, ``CREATE``...) gives an empty string. Raises
    :class:`QueryError` with one line on bad SQL, an unreachable warehouse or a bad format.
    """
    if fmt not in _FORMATTERS:
        raise QueryError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if not sql.strip():
        raise QueryError("empty query")
    con = connect(settings)
    try:
        result = con.execute(sql)
        if result.description is None:
            return ""
        types = [str(column[1]) for column in result.description]
        table = result.to_arrow_table()
    except duckdb.Error as err:
        raise QueryError(_scrub(_one_line(err))) from None
    finally:
        con.close()
    try:
        return _scrub(_FORMATTERS[fmt](table, types))
    except (pa.ArrowException, ValueError, OverflowError) as err:
        # E.g. a timestamp outside Python's datetime range.
        raise QueryError(_scrub(f"cannot format the result: {_one_line(err)}")) from None


def _one_line(err: BaseException) -> str:
    """DuckDB's message without the echoed SQL and the help bullets, on one line."""
    kept = []
    for line in str(err).splitlines():
        line = line.strip()
        if line.startswith("LINE "):  # the statement with a caret under the error
            break
        if line and not line.startswith(("*", "See https://")):
            kept.append(line)
    text = " ".join(kept) or type(err).__name__
    return text if len(text) <= _MAX_ERROR_LEN else text[: _MAX_ERROR_LEN - 1] + "…"


def _scrub(text: str) -> str:
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= _MIN_SCRUB_LEN:
            text = text.replace(value, "***")
    return text


# --------------------------------------------------------------------------- values


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    columns = [_readable_floats(column).to_pylist() for column in table.columns]
    return list(zip(*columns, strict=True)) if columns else []


def _readable_floats(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Float32 values (embeddings, scores) as the shortest decimals that round-trip.

    ``to_pylist`` widens float32 to float64, turning 0.1 into 0.10000000149011612: triple the
    size of every embedding and noise to a reader. Casting through text (Arrow prints float32
    in shortest form) to float64 keeps the value the float32 stands for, vectorised.
    """
    as_text = _replace_float32(column.type, pa.string())
    if as_text == column.type:
        return column
    try:
        return column.cast(as_text).cast(_replace_float32(column.type, pa.float64()))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return column  # a nesting Arrow cannot cast: full float64 digits, still correct


def _replace_float32(arrow_type: pa.DataType, new: pa.DataType) -> pa.DataType:
    if pa.types.is_float32(arrow_type) or pa.types.is_float16(arrow_type):
        return new
    if pa.types.is_map(arrow_type):
        return pa.map_(
            arrow_type.key_field.with_type(_replace_float32(arrow_type.key_type, new)),
            arrow_type.item_field.with_type(_replace_float32(arrow_type.item_type, new)),
        )
    if pa.types.is_fixed_size_list(arrow_type):
        field = arrow_type.value_field
        return pa.list_(field.with_type(_replace_float32(field.type, new)), arrow_type.list_size)
    if pa.types.is_list(arrow_type):
        field = arrow_type.value_field
        return pa.list_(field.with_type(_replace_float32(field.type, new)))
    if pa.types.is_large_list(arrow_type):
        field = arrow_type.value_field
        return pa.large_list(field.with_type(_replace_float32(field.type, new)))
    if pa.types.is_struct(arrow_type):
        return pa.struct(
            [
                arrow_type.field(i).with_type(_replace_float32(arrow_type.field(i).type, new))
                for i in range(arrow_type.num_fields)
            ]
        )
    return arrow_type


def _jsonable(value: Any) -> Any:
    """A value as JSON data: ISO timestamps, lists for arrays, null for NaN/inf."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        # SUM over integers is a HUGEINT, which Arrow carries as a scale-0 decimal.
        return int(value) if value.as_tuple().exponent >= 0 else float(value)  # type: ignore[operator]
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, pa.MonthDayNano):
        return _interval_text(value)
    if isinstance(value, bytes):
        return _blob_text(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(item, tuple) and len(item) == 2 for item in value):
            # Arrow gives a MAP as (key, value) pairs: an object reads better.
            return {str(k): _jsonable(v) for k, v in value}
        return [_jsonable(item) for item in value]
    return str(value)  # e.g. a UUID


def _text(value: Any, *, null: str, sep: str) -> str:
    """A value as one cell of text (table and CSV); ``sep`` goes between date and time."""
    if value is None:
        return null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=sep)
    if isinstance(value, list | dict):
        return json.dumps(_jsonable(value), ensure_ascii=False)
    if isinstance(value, str | int | decimal.Decimal):
        return str(value)
    return str(_jsonable(value))


def _interval_text(value: pa.MonthDayNano) -> str:
    """DuckDB's way of writing an INTERVAL: ``1 year 2 months 3 days 04:05:06.5``."""
    parts = []
    sign = -1 if value.months < 0 else 1
    years, months = divmod(abs(value.months), 12)
    years, months = sign * years, sign * months
    for amount, unit in ((years, "year"), (months, "month"), (value.days, "day")):
        if amount:
            parts.append(f"{amount} {unit}{'' if abs(amount) == 1 else 's'}")
    if value.nanoseconds or not parts:
        micros = abs(value.nanoseconds) // 1000
        hours, rest = divmod(micros, 3_600_000_000)
        minutes, rest = divmod(rest, 60_000_000)
        seconds, micros = divmod(rest, 1_000_000)
        clock = f"{'-' if value.nanoseconds < 0 else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
        parts.append(clock + (f".{micros:06d}".rstrip("0") if micros else ""))
    return " ".join(parts)


def _blob_text(value: bytes) -> str:
    """Printable ASCII as is, other bytes as ``\\xAB`` (DuckDB's notation)."""
    return "".join(chr(b) if 32 <= b < 127 and b != 92 else f"\\x{b:02X}" for b in value)


# --------------------------------------------------------------------------- formats


def _unique_names(names: Sequence[str]) -> list[str]:
    """``SELECT a.x, b.x`` gives two columns named x: number the repeats for JSON keys."""
    used: set[str] = set()
    unique = []
    for name in names:
        candidate, count = name, 0
        while candidate in used:
            count += 1
            candidate = f"{name}_{count}"
        used.add(candidate)
        unique.append(candidate)
    return unique


def _format_json(table: pa.Table, types: Sequence[str]) -> str:
    """A JSON list of objects, one per line (embeddings stay one line each)."""
    names = _unique_names(table.column_names)
    rows = [
        json.dumps(
            {name: _jsonable(value) for name, value in zip(names, row, strict=True)},
            ensure_ascii=False,
            allow_nan=False,
        )
        for row in _rows(table)
    ]
    return "[\n" + ",\n".join(rows) + "\n]" if rows else "[]"


def _format_csv(table: pa.Table, types: Sequence[str]) -> str:
    """CSV with a header row; NULL is an empty field, arrays are JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in _rows(table):
        writer.writerow([_text(value, null="", sep="T") for value in row])
    return buffer.getvalue().rstrip("\n")


def _format_table(table: pa.Table, types: Sequence[str]) -> str:
    """A box-drawn table like DuckDB's: names and types on top, numbers right-aligned."""
    header = [_cut(name) for name in table.column_names]
    type_names = [_cut(name.lower()) for name in types]
    cells = [[_cut(_text(value, null="NULL", sep=" ")) for value in row] for row in _rows(table)]
    numeric = [
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
        for t in table.schema.types
    ]
    widths = [
        max([len(header[i]), len(type_names[i])] + [len(row[i]) for row in cells])
        for i in range(len(header))
    ]

    def rule(left: str, middle: str, right: str) -> str:
        return left + middle.join("─" * (w + 2) for w in widths) + right

    def line(values: Sequence[str], align: Callable[[str, int, int], str]) -> str:
        return (
            "│"
            + "│".join(
                f" {align(v, w, i)} " for i, (v, w) in enumerate(zip(values, widths, strict=True))
            )
            + "│"
        )

    def centre(value: str, width: int, _: int) -> str:
        return value.center(width)

    def data(value: str, width: int, index: int) -> str:
        return value.rjust(width) if numeric[index] else value.ljust(width)

    out = [rule("┌", "┬", "┐"), line(header, centre), line(type_names, centre)]
    out.append(rule("├", "┼", "┤"))
    out.extend(line(row, data) for row in cells)
    out.append(rule("└", "┴", "┘"))
    out.append(f"{len(cells)} row{'' if len(cells) == 1 else 's'}")
    return "\n".join(out)


def _cut(text: str) -> str:
    """One line, at most _MAX_CELL_WIDTH characters, so that columns stay aligned."""
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return text if len(text) <= _MAX_CELL_WIDTH else text[: _MAX_CELL_WIDTH - 1] + "…"


_FORMATTERS: dict[str, Callable[[pa.Table, Sequence[str]], str]] = {
    "table": _format_table,
    "csv": _format_csv,
    "json": _format_json,
}
