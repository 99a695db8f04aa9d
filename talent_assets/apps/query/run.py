"""One ``talent query``: SQL text in, rendered and scrubbed output (or a one-line error) out."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from talent_assets.apps.query.connection import connect
from talent_assets.apps.query.errors import QueryError, one_line, scrub
from talent_assets.apps.query.render import FORMATS, render
from talent_assets.infra.settings import Settings


def run_query(sql: str, *, settings: Settings, fmt: str = "table") -> str:
    """Run ``sql`` over the warehouse views; the result as ``table``, ``csv`` or ``json``.

    Several statements may be given (``;``-separated); the last one's result is returned, and
    a statement without a result (``SET``, ``CREATE``...) gives an empty string. Raises
    :class:`QueryError` with one line on bad SQL, an unreachable warehouse or a bad format.
    """
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if not sql.strip():
        raise QueryError("empty query")
    con = connect(settings)
    try:
        result = con.execute(sql)
        if result.description is None:
            return ""
        types = [str(column[1]) for column in result.description]
        table = result.to_arrow_table()
    except duckdb.Error as err:
        raise QueryError(scrub(one_line(err))) from None
    finally:
        con.close()
    try:
        return scrub(render(fmt, table, types))
    except (pa.ArrowException, ValueError, OverflowError) as err:
        # E.g. a timestamp outside Python's datetime range.
        raise QueryError(scrub(f"cannot format the result: {one_line(err)}")) from None
