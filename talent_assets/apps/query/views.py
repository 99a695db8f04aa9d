"""One DuckDB view per warehouse table, over ``<root>/<table>/video_id=<id>/*.parquet``
(the registry's tables, not partitioned by video: over ``<root>/<table>/*.parquet``).

The files are read in place (no copy, no catalogue): a view is just a ``read_parquet`` over
the table's partitions, so a query always sees what the pipeline last wrote.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from talent_assets.apps.query.sql import identifier, literal
from talent_assets.core.tables import REGISTRY_SCHEMAS, TABLE_SCHEMAS

#: The registry's tables analysts query. Biometric columns stay out of SQL: the enrolment
#: photos' embeddings (``talent_photos``) and the talents' exemplars (which include them).
REGISTRY_TABLES: tuple[str, ...] = ("talents", "talent_appearances", "talent_events")
HIDDEN_COLUMNS: dict[str, tuple[str, ...]] = {"talents": ("exemplars",)}
TABLES: tuple[str, ...] = (*TABLE_SCHEMAS, *REGISTRY_TABLES)
SCHEMAS = {**TABLE_SCHEMAS, **REGISTRY_SCHEMAS}

# What reading each simple Arrow type back from Parquet gives in DuckDB.
_SIMPLE_TYPES: dict[pa.DataType, str] = {
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


def create_views(con: duckdb.DuckDBPyConnection, root: str) -> None:
    """A view per table in :data:`TABLES` over the warehouse at ``root`` (no trailing slash).

    A table without any partition yet is an empty view with the table's columns, so queries
    over a fresh warehouse return no rows instead of failing.
    """
    present = _tables_with_partitions(con, root)
    for name in TABLES:
        con.execute(_view_sql(name, root, name in present))


def _tables_with_partitions(con: duckdb.DuckDBPyConnection, root: str) -> set[str]:
    """Names of the tables that have at least one partition file (one listing in all)."""
    # A literal, not a ``?`` parameter: binding Python parameters makes DuckDB import pandas,
    # a second of start-up for every ``talent query``.
    pattern = literal(f"{root}/*/video_id=*/*.parquet")
    files = con.execute(f"SELECT file FROM glob({pattern})").fetchall()
    present = {name for (file,) in files for name in TABLE_SCHEMAS if f"/{name}/video_id=" in file}
    flat = literal(f"{root}/*/*.parquet")
    files = con.execute(f"SELECT file FROM glob({flat})").fetchall()
    return present | {n for (file,) in files for n in REGISTRY_TABLES if f"/{n}/" in file}


def _view_sql(name: str, root: str, has_files: bool) -> str:
    """``CREATE VIEW`` for one table: over its files, or empty with its columns."""
    if not has_files:
        # Same columns and types as the Parquet files would give, and no rows.
        columns = ", ".join(
            f"CAST(NULL AS {_duckdb_type(field.type)}) AS {identifier(field.name)}"
            for field in SCHEMAS[name]
            if field.name not in HIDDEN_COLUMNS.get(name, ())
        )
        return f"CREATE VIEW {name} AS SELECT {columns} WHERE false"
    if name in REGISTRY_TABLES:
        files = literal(f"{root}/{name}/*.parquet")
        hidden = HIDDEN_COLUMNS.get(name)
        columns = f"* EXCLUDE ({', '.join(hidden)})" if hidden else "*"
        return f"CREATE VIEW {name} AS SELECT {columns} FROM read_parquet({files})"
    # The files carry video_id as a column too; DuckDB then exposes a single video_id (the
    # partition value, identical by construction), and filters on it prune whole files.
    # VARCHAR always: an id that looks like a number must not be auto-cast.
    pattern = literal(f"{root}/{name}/video_id=*/*.parquet")
    return (
        f"CREATE VIEW {name} AS SELECT * FROM read_parquet({pattern}, "
        "hive_partitioning = true, hive_types = {'video_id': VARCHAR})"
    )


def _duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type that reading this Arrow type back from Parquet gives."""
    if arrow_type in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[arrow_type]
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP WITH TIME ZONE" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        # Parquet has no fixed-size lists: they come back as variable-length LISTs.
        return f"{_duckdb_type(arrow_type.value_type)}[]"
    raise TypeError(f"no DuckDB type for the Arrow type {arrow_type}")
