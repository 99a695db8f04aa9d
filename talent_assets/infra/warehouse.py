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
from talent_assets.core.tables import REGISTRY_SCHEMAS, TABLE_SCHEMAS
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
        key = self.partition_key(table_name, video_id)
        self.store.put_bytes(key, _parquet(table), PARQUET)
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

    def video_ids(self, table_name: str) -> list[str]:
        """The videos that have a partition of ``table_name`` (one listing)."""
        base = f"{self.prefix}{table_name}/video_id="
        return sorted(
            info.key[len(base) :].split("/", 1)[0]
            for info in self.store.list(base)
            if info.key.endswith("/part-0.parquet")
        )

    # --- the registry's tables (not partitioned by video) ---------------------------------

    def whole_key(self, table_name: str) -> str:
        """``<prefix><table>/part-0.parquet``: a registry table's one file."""
        if table_name not in REGISTRY_SCHEMAS or table_name == "talent_events":
            raise KeyError(f"not a single-file registry table: {table_name!r}")
        return f"{self.prefix}{table_name}/part-0.parquet"

    def read_whole(self, table_name: str) -> pa.Table:
        """A registry table's rows (empty, with its schema, before the first write)."""
        schema = REGISTRY_SCHEMAS[table_name]
        try:
            data = self.store.get_bytes(self.whole_key(table_name))
        except ObjectNotFoundError:
            return schema.empty_table()
        return pq.read_table(io.BytesIO(data)).select(schema.names).cast(schema)

    def write_whole(self, table_name: str, table: pa.Table) -> str:
        """Replace a registry table with ``table`` (cast to its schema); one object, one PUT."""
        schema = REGISTRY_SCHEMAS[table_name]
        key = self.whole_key(table_name)
        self.store.put_bytes(key, _parquet(table.select(schema.names).cast(schema)), PARQUET)
        return self.store.location(key)

    def event_key(self, event: dict) -> str:
        """``talent_events/<UTC time>-<event id>.parquet``: one append-only file per event."""
        stamp = event["occurred_at"].strftime("%Y%m%dT%H%M%S%fZ")
        return f"{self.prefix}talent_events/{stamp}-{event['event_id']}.parquet"

    def append_events(self, events: list[dict]) -> None:
        """Write each event as its own file: appending never rewrites earlier ones."""
        schema = REGISTRY_SCHEMAS["talent_events"]
        for event in events:
            table = pa.Table.from_pylist([event], schema=schema)
            self.store.put_bytes(self.event_key(event), _parquet(table), PARQUET)

    def read_events(self) -> list[dict]:
        """Every registry event, oldest first."""
        schema = REGISTRY_SCHEMAS["talent_events"]
        rows: list[dict] = []
        for info in self.store.list(f"{self.prefix}talent_events/"):
            if info.key.endswith(".parquet"):
                table = pq.read_table(io.BytesIO(self.store.get_bytes(info.key)))
                rows += table.select(schema.names).cast(schema).to_pylist()
        return sorted(rows, key=lambda e: (e["occurred_at"], e["event_id"]))

    def rewrite_event(self, event: dict) -> None:
        """Replace one event's file (erasure redacts a forgotten talent's name)."""
        self.append_events([event])

    def lease_key(self) -> str:
        """The registry's writer lease (beside the tables, in no table's folder)."""
        return f"{self.prefix}_talent_registry.lease"


PARQUET = "application/vnd.apache.parquet"


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()
