"""CSV rendering of response models, for analysts who open figures in a spreadsheet.

Columns follow the schema: nested objects become `parent_child` columns (present even when
the object is null, so every row has the same columns), lists are joined with `;` (a list
of objects by each object's first field, e.g. team names).

Made for spreadsheets: the file starts with a UTF-8 byte order mark (without it Excel reads
UTF-8 as its local code page, and Cyrillic comes out garbled); a text cell that starts with
`=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'` (OWASP's advice against
CSV injection: a spreadsheet would run it as a formula); figures are rounded to
`DECIMALS` places, as a person reads them (the JSON keeps every digit). Numbers the service
renders itself are never prefixed: a negative figure (`-0.05`) stays a number.
"""

import csv
import io
import math
import types
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Query, Request, Response
from pydantic import BaseModel

CSV_MEDIA_TYPE = "text/csv"
BYTE_ORDER_MARK = "\ufeff"
DECIMALS = 4
"""Places a figure is rounded to in CSV; one that would round to zero keeps two
significant digits instead (a p-value of 3.1e-07 is not 0)."""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            CSV_MEDIA_TYPE: {
                "schema": {
                    "type": "string",
                    "description": "The rows as CSV, one header line first.",
                }
            }
        }
    }
}
"""The `responses=` entry of a route that answers in CSV as well as in JSON."""


class OutputFormat(StrEnum):
    json = "json"
    csv = "csv"


FormatQuery = Annotated[
    OutputFormat | None,
    Query(alias="format", description="`csv` for a CSV download (or send Accept: text/csv)."),
]


def wants_csv(request: Request, format_: str | None) -> bool:
    """`format=csv`, or an Accept header that names text/csv (and `format` not json)."""
    if format_ is not None:
        return format_ == "csv"
    return CSV_MEDIA_TYPE in request.headers.get("accept", "")


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) in (Union, types.UnionType):
        models = [_nested_model(arg) for arg in get_args(annotation)]
        found = [model for model in models if model is not None]
        return found[0] if found else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _columns(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, field in model.model_fields.items():
        path = (*prefix, field.serialization_alias or field.alias or name)
        nested = _nested_model(field.annotation)
        if nested is None:
            yield path
        else:
            yield from _columns(nested, path)


def figure(value: float) -> str:
    """A figure as a person reads it: `DECIMALS` places, no trailing zeros."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.{DECIMALS}f}".rstrip("0").rstrip(".")
    if text in ("0", "-0"):
        return "0" if value == 0 else f"{value:.2g}"
    return text


def neutralised(text: str) -> str:
    """Text a spreadsheet shows as text: a would-be formula gets a leading `'`."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return figure(value)
    if isinstance(value, dict):
        return _plain(next(iter(value.values()), None))
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, bool | int | float) or value is None:
        return _plain(value)
    if isinstance(value, list):
        return neutralised(";".join(_plain(item) for item in value))
    return neutralised(_plain(value))


def _lookup(row: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = row
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def csv_response(
    model: type[BaseModel],
    rows: Sequence[BaseModel],
    *,
    filename: str,
    leading: Mapping[str, Sequence[Any]] | None = None,
) -> Response:
    """Rows of one schema as a CSV download; `leading` adds first columns, each a name and
    a value per row (what the rows belong to: a moment, a group)."""
    columns = list(_columns(model))
    leading = leading or {}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*leading, *("_".join(path) for path in columns)])
    for position, row in enumerate(rows):
        data = row.model_dump(mode="json", by_alias=True)
        first = [_cell(values[position]) for values in leading.values()]
        writer.writerow([*first, *(_cell(_lookup(data, path)) for path in columns)])
    return Response(
        content=BYTE_ORDER_MARK + buffer.getvalue(),
        media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
