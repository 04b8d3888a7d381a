"""Opaque cursors for keyset pagination, and the `limit` parameter every list shares."""

import base64
import binascii
import json
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import Field, TypeAdapter, ValidationError

from app.errors import ErrorDetail, ValidationFailed

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size, at most {MAX_PAGE_SIZE}.")
]
CursorQuery = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` of the previous page, unchanged."),
]

RowId = Annotated[int, Field(strict=True, ge=1, lt=2**63)]
"""A row's number in a cursor: what a BIGINT column holds (a larger one would reach the
database as an overflow, not a refusal)."""


class InvalidCursor(ValidationFailed):
    """A cursor the service did not issue: forged, truncated or from another list."""

    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__(
            "The cursor is not valid; pass `next_cursor` from the previous page unchanged.",
            details=[
                ErrorDetail(field="query.cursor", message="not a cursor", type="invalid_cursor")
            ],
        )


def encode_cursor(*position: Any) -> str:
    """Wrap the sort key of the last row of a page into an opaque token."""
    raw = json.dumps(list(position), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, position: TypeAdapter[T]) -> T:
    """The sort key a cursor carries, validated as `position` (a tuple of the key's types);
    an `InvalidCursor` when the cursor is not one of ours.

    The client holds the cursor and may change it: what it decodes to is validated like any
    input (strict JSON, aware timestamps within range, ids a BIGINT holds, keys of their
    pattern), so that nothing forged reaches the database as a query it cannot run.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
        return position.validate_json(raw)
    except (binascii.Error, ValidationError, UnicodeEncodeError):
        raise InvalidCursor() from None
