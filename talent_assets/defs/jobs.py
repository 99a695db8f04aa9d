"""The jobs: the four assets of one video partition (the sensor launches it), and the
registry update that follows each video."""

from dagster import AssetSelection, define_asset_job, in_process_executor

from talent_assets.defs.assets import ALL_ASSETS, talent_registry
from talent_assets.defs.tags import PIPELINE_TAG, REGISTRY_TAG

process_video_job = define_asset_job(
    name="process_video",
    selection=AssetSelection.assets(*ALL_ASSETS),
    # The local stack's run queue caps how many videos run at once by this tag (the
    # tag_concurrency_limits that `talent up` writes into dagster.yaml).
    tags=PIPELINE_TAG,
    # The four steps form a chain, so a process per step buys no parallelism; it only costs
    # a Python start and a model load each. Chunk-level parallelism lives in the detector.
    executor_def=in_process_executor,
    description="All four assets for one video partition.",
)

update_talent_registry_job = define_asset_job(
    name="update_talent_registry",
    selection=AssetSelection.assets(talent_registry),
    tags=REGISTRY_TAG,
    executor_def=in_process_executor,
    description="Match every video's people to talents (after each video; also by hand).",
)
