"""Analysts' SQL (``talent query``): DuckDB views over the Parquet warehouse.

:func:`connect` opens an in-memory DuckDB with one view per warehouse table (``videos``,
``face_detections``, ``identity_clusters``, ``selected_frames``) over
``<warehouse>/<table>/video_id=<id>/*.parquet``, read in place: from S3 through the httpfs
extension, or from a local folder. :func:`run_query` runs one SQL text on it and renders the
result as an aligned text table, CSV or JSON.

One concern per module: :mod:`.connection` (DuckDB, httpfs, the S3 secret), :mod:`.views`
(one view per table), :mod:`.sql` (quoting), :mod:`.values` (Python values as text or
JSON), :mod:`.render` (the three output formats), :mod:`.errors` (one-line, scrubbed
messages) and :mod:`.run` (a query from SQL text to rendered output).

The httpfs extension comes from the PyPI wheel ``duckdb-extension-httpfs`` (same version as
``duckdb``) and is loaded from that file by path; extension autoinstall and autoload are off,
so nothing is ever downloaded at run time. S3 credentials go into a temporary DuckDB secret,
which DuckDB redacts in ``duckdb_secrets()``; on top of that every error message and every
output is scrubbed of the secret values, so they cannot reach the terminal or a log.
"""

from __future__ import annotations

from talent_assets.apps.query.connection import connect
from talent_assets.apps.query.errors import QueryError
from talent_assets.apps.query.render import FORMATS
from talent_assets.apps.query.run import run_query
from talent_assets.apps.query.views import TABLES

__all__ = ["FORMATS", "TABLES", "QueryError", "connect", "run_query"]
