"""What an asset learns from its upstream assets' latest materialisations."""

from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetRecordsFilter


def upstream_metadata(context: AssetExecutionContext, asset_name: str) -> dict[str, Any]:
    """Metadata of the latest materialisation of ``asset_name`` for this partition."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=AssetKey(asset_name), asset_partitions=[context.partition_key]
        ),
        limit=1,
    ).records
    if not records or records[0].asset_materialization is None:
        return {}
    metadata = records[0].asset_materialization.metadata
    return {k: getattr(v, "value", v) for k, v in metadata.items()}
