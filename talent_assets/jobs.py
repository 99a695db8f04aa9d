"""The job the sensor launches: the four assets of one video partition."""

from dagster import AssetSelection, define_asset_job

from talent_assets.assets import ALL_ASSETS

# Runs carry this tag so the local stack's run queue can cap how many videos run at once
# (see the tag_concurrency_limits that `talent up` writes into dagster.yaml).
PIPELINE_TAG = {"talent/pipeline": "process_video"}

process_video_job = define_asset_job(
    name="process_video",
    selection=AssetSelection.assets(*ALL_ASSETS),
    tags=PIPELINE_TAG,
    description="All four assets for one video partition.",
)
