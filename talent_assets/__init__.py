"""Video Talent Frame Extractor: the Dagster code location and what it calls.

Layers (docs/design.md): ``core`` (pure logic), ``infra`` (settings and I/O), ``defs`` (Dagster
glue), ``apps`` (CLI, API, SQL), ``devstack`` (the local stack); ``definitions.py`` is the entry.
"""
