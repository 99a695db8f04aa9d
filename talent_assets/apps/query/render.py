"""A query result as text: a box-drawn ``table`` like DuckDB's shell, ``csv`` or ``json``.

Each format takes the Arrow result and DuckDB's type names (shown in the table's header) and
returns the whole output as one string without a trailing newline.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence

import pyarrow as pa

from talent_assets.apps.query.values import jsonable, rows, text

FORMATS = ("table", "csv", "json")

_MAX_CELL_WIDTH = 48  # table format only: embeddings and long keys are cut with "…"

# How a cell is padded to its column's width; the third argument is the column's index.
_Align = Callable[[str, int, int], str]


def render(fmt: str, table: pa.Table, types: Sequence[str]) -> str:
    """``table`` in the format ``fmt``, one of :data:`FORMATS` (checked by the caller)."""
    return _FORMATTERS[fmt](table, types)


def _unique_names(names: Sequence[str]) -> list[str]:
    """``SELECT a.x, b.x`` gives two columns named x: number the repeats for JSON keys."""
    used: set[str] = set()
    unique = []
    for name in names:
        candidate, count = name, 0
        while candidate in used:
            count += 1
            candidate = f"{name}_{count}"
        used.add(candidate)
        unique.append(candidate)
    return unique


def _format_json(table: pa.Table, types: Sequence[str]) -> str:
    """A JSON list of objects, one per line (embeddings stay one line each)."""
    names = _unique_names(table.column_names)
    lines = [
        json.dumps(
            {name: jsonable(value) for name, value in zip(names, row, strict=True)},
            ensure_ascii=False,
            allow_nan=False,
        )
        for row in rows(table)
    ]
    return "[\n" + ",\n".join(lines) + "\n]" if lines else "[]"


def _format_csv(table: pa.Table, types: Sequence[str]) -> str:
    """CSV with a header row; NULL is an empty field, arrays are JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in rows(table):
        writer.writerow([text(value, null="", sep="T") for value in row])
    return buffer.getvalue().rstrip("\n")


def _format_table(table: pa.Table, types: Sequence[str]) -> str:
    """A box-drawn table like DuckDB's: names and types on top, numbers right-aligned."""
    header = [_cut(name) for name in table.column_names]
    type_names = [_cut(name.lower()) for name in types]
    cells = [[_cut(text(value, null="NULL", sep=" ")) for value in row] for row in rows(table)]
    numeric = [
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
        for t in table.schema.types
    ]
    widths = [
        max([len(header[i]), len(type_names[i])] + [len(row[i]) for row in cells])
        for i in range(len(header))
    ]

    def data(value: str, width: int, index: int) -> str:
        return value.rjust(width) if numeric[index] else value.ljust(width)

    out = [
        _rule(widths, "┌", "┬", "┐"),
        _line(header, widths, _centre),
        _line(type_names, widths, _centre),
        _rule(widths, "├", "┼", "┤"),
    ]
    out.extend(_line(row, widths, data) for row in cells)
    out.append(_rule(widths, "└", "┴", "┘"))
    out.append(f"{len(cells)} row{'' if len(cells) == 1 else 's'}")
    return "\n".join(out)


def _rule(widths: Sequence[int], left: str, middle: str, right: str) -> str:
    """A horizontal line of the box, with ``middle`` where a column border crosses it."""
    return left + middle.join("─" * (w + 2) for w in widths) + right


def _line(values: Sequence[str], widths: Sequence[int], align: _Align) -> str:
    """One row of the box: each value padded to its column's width by ``align``."""
    padded = (f" {align(v, w, i)} " for i, (v, w) in enumerate(zip(values, widths, strict=True)))
    return "│" + "│".join(padded) + "│"


def _centre(value: str, width: int, _: int) -> str:
    """Header alignment: names and types centred over their column."""
    return value.center(width)


def _cut(cell: str) -> str:
    """One line, at most _MAX_CELL_WIDTH characters, so that columns stay aligned."""
    cell = cell.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return cell if len(cell) <= _MAX_CELL_WIDTH else cell[: _MAX_CELL_WIDTH - 1] + "…"


_FORMATTERS: dict[str, Callable[[pa.Table, Sequence[str]], str]] = {
    "table": _format_table,
    "csv": _format_csv,
    "json": _format_json,
}
