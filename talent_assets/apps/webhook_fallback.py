"""Completion webhooks for runs that no daemon will see: ``talent process`` and the HTTP API
on an instance without a running Dagster daemon (the Modal web endpoint, ``talent serve``
outside a stack).

Where a daemon runs the ``talent_webhook_sensor`` on the same instance (``talent up``,
production), it delivers, durably, and this does nothing. Otherwise the front end delivers
right after the run, with the same event, signature, retry schedule and ``talent/webhook``
tag, blocking its caller's thread (not the API's answer) while it retries; a process that
dies meanwhile loses the event, which is why the daemon's way is preferred.
"""

from __future__ import annotations

import logging
import time

from dagster import DagsterInstance, DagsterRunStatus

from talent_assets.core.url_policy import UrlAllowList
from talent_assets.core.webhooks import FAILED, SUCCEEDED
from talent_assets.defs.resources import TalentStorage
from talent_assets.defs.tags import WEBHOOK_TAG
from talent_assets.defs.webhook_sensor import delivery_for_run, webhook_url_for
from talent_assets.infra.settings import Settings
from talent_assets.infra.webhook_delivery import deliver

log = logging.getLogger(__name__)


def sensor_daemon_running(instance: DagsterInstance) -> bool:
    """Whether a Dagster daemon evaluating sensors heartbeats on ``instance``."""
    try:
        statuses = instance.get_daemon_statuses(daemon_types=["SENSOR"])
    except Exception:  # an instance without daemon storage has no daemon either
        return False
    return any(status.healthy for status in statuses.values())


def deliver_without_daemon(
    instance: DagsterInstance, settings: Settings, storage: TalentStorage, run_id: str
) -> str | None:
    """Deliver ``run_id``'s completion webhook here when no daemon will; returns the recorded
    outcome (also the run's ``talent/webhook`` tag), None when nothing was to be sent here."""
    run = instance.get_run_by_id(run_id)
    url = webhook_url_for(run, settings) if run is not None else None
    if run is None or url is None or sensor_daemon_running(instance):
        return None
    event = SUCCEEDED if run.status == DagsterRunStatus.SUCCESS else FAILED
    # Resolved like Dagster resolves it for a run: its S3 credentials are EnvVar references.
    with storage.process_config_and_initialize_cm() as resolved:
        delivery = delivery_for_run(instance, resolved, settings, run, event, time.time(), log=log)
    if delivery is None:
        return None
    outcome = deliver(
        url, delivery, settings.webhook_secret, UrlAllowList.parse(settings.url_allow)
    )
    instance.add_run_tags(run_id, {WEBHOOK_TAG: outcome.record})
    return outcome.record
