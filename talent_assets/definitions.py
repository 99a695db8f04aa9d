"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

from dagster import Definitions

from talent_assets.defs.assets import ALL_ASSETS
from talent_assets.defs.jobs import process_video_job
from talent_assets.defs.resources import build_resources
from talent_assets.defs.sensors import s3_video_sensor

defs = Definitions(
    assets=ALL_ASSETS,
    jobs=[process_video_job],
    sensors=[s3_video_sensor],
    resources=build_resources(),
)
