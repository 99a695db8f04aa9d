"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

from dagster import AssetSelection, Definitions, define_asset_job

from talent_assets.assets import ALL_ASSETS
from talent_assets.resources import build_resources

process_video_job = define_asset_job(
    name="process_video",
    selection=AssetSelection.assets(*ALL_ASSETS),
    description="All four assets for one video partition.",
)

defs = Definitions(
    assets=ALL_ASSETS,
    jobs=[process_video_job],
    resources=build_resources(),
)
