"""Dagster glue: assets, jobs, partitions, sensors, resources, failures and run tags.

Thin: every asset calls named functions from ``core`` and ``infra``.
"""
