"""Python values from a DuckDB result as JSON data or as one cell of text.

Arrow hands back Python objects (``datetime``, ``Decimal``, ``MonthDayNano``, lists of pairs
for MAPs...); the output formats want JSON values or short strings, written the way DuckDB's
own shell writes them where there is a convention (intervals, blobs).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from typing import Any

import pyarrow as pa


def rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """The table's rows as tuples of Python values, float32 in its shortest form."""
    columns = [_readable_floats(column).to_pylist() for column in table.columns]
    return list(zip(*columns, strict=True)) if columns else []


def _readable_floats(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Float32 values (embeddings, scores) as the shortest decimals that round-trip.

    ``to_pylist`` widens float32 to float64, turning 0.1 into 0.10000000149011612: triple the
    size of every embedding and noise to a reader. Casting through text (Arrow prints float32
    in shortest form) to float64 keeps the value the float32 stands for, vectorised.
    """
    as_text = _replace_float32(column.type, pa.string())
    if as_text == column.type:
        return column
    try:
        return column.cast(as_text).cast(_replace_float32(column.type, pa.float64()))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return column  # a nesting Arrow cannot cast: full float64 digits, still correct


def _replace_float32(arrow_type: pa.DataType, new: pa.DataType) -> pa.DataType:
    """``arrow_type`` with every float16/float32 in it, however nested, replaced by ``new``."""
    if pa.types.is_float32(arrow_type) or pa.types.is_float16(arrow_type):
        return new
    if pa.types.is_map(arrow_type):
        return pa.map_(
            arrow_type.key_field.with_type(_replace_float32(arrow_type.key_type, new)),
            arrow_type.item_field.with_type(_replace_float32(arrow_type.item_type, new)),
        )
    if pa.types.is_fixed_size_list(arrow_type):
        field = arrow_type.value_field
        return pa.list_(field.with_type(_replace_float32(field.type, new)), arrow_type.list_size)
    if pa.types.is_list(arrow_type):
        field = arrow_type.value_field
        return pa.list_(field.with_type(_replace_float32(field.type, new)))
    if pa.types.is_large_list(arrow_type):
        field = arrow_type.value_field
        return pa.large_list(field.with_type(_replace_float32(field.type, new)))
    if pa.types.is_struct(arrow_type):
        return pa.struct(
            [
                arrow_type.field(i).with_type(_replace_float32(arrow_type.field(i).type, new))
                for i in range(arrow_type.num_fields)
            ]
        )
    return arrow_type


def jsonable(value: Any) -> Any:
    """A value as JSON data: ISO timestamps, lists for arrays, null for NaN/inf."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        # SUM over integers is a HUGEINT, which Arrow carries as a scale-0 decimal.
        return int(value) if value.as_tuple().exponent >= 0 else float(value)  # type: ignore[operator]
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, pa.MonthDayNano):
        return _interval_text(value)
    if isinstance(value, bytes):
        return _blob_text(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(item, tuple) and len(item) == 2 for item in value):
            # Arrow gives a MAP as (key, value) pairs: an object reads better.
            return {str(k): jsonable(v) for k, v in value}
        return [jsonable(item) for item in value]
    return str(value)  # e.g. a UUID


def text(value: Any, *, null: str, sep: str) -> str:
    """A value as one cell of text (table and CSV); ``sep`` goes between date and time."""
    if value is None:
        return null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=sep)
    if isinstance(value, list | dict):
        return json.dumps(jsonable(value), ensure_ascii=False)
    if isinstance(value, str | int | decimal.Decimal):
        return str(value)
    return str(jsonable(value))


def _interval_text(value: pa.MonthDayNano) -> str:
    """DuckDB's way of writing an INTERVAL: ``1 year 2 months 3 days 04:05:06.5``."""
    parts = []
    sign = -1 if value.months < 0 else 1
    years, months = divmod(abs(value.months), 12)
    years, months = sign * years, sign * months
    for amount, unit in ((years, "year"), (months, "month"), (value.days, "day")):
        if amount:
            parts.append(f"{amount} {unit}{'' if abs(amount) == 1 else 's'}")
    if value.nanoseconds or not parts:
        micros = abs(value.nanoseconds) // 1000
        hours, rest = divmod(micros, 3_600_000_000)
        minutes, rest = divmod(rest, 60_000_000)
        seconds, micros = divmod(rest, 1_000_000)
        clock = f"{'-' if value.nanoseconds < 0 else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
        parts.append(clock + (f".{micros:06d}".rstrip("0") if micros else ""))
    return " ".join(parts)


def _blob_text(value: bytes) -> str:
    """Printable ASCII as is, other bytes as ``\\xAB`` (DuckDB's notation)."""
    return "".join(chr(b) if 32 <= b < 127 and b != 92 else f"\\x{b:02X}" for b in value)
