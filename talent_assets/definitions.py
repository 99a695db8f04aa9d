"""The Dagster code location: ``dagster dev -m talent_assets.definitions`` loads ``defs``.

``defs`` is a lazy ``@dg.definitions`` entry point, so the settings are read when Dagster
loads the location, not when this module is imported; :func:`build_definitions` builds the
same for any explicit :class:`Settings` (tests, one-off runs).
"""

import dagster as dg

from talent_assets.defs.assets import ALL_ASSETS, talent_registry
from talent_assets.defs.jobs import process_video_job, update_talent_registry_job
from talent_assets.defs.resources import build_resources
from talent_assets.defs.sensors import build_registry_sensor, build_s3_video_sensor
from talent_assets.defs.webhook_sensor import build_webhook_sensor
from talent_assets.infra.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """The four video assets and the registry, their jobs, the S3 sensor and the registry's
    sensor, and the resources, for ``settings``."""
    return dg.Definitions(
        assets=[*ALL_ASSETS, talent_registry],
        jobs=[process_video_job, update_talent_registry_job],
        sensors=[
            build_s3_video_sensor(settings),
            build_registry_sensor(settings),
            build_webhook_sensor(settings),
        ],
        resources=build_resources(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location, configured from the environment when Dagster loads it."""
    return build_definitions(Settings.from_env())
