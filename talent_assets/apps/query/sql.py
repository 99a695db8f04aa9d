"""Quoting for SQL text that DuckDB cannot take as parameters.

Paths, globs and secret values are spliced into statements (``LOAD``, ``CREATE SECRET`` and
``glob()`` take no ``?`` parameters, and binding Python parameters makes DuckDB import pandas,
a second of start-up for every ``talent query``), so they are quoted here, in one place.
"""

from __future__ import annotations


def literal(text: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A double-quoted SQL identifier (column names are not all plain words)."""
    return '"' + name.replace('"', '""') + '"'
