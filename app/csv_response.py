"""CSV rendering of response models, for analysts who open figures in a spreadsheet.

Columns follow the schema: nested objects become `parent_child` columns (present even when
the object is null, so every row has the same columns), lists are joined with `;` (a list
of objects by each object's first field, e.g. team names).
"""

import csv
import io
import types
from collections.abc import Iterator, Sequence
from typing import Any, Union, get_args, get_origin

from fastapi import Request, Response
from pydantic import BaseModel

CSV_MEDIA_TYPE = "text/csv"


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


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(
            _cell(next(iter(item.values()), None) if isinstance(item, dict) else item)
            for item in value
        )
    return str(value)


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
    leading: tuple[str, Sequence[str]] | None = None,
) -> Response:
    """Rows of one schema as a CSV download; `leading` adds a first column (name, values)."""
    columns = list(_columns(model))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["_".join(path) for path in columns]
    writer.writerow(header if leading is None else [leading[0], *header])
    for position, row in enumerate(rows):
        data = row.model_dump(mode="json", by_alias=True)
        cells = [_cell(_lookup(data, path)) for path in columns]
        writer.writerow(cells if leading is None else [leading[1][position], *cells])
    return Response(
        content=buffer.getvalue(),
        media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
