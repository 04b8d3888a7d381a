"""Opaque cursors for keyset pagination, and the `limit` parameter every list shares."""

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Query

from app.errors import ErrorDetail, ValidationFailed

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size, at most {MAX_PAGE_SIZE}.")
]
CursorQuery = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` of the previous page."),
]


def encode_cursor(*position: Any) -> str:
    """Wrap the sort key of the last row of a page into an opaque token."""
    raw = json.dumps(list(position), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, parse: Callable[[list[Any]], T]) -> T:
    """The sort key a cursor carries, parsed; a clear 422 when the cursor is not one of ours.

    `parse` turns the decoded list back into typed values and may raise
    ValueError, TypeError or IndexError for anything it does not recognise.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(position, list):
            raise TypeError("cursor payload is not a list")
        return parse(position)
    except (binascii.Error, ValueError, TypeError, IndexError, UnicodeDecodeError):
        raise ValidationFailed(
            "The cursor is not valid; pass `next_cursor` from the previous page unchanged.",
            details=[ErrorDetail(field="query.cursor", message="malformed cursor", type="cursor")],
        ) from None
