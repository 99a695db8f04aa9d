"""The Parquet warehouse: one Hive-style partition per table and video, replaced atomically.

``<root>/<table>/video_id=<id>/part-0.parquet``. A partition is one object written in one
request (S3 PUTs are all-or-nothing; locally we write a temp file and rename), so a failed run
never leaves half a table, and re-materialising replaces rows instead of appending them.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from talent_assets.core.objects import ObjectNotFoundError
from talent_assets.core.tables import TABLE_SCHEMAS
from talent_assets.infra.storage import LocalObjectStore, ObjectStore


@dataclass(frozen=True)
class WarehouseRoot:
    """Where the tables live: ``s3://bucket/prefix`` or a local folder (``TALENT_WAREHOUSE``)."""

    bucket: str | None  # set for s3:// roots
    prefix: str  # key prefix in the bucket: "" or ending in "/"
    folder: Path | None  # set for local roots (absolute)

    @classmethod
    def parse(cls, root: str) -> WarehouseRoot:
        """Parse ``s3://bucket[/prefix]``, ``file:///path`` or a path; ValueError otherwise."""
        if root.startswith("s3://"):
            bucket, _, prefix = root[len("s3://") :].partition("/")
            if not bucket:
                raise ValueError(f"not an s3://bucket/prefix warehouse: {root}")
            prefix = prefix.strip("/")
            return cls(bucket, f"{prefix}/" if prefix else "", None)
        if root.startswith("file://"):
            root = root[len("file://") :]
        elif "://" in root:
            raise ValueError(f"unsupported warehouse location (s3:// or a local folder): {root}")
        return cls(None, "", Path(root).expanduser().resolve())

    def url(self) -> str:
        """``s3://bucket/prefix`` or the absolute folder, without a trailing slash (DuckDB)."""
        if self.folder is not None:
            return str(self.folder)
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


def open_warehouse(root: str, bucket: str, s3_store: Callable[[], ObjectStore]) -> Warehouse:
    """The warehouse at ``root``; an ``s3://`` root must be in the configured ``bucket``.

    ``s3_store`` is called only for an S3 root, so a local warehouse needs no S3 client.
    """
    parsed = WarehouseRoot.parse(root)
    if parsed.folder is not None:
        return Warehouse(LocalObjectStore(parsed.folder), "")
    if parsed.bucket != bucket:
        raise ValueError(f"TALENT_WAREHOUSE must be in the configured bucket {bucket!r}")
    return Warehouse(s3_store(), parsed.prefix)


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
        """The partition's rows, or None if it was never written.

        A partition written before a nullable column was added reads with that column null,
        so older outputs stay usable after an upgrade (downstream assets re-run on them).
        """
        try:
            data = self.store.get_bytes(self.partition_key(table_name, video_id))
        except ObjectNotFoundError:
            return None
        table = pq.read_table(io.BytesIO(data))
        schema = TABLE_SCHEMAS[table_name]
        for field in schema:
            if field.name not in table.column_names and field.nullable:
                table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
        return table.select(schema.names).cast(schema)

    def delete(self, table_name: str, video_id: str) -> None:
        self.store.delete([self.partition_key(table_name, video_id)])
