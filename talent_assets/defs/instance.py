"""Which Dagster instance a front end records its runs in: one rule for the CLI and the API."""

from __future__ import annotations

import functools
import os
import tempfile

from dagster import DagsterInstance


@functools.lru_cache(maxsize=1)
def _temporary_instance() -> DagsterInstance:
    # Persistent (sqlite in a temp folder) rather than ephemeral: the API reads the run
    # history that its background runs wrote. Created once, so every app in the process (the
    # tests build several) sees the same history.
    home = tempfile.mkdtemp(prefix="talent-dagster-")
    return DagsterInstance.local_temp(home, overrides={"telemetry": {"enabled": False}})


def current_instance(*, keep_history: bool) -> DagsterInstance:
    """The instance of ``DAGSTER_HOME`` when set (runs then show in that UI).

    Otherwise: with ``keep_history`` one temporary persistent instance per process (the API
    answers status queries from it), without it an ephemeral one (a one-off CLI run).
    """
    if os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.get()
    return _temporary_instance() if keep_history else DagsterInstance.ephemeral()
