"""What every input must be, whatever the domain: no NUL characters, timestamps in RFC 3339
with an offset and within a sane range.

PostgreSQL text cannot hold a NUL character: let through, one would end as a database
error instead of a clear refusal. Pydantic alone would read a bare number (`0.5`) as seconds
since 1970 and a naive time as local to nobody; both are refused so that what is stored is
what the caller meant.
"""

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Request
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    field_validator,
)
from pydantic_core import PydanticCustomError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BodyTooLarge, ErrorDetail, ValidationFailed

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?"
)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# Posting systems' clocks drift; further ahead than this is a bug, not skew.
FUTURE_TOLERANCE_SECONDS = 3600


def _rfc3339_text(value: Any) -> Any:
    # A missing offset passes here and is refused next, as `timezone_aware`.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise PydanticCustomError(
            "datetime_format",
            "must be an RFC 3339 date-time with a timezone offset, e.g. 2026-11-23T09:30:00Z",
        )
    return value


def _within_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise PydanticCustomError(
            "datetime_range", f"must lie between {EARLIEST.year} and {LATEST.year}"
        )
    return value.astimezone(UTC)


def _not_in_future(value: datetime) -> datetime:
    # Compared as POSIX seconds: cheaper than building aware datetimes per item.
    if value.timestamp() > time.time() + FUTURE_TOLERANCE_SECONDS:
        raise PydanticCustomError(
            "datetime_future", "lies in the future (more than one hour ahead of the server clock)"
        )
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_within_range)]
"""Any point in time (a window bound, a promised date), returned in UTC."""

PastTimestamp = Annotated[Timestamp, AfterValidator(_not_in_future)]
"""Something that happened: at most an hour ahead of the server clock, for clock skew."""


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(item) for item in value)
    return False


class InputModel(BaseModel):
    """Base of every request body: unknown fields and NUL characters are refused."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _contains_nul(value):
            raise PydanticCustomError("nul_character", "must not contain NUL characters")
        return value


class BodySizeLimit:
    """Refuses a request body over `max_bytes` before the service reads it: at once when its
    Content-Length says so, else as soon as the chunks received pass the limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await BodyTooLarge(self.max_bytes).response()(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_within_limit, send)


async def refuse_nul_in_url(request: Request) -> None:
    """Dependency of every route: path and query values must not contain NUL characters."""
    values = [("path", k, v) for k, v in request.path_params.items()]
    values += [("query", k, v) for k, v in request.query_params.multi_items()]
    offending = [
        ErrorDetail(
            field=f"{part}.{name}", message="contains a NUL character", type="nul_character"
        )
        for part, name, value in values
        if isinstance(value, str) and "\x00" in value
    ]
    if offending:
        raise ValidationFailed("NUL characters are not accepted.", details=offending)
