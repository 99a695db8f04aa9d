"""The Parquet warehouse: one Hive-style partition per table and video, replaced atomically.

``<root>/<table>/video_id=<id>/part-0.parquet``. A partition is one object written in one
request (S3 PUTs are all-or-nothing; locally we write a temp file and rename), so a failed run
never leaves half a table, and re-materialising replaces rows instead of appending them.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from talent_assets.core.tables import TABLE_SCHEMAS
from talent_assets.infra.storage import ObjectNotFoundError, ObjectStore


class Warehouse:
    """Tables under ``prefix`` in an object store (the bucket, or a local folder)."""

    def __init__(self, store: ObjectStore, prefix: str = "warehouse/"):
        self.store = store
        self.prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"

    def partition_key(self, table_name: str, video_id: str) -> str:
        if table_name not in TABLE_SCHEMAS:
            raise KeyError(f"unknown table {table_name!r}")
        return f"{self.prefix}{table_name}/video_id={video_id}/part-0.parquet"

    def location(self, table_name: str, video_id: str | None = None) -> str:
        """Where a table (or one partition of it) lives, for metadata and DuckDB."""
        if video_id is None:
            return self.store.location(f"{self.prefix}{table_name}")
        return self.store.location(self.partition_key(table_name, video_id))

    def write(self, table_name: str, video_id: str, table: pa.Table) -> str:
        """Replace the partition of ``video_id`` with ``table`` (cast to the table's schema)."""
        schema = TABLE_SCHEMAS[table_name]
        table = table.select(schema.names).cast(schema)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        key = self.partition_key(table_name, video_id)
        self.store.put_bytes(key, buffer.getvalue(), "application/vnd.apache.parquet")
        return self.store.location(key)

    def read(self, table_name: str, video_id: str) -> pa.Table | None:
        """The partition's rows, or None if it was never written."""
        try:
            data = self.store.get_bytes(self.partition_key(table_name, video_id))
        except ObjectNotFoundError:
            return None
        table = pq.read_table(io.BytesIO(data))
        return table.cast(TABLE_SCHEMAS[table_name])

    def delete(self, table_name: str, video_id: str) -> None:
        self.store.delete([self.partition_key(table_name, video_id)])
